"""`ckls skills lint` and `ckls skills new`: every Agent Skills rule caught on a skill that breaks it, a scaffold
that lints clean once described, and the skills shipped in skills/ passing."""
from pathlib import Path

import pytest

from ckls.skills.cli import main as skills_main
from ckls.skills.lint import ERROR, WARNING, lint_skill, lint_tree, split_front_matter, FrontMatterError
from ckls.skills.scaffold import ScaffoldError, new_skill

REPO_SKILLS = Path(__file__).resolve().parents[1] / "skills"
GOOD_DESC = "Writes AVX2 loops with tails and alignment handled; use when porting a NumPy loop to C."


def make(tmp_path, folder, front: str, body: str = "# Title\n\nDo this, then that.\n") -> Path:
    d = tmp_path / folder
    d.mkdir(parents=True, exist_ok=True)
    (d / "SKILL.md").write_text(f"---\n{front}---\n{body}")
    return d


def rules(findings, level=ERROR):
    return sorted(f.rule for f in findings if f.level == level)


def test_a_well_formed_skill_is_clean(tmp_path):
    d = make(tmp_path, "simd-loops", f"name: simd-loops\ndescription: {GOOD_DESC}\nlicense: Apache-2.0\n"
                                     "compatibility: gcc 12 or newer on x86-64\nmetadata:\n  version: \"1\"\n"
                                     "allowed-tools: compile run_public_tests\n",
             "# SIMD loops\n\nSee [the recipes](references/recipes.md).\n")
    (d / "references").mkdir()
    (d / "references" / "recipes.md").write_text("# recipes\n")
    assert lint_skill(d) == []


@pytest.mark.parametrize("folder,name,rule", [
    ("Simd", "Simd", "name-format"),                 # uppercase
    ("-simd", "-simd", "name-format"),               # leading hyphen
    ("simd-", "simd-", "name-format"),               # trailing hyphen
    ("simd--loops", "simd--loops", "name-format"),   # double hyphen
    ("simd_loops", "simd_loops", "name-format"),     # underscore
    ("a" * 65, "a" * 65, "name-format"),             # 65 characters
    ("claude-tricks", "claude-tricks", "name-format"),  # reserved word
    ("simd-loops", "simd-loop", "name-folder"),      # differs from the folder
])
def test_name_rules(tmp_path, folder, name, rule):
    d = make(tmp_path, folder, f"name: {name}\ndescription: {GOOD_DESC}\n")
    assert rule in rules(lint_skill(d))


def test_name_of_64_characters_is_allowed(tmp_path):
    n = "a" * 64
    assert lint_skill(make(tmp_path, n, f"name: {n}\ndescription: {GOOD_DESC}\n")) == []


@pytest.mark.parametrize("front,rule", [
    ("description: " + GOOD_DESC + "\n", "name-missing"),
    ("name: s\n", "description-missing"),
    ("name: s\ndescription: \"   \"\n", "description-empty"),
    ("name: s\ndescription: " + "x" * 1025 + "\n", "description-length"),
    ("name: s\ndescription: Use <b>this</b> for loops over arrays in C code\n", "description-xml"),
    ("name: s\ndescription: \"TODO: say what it does and when to use it.\"\n", "description-placeholder"),
    ("name: s\ndescription: " + GOOD_DESC + "\ncompatibility: " + "c" * 501 + "\n", "compatibility-length"),
    ("name: s\ndescription: " + GOOD_DESC + "\nmetadata: [1, 2]\n", "metadata"),
    ("name: s\ndescription: " + GOOD_DESC + "\nallowed-tools: [compile]\n", "allowed-tools"),
])
def test_front_matter_rules(tmp_path, front, rule):
    assert rule in rules(lint_skill(make(tmp_path, "s", front)))


def test_description_of_1024_characters_is_allowed(tmp_path):
    desc = ("word " * 205)[:1024]
    assert len(desc) == 1024
    assert rules(lint_skill(make(tmp_path, "s", f"name: s\ndescription: {desc}\n"))) == []


