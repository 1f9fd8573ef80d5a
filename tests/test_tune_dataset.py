"""The workspace dataset on a real git repository made in a temporary folder: which files are used and why the
others are not, held-out choice, incremental plans from content hashes, FIM/causal samples with the model's own
tokenizer."""
import os

import numpy as np
import pytest

from ckls.tune import dataset
from tune_fixtures import SPECIAL, git, source


@pytest.fixture()
def tok(models):
    """The test model's tokenizer (it has FIM tokens and <|file_sep|>)."""
    from ckls.runtime import load_model

    m = load_model(models.get("qwen2", "tiny", "f32"), n_ctx=64, n_threads=1)
    yield m.tokenizer
    m.close()


@pytest.fixture()
def texts(repo):
    """(path, text) of the repository's usable files."""
    return [(f.path, f.text) for f in dataset.scan(repo).files]


def test_scan_keeps_sources_and_drops_the_rest(repo):
    root, special = repo, SPECIAL
    sc = dataset.scan(root)
    paths = [f.path for f in sc.files]
    assert paths == sorted(paths)
    want = {f"pkg/mod{i:02d}.py" for i in range(12)} | {special["untracked"]}
    assert set(paths) == want | {special["plain_folder"]}
    for kind in ("gitignored", "vendored", "generated_name", "generated_banner", "minified", "binary", "huge",
                 "exact_dup", "not_source"):
        assert special[kind] not in paths, kind
    d = sc.dropped
    assert d["vendored"] == 1 and d["generated"] == 2 and d["long lines"] == 1 and d["binary"] == 1
    assert d["size"] == 1 and d["exact duplicate"] == 1 and d["not source"] >= 2  # README.md, .gitignore
    for f in sc.files:
        assert len(f.sha1) == 40 and f.text == open(os.path.join(root, f.path)).read()


