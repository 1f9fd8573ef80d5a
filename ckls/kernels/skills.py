"""Agent Skills: folders holding SKILL.md (YAML front matter `name`, `description`, then a Markdown body) and
optional `references/` files. Names and descriptions go into the system prompt; bodies and references are read
on demand through the read_skill tool, so a run pays only for the guidance it uses.

The skills live in skills/ at the top of a checkout; a wheel carries a copy in ckls/kernels/_skills (setup.py
copies it at build time).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_NAME, MAX_DESCRIPTION, MAX_BODY_LINES = 64, 1024, 500
MAX_READ = 60_000  # characters one read_skill call returns


class SkillError(ValueError):
    pass


@dataclass
class Skill:
    name: str
    description: str
    path: Path       # the skill's folder

    @property
    def body(self) -> str:
        return split_front_matter((self.path / "SKILL.md").read_text())[1]

    def references(self) -> list[str]:
        ref = self.path / "references"
        return sorted(str(p.relative_to(self.path)) for p in ref.rglob("*") if p.is_file()) if ref.is_dir() else []

    def read(self, file: str | None = None) -> str:
        """The body, or one file of the skill's folder (no way out of it)."""
        if not file or file == "SKILL.md":
            text = self.body
            refs = self.references()
            if refs:
                text += "\n\n(reference files: " + ", ".join(refs) + ")"
            return text[:MAX_READ]
        root = self.path.resolve()
        p = (root / file).resolve()
        if root not in p.parents or not p.is_file():
            raise SkillError(f"skill {self.name} has no file {file!r}; it has: {', '.join(self.references()) or 'none'}")
        return p.read_text(errors="replace")[:MAX_READ]


def default_skills_dir() -> Path:
    here = Path(__file__).resolve().parent
    checkout = here.parent.parent / "skills"
    return checkout if (checkout / "c-simd-kernels" / "SKILL.md").exists() else here / "_skills"


def split_front_matter(text: str) -> tuple[dict, str]:
    """The small YAML subset SKILL.md front matter uses: `key: value` lines, quoted or plain scalars, and
    folded (`>`) or literal (`|`) blocks."""
    if not text.startswith("---"):
        raise SkillError("SKILL.md must start with a --- front matter block")
    end = text.find("\n---", 3)
    if end < 0:
        raise SkillError("unterminated front matter")
    head, body = text[3:end].strip("\n"), text[end + 4:].lstrip("\n")
    meta: dict[str, str] = {}
    lines = head.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^([A-Za-z_][\w-]*):\s*(.*)$", lines[i])
        if not m:
            raise SkillError(f"front matter line not understood: {lines[i]!r}")
        key, val = m.group(1), m.group(2).strip()
        i += 1
        if val in (">", "|", ">-", "|-"):
            block = []
            while i < len(lines) and (lines[i].startswith((" ", "\t")) or not lines[i].strip()):
                block.append(lines[i].strip())
                i += 1
            val = (" " if val.startswith(">") else "\n").join(block).strip()
        elif len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
            val = val[1:-1]
        meta[key] = val
    return meta, body


def check_skill(folder: Path) -> list[str]:
    """Problems with a skill folder against the Agent Skills format; empty when it is well formed."""
    p = folder / "SKILL.md"
    if not p.is_file():
        return [f"{folder.name}: no SKILL.md"]
    try:
        meta, body = split_front_matter(p.read_text())
    except SkillError as e:
        return [f"{folder.name}: {e}"]
    out = []
    name, desc = meta.get("name", ""), meta.get("description", "")
    if not NAME_RE.match(name) or len(name) > MAX_NAME:
        out.append(f"{folder.name}: name {name!r} must be lowercase letters, digits and hyphens, <= {MAX_NAME}")
    if name != folder.name:
        out.append(f"{folder.name}: name {name!r} differs from the folder name")
    if not desc or len(desc) > MAX_DESCRIPTION:
        out.append(f"{folder.name}: description must be 1..{MAX_DESCRIPTION} characters (is {len(desc)})")
    if len(body.splitlines()) > MAX_BODY_LINES:
        out.append(f"{folder.name}: body has {len(body.splitlines())} lines (keep it under {MAX_BODY_LINES})")
    return out


def load_skills(folder: Path | None = None, only: list[str] | None = None) -> list[Skill]:
    """Every well-formed skill under `folder` (or the named ones; [] = none). A malformed one is an error."""
    if only is not None and not only:
        return []
    folder = Path(folder) if folder else default_skills_dir()
    if not folder.is_dir():
        raise SkillError(f"no skills folder at {folder}")
    skills = []
    for d in sorted(p for p in folder.iterdir() if (p / "SKILL.md").is_file()):
        problems = check_skill(d)
        if problems:
            raise SkillError("; ".join(problems))
        meta, _ = split_front_matter((d / "SKILL.md").read_text())
        skills.append(Skill(meta["name"], meta["description"], d))
    if only is not None:
        missing = set(only) - {s.name for s in skills}
        if missing:
            raise SkillError(f"unknown skill(s): {', '.join(sorted(missing))}")
        skills = [s for s in skills if s.name in only]
    return skills