def test_body_rules(tmp_path):
    front = f"name: s\ndescription: {GOOD_DESC}\n"
    assert "body-empty" in rules(lint_skill(make(tmp_path / "a", "s", front, "\n")))
    assert "body-lines" in rules(lint_skill(make(tmp_path / "b", "s", front, "line\n" * 501)))
    assert "body-lines" not in rules(lint_skill(make(tmp_path / "c", "s", front, "line\n" * 500)))
    assert "body-tokens" in rules(lint_skill(make(tmp_path / "d", "s", front, ("word " * 80 + "\n") * 60)))
    assert "broken-link" in rules(lint_skill(make(tmp_path / "e", "s", front, "see [x](references/x.md)\n")))
    assert "outside-link" in rules(lint_skill(make(tmp_path / "f", "s", front, "see [x](../../a/s/SKILL.md)\n")))
    assert rules(lint_skill(make(tmp_path / "g", "s", front, "see [docs](https://agentskills.io/x)\n"))) == []


def test_front_matter_framing(tmp_path):
    for text, msg in [("name: s\n", "start with"), ("---\nname: s\n", "closing"), ("---\nname: [s\n---\nb\n", "YAML"),
                      ("---\n- a\n- b\n---\nbody\n", "mapping")]:
        with pytest.raises(FrontMatterError, match=msg):
            split_front_matter(text)
        d = tmp_path / f"s{len(text)}"
        d.mkdir()
        (d / "SKILL.md").write_text(text)
        assert rules(lint_skill(d)) == ["front-matter"]


def test_warnings_do_not_fail_unless_strict(tmp_path, capsys):
    d = make(tmp_path, "s", f"name: s\ndescription: {GOOD_DESC}\nversion: 2\n")
    (d / "notes.txt").write_text("x")
    assert rules(lint_skill(d), WARNING) == ["layout", "unknown-key"]
    assert skills_main(["lint", str(tmp_path)]) == 0
    assert skills_main(["lint", "--strict", str(tmp_path)]) == 1
    assert "unknown-key" in capsys.readouterr().out


def test_folder_without_skill_md_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert rules(lint_tree(tmp_path)) == ["skill-md"]
    assert skills_main(["lint", str(tmp_path)]) == 1


def test_new_scaffolds_a_skill_that_lints_once_described(tmp_path, capsys):
    assert skills_main(["new", "stencil-tiling", "--dir", str(tmp_path)]) == 0
    md = tmp_path / "stencil-tiling" / "SKILL.md"
    assert md.read_text().startswith("---\nname: stencil-tiling\n")
    assert rules(lint_tree(tmp_path)) == ["description-placeholder"]  # the author has to say what it is for
    assert skills_main(["new", "stencil-tiling", "--dir", str(tmp_path)]) == 2  # exists
    desc = "Tiles 2-D stencils for cache reuse: use when a loop reads neighbours: e.g. blur, Laplacian."
    assert skills_main(["new", "stencil-tiling", "--dir", str(tmp_path), "--force", "--description", desc]) == 0
    assert lint_tree(tmp_path) == []
    front, _, _ = split_front_matter(md.read_text())
    assert front == {"name": "stencil-tiling", "description": desc}


@pytest.mark.parametrize("bad", ["Stencil", "a--b", "-a", "x" * 65, ""])
def test_new_refuses_bad_names(tmp_path, bad):
    with pytest.raises(ScaffoldError):
        new_skill(tmp_path, bad)
    assert not any(tmp_path.iterdir())


def test_shipped_skills_pass_lint(capsys):
    """The skills in skills/ (what CI ships) pass lint with no error."""
    assert REPO_SKILLS.is_dir(), "skills/ is missing"
    found = lint_tree(REPO_SKILLS)
    print("\n".join(map(str, found)))
    assert [f for f in found if f.level == ERROR] == []
    assert skills_main(["lint", str(REPO_SKILLS)]) == 0
    assert len([p for p in REPO_SKILLS.iterdir() if (p / "SKILL.md").exists()]) >= 1