def test_near_duplicates_and_plain_folders(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "plain"  # not a git repository: a walk that skips hidden and vendored folders
    (root / ".hidden").mkdir(parents=True)
    (root / "node_modules").mkdir()
    text = source(1, rng)
    (root / "a.py").write_text(text)
    (root / "b.py").write_text(text.replace("Module 1:", "Module one:"))  # a near copy
    (root / ".hidden" / "c.py").write_text(source(2, rng))
    (root / "node_modules" / "d.py").write_text(source(3, rng))
    sc = dataset.scan(str(root))
    assert [f.path for f in sc.files] == ["a.py"]
    assert sc.dropped == {"near duplicate": 1}  # hidden and vendored folders are not even walked


def test_heldout_is_stable_and_small():
    paths = [f"src/f{i}.py" for i in range(60)]
    h = dataset.choose_heldout(paths, 0.05)
    assert len(h) == 3 and set(h) <= set(paths)
    assert dataset.choose_heldout(list(reversed(paths)), 0.05) == h
    assert dataset.choose_heldout(paths + ["src/new.py"], 0.05, previous=h) == h
    gone = [p for p in paths if p != h[0]]
    h2 = dataset.choose_heldout(gone, 0.05, previous=h)
    assert h[1] in h2 and h[2] in h2 and h[0] not in h2 and len(h2) == 3
    assert dataset.choose_heldout(paths[:3], 0.05) == []


def test_incremental_plan_from_content_hashes(repo):
    root, special = repo, SPECIAL
    files = dataset.scan(root).files
    held = dataset.choose_heldout([f.path for f in files], 0.1)
    rng = np.random.default_rng(0)
    fresh, replay = dataset.plan_round(files, {}, held, 1.0, rng)
    assert {f.path for f in fresh} == {f.path for f in files} - set(held) and replay == []
    trained = {f.path: f.sha1 for f in fresh}
    assert dataset.plan_round(files, trained, held, 1.0, rng) == ([], [])
    # edit one file, add one: both fresh; replay draws as many unchanged files
    target = next(f.path for f in files if f.path not in held)
    with open(os.path.join(root, target), "a") as f:
        f.write("\n\ndef added():\n    return 42\n")
    with open(os.path.join(root, "pkg", "brand_new.py"), "w") as f:
        f.write(source(200, np.random.default_rng(5)))
    files2 = dataset.scan(root).files
    fresh, replay = dataset.plan_round(files2, trained, held, 1.0, rng)
    assert sorted(f.path for f in fresh) == sorted([target, "pkg/brand_new.py"])
    assert len(replay) == 2 and all(trained[f.path] == f.sha1 for f in replay)
    assert not {f.path for f in fresh + replay} & set(held)
    fresh, replay = dataset.plan_round(files2, trained, held, 0.0, rng)
    assert len(replay) == 1  # at least one old file keeps the rest in mind


def test_pieces_cut_at_lines():
    text = "".join(f"line {i} " + "x" * (i % 7) + "\n" for i in range(200))
    ps = dataset.pieces(text, 100)
    assert "".join(ps) == text and all(len(p) <= 100 for p in ps)
    assert all(p.endswith("\n") for p in ps)
    long = "y" * 250
    assert dataset.pieces(long, 100) == ["y" * 100, "y" * 100, "y" * 50]


def test_samples_fim_rate_and_windows(tok, texts):
    mk = dataset.SampleMaker(tok, seq_len=48, fim_rate=0.9)
    assert mk.has_fim
    seed = int(np.random.SeedSequence().entropy % (1 << 31))
    print("seed", seed)
    stream = mk.encode([t for _, t in texts], seed)
    n_eot = int((stream == tok.eos_id).sum())
    n_fim = int((stream == tok.fim_mid_id).sum())
    assert n_eot > 40 and abs(n_fim / n_eot - 0.9) < 0.12, (n_fim, n_eot)
    assert int((stream == tok.fim_pre_id).sum()) == n_fim == int((stream == tok.fim_suf_id).sum())
    assert np.array_equal(stream, mk.encode([t for _, t in texts], seed))  # seeded
    ws = mk.windows(stream)
    assert all(len(t) == len(g) <= 48 for t, g in ws) and all(len(t) == 48 for t, _ in ws[:-1])
    assert np.array_equal(np.concatenate([t for t, _ in ws] + [ws[-1][1][-1:]]), stream)
    for t, g in ws:
        assert np.array_equal(t[1:], g[:-1])
    # plain (causal) samples decode back to the source text
    plain = dataset.SampleMaker(tok, seq_len=48, fim_rate=0.0).encode([texts[0][1]], 0)
    assert tok.decode(plain[plain != tok.eos_id]) == texts[0][1]


def test_folder_ignored_by_the_enclosing_repository_is_walked(tmp_path):
    """An unpacked sdist inside an ignored folder of some git repository still has files to learn from."""
    import subprocess
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("work/\n")
    src = tmp_path / "work" / "pkg-1.0"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    assert dataset.candidate_paths(src) == ["pkg/mod.py"]


def test_cursor_windows_are_server_shaped(tok, texts):
    """layout=cursor: each example is one window that ends its middle with end-of-text; the middle re-joined with
    the healed prefix token is text of the file; plain files are in the packed windows."""
    mk = dataset.SampleMaker(tok, seq_len=1024)
    seed = int(np.random.SeedSequence().entropy % (1 << 31))
    print("seed", seed)
    ws = mk.cursor_windows(texts, seed, fim_rate=1.0)
    ex = [(t, g) for t, g in ws if tok.fim_mid_id in t]
    assert mk.special[dataset.FILE_SEP] is not None  # the test model has <|file_sep|>
    assert len(ex) >= len(texts) // 2
    joined = "".join(t for _, t in texts)
    for t, g in ex:
        assert len(t) == len(g) <= 1024 and np.array_equal(t[1:], g[:-1]) and g[-1] == tok.eos_id
        mid = tok.decode(g[list(t).index(tok.fim_mid_id):-1])
        assert mid and mid in joined, mid
    again = mk.cursor_windows(texts, seed, fim_rate=1.0)
    assert len(again) == len(ws) and all(np.array_equal(a[0], b[0]) for a, b in zip(again, ws))  # seeded


def test_cursor_windows_budgets(tok, texts):
    """example_chars/max_examples set how many examples a file gives, context_chars how long each is."""
    mk = dataset.SampleMaker(tok, seq_len=1024)

    def examples(**kw):
        return [t for t, _ in mk.cursor_windows(texts, 7, fim_rate=1.0, **kw) if tok.fim_mid_id in t]

    factory = examples(example_chars=3000, max_examples=8)
    many = examples(example_chars=100, max_examples=64)
    short = examples(example_chars=100, max_examples=64, context_chars=600)
    assert len(many) > 2 * len(factory)
    assert np.mean([len(t) for t in short]) < 0.6 * np.mean([len(t) for t in many])
    # a short seq_len shortens the contexts: more examples fit than those of full length that happen to be short
    small = [t for t, _ in dataset.SampleMaker(tok, seq_len=256).cursor_windows(
        texts, 7, fim_rate=1.0, example_chars=100, max_examples=64) if tok.fim_mid_id in t]
    print(len(small), sum(len(t) <= 256 for t in many), len(many))
    assert len(small) > 1.5 * sum(len(t) <= 256 for t in many)


def test_epochs_are_laid_out_afresh(tok, texts):
    """relayout: each epoch has other windows, the same ones again for the same (seed, epoch) (a resumed round
    must see what it would have); without it every epoch repeats the first."""
    from ckls.tune.loop import EpochWindows, TuneOptions

    mk = dataset.SampleMaker(tok, seq_len=48)
    for layout in ("pieces", "cursor"):
        o = TuneOptions(layout=layout, seq_len=48)

        def epoch(e, opts=o):
            ew = EpochWindows(mk, texts, 11, opts)
            return [ew.window(e, i)[0].tolist() for i in range(len(ew.of(e)))]

        e0, e1 = epoch(0), epoch(1)
        assert e0 == epoch(0) and e1 == epoch(1)
        assert e0 != e1
        fixed = TuneOptions(layout=layout, seq_len=48, relayout=False)
        assert epoch(0, fixed) == epoch(1, fixed) == e0


def test_cursor_windows_middle_only(tok, texts):
    """middle_only: examples alone, every target before <|fim_middle|> ignored, the middle and its end kept."""
    ws = dataset.SampleMaker(tok, seq_len=1024).cursor_windows(texts, 3, fim_rate=0.5, middle_only=True)
    assert ws and all(tok.fim_mid_id in t for t, _ in ws)
    for t, g in ws:
        k = list(t).index(tok.fim_mid_id)
        assert (g[:k] == -1).all() and (g[k:] >= 0).all() and g[-1] == tok.eos_id


def test_cursor_windows_carry_the_retrieved_windows_when_the_server_shows_them(tok, texts):
    """With retrieval on, a round's examples have the head the server's prompt has: windows of the repository's
    other files, as the index retrieves them (the same retriever the factory uses)."""
    from ckls.index.windows import package_retriever

    retrieve = package_retriever([{"path": p, "text": t} for p, t in texts])
    calls = []

    def spy(path, before, k):
        out = retrieve(path, before, k)
        calls.append((path, out))
        return out

    mk = dataset.SampleMaker(tok, seq_len=1024)
    with_r = mk.cursor_windows(texts, 5, fim_rate=1.0, retrieve=spy)
    without = mk.cursor_windows(texts, 5, fim_rate=1.0)
    shown = [w for _, got in calls for w in got]
    assert shown and all(p != where for p, got in calls for where, _ in got)  # never a file's own windows
    assert len(with_r) >= len(without) // 2  # (the head takes room from the prefix; few examples grow too long)
    flat = tok.decode([int(x) for t, _ in with_r for x in t])
    assert sum(text.strip()[:60] in flat for _, text in shown) >= len(shown) // 2
