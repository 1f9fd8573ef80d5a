"""Corpus pieces: licence decisions, duplicate removal, FIM layouts, and a corpus built from a fake install."""
import json
from email.message import Message

import numpy as np
import pytest

pytest.importorskip("tokenizers")

from ckls.fim import cursors, dedup, fill  # noqa: E402
from ckls.train import data, fim, licences, tokenizer as tk  # noqa: E402


def meta(**fields):
    m = Message()
    for k, v in fields.items():
        for item in v if isinstance(v, list) else [v]:
            m[k.replace("_", "-")] = item
    return m


@pytest.mark.parametrize("fields,want", [
    ({"License_Expression": "MIT"}, "MIT"),
    ({"License_Expression": "Apache-2.0 OR GPL-2.0-only"}, "Apache-2.0"),
    ({"License_Expression": "MIT AND GPL-3.0-only"}, None),
    ({"License_Expression": "BSD-3-Clause AND (MIT OR Apache-2.0)"}, "BSD-3-Clause AND MIT"),
    ({"License_Expression": "GPL-3.0-only AND (MIT OR Apache-2.0)"}, None),
    ({"License_Expression": "(GPL-2.0-only OR BSD-2-Clause) AND Zlib"}, "BSD-2-Clause AND Zlib"),
    ({"License_Expression": "Apache-2.0 WITH LLVM-exception"}, "Apache-2.0"),
    ({"License_Expression": "LicenseRef-NVIDIA-Proprietary"}, None),
    ({"License_Expression": "MPL-2.0"}, None),
    ({"Classifier": ["Programming Language :: Python", "License :: OSI Approved :: MIT License"]}, "MIT"),
    ({"Classifier": "License :: OSI Approved :: GNU General Public License v3 (GPLv3)"}, None),
    ({"License": "Apache License, Version 2.0"}, "Apache-2.0"),
    ({"License": "new BSD"}, "BSD-3-Clause"),
    ({"License": "MIT OR AFL-2.1"}, "MIT"),
    ({"License": "GPL"}, None),
    ({"License": "Permission is hereby granted, free of charge, to any person obtaining a copy " * 3}, "MIT"),
    ({}, None),
])
def test_licences(fields, want):
    got, source = licences.from_metadata(meta(**fields))
    assert got == want, source


def random_code(rng, n_lines):
    words = ["x", "y", "total", "values", "self", "return", "def", "for", "in", "if", "else", "=", "+", "(", ")"]
    return "\n".join(" ".join(rng.choice(words, rng.integers(3, 12))) + f" {rng.integers(1000)}"
                     for _ in range(n_lines))


def test_dedup_exact_and_near():
    seed = int(np.random.SeedSequence().entropy % 2**32)
    print("seed", seed)
    rng = np.random.default_rng(seed)
    docs = [random_code(rng, 200) for _ in range(20)]
    lines = docs[3].split("\n")
    lines[10] = "changed = 1"
    near = "\n".join(lines)                                   # one line of 200 edited: near duplicate
    ws = "\n\n".join(ln + "   " for ln in docs[5].split("\n"))  # whitespace only: exact duplicate
    assert dedup.exact_key(ws) == dedup.exact_key(docs[5])
    assert dedup.exact_key(near) != dedup.exact_key(docs[3])
    sigs = np.stack([dedup.signature(d) for d in docs + [near]])
    keep = dedup.near_duplicates(sigs)
    assert keep[:20].all() and not keep[20]
    assert (dedup.signature(docs[0]) == dedup.signature(docs[0])).all()


def test_fim_layouts_rebuild_the_document():
    seed = int(np.random.SeedSequence().entropy % 2**32)
    print("seed", seed)
    rng = np.random.default_rng(seed)
    text = random_code(rng, 30)
    seen = set()
    for _ in range(200):
        lay = fill.layout(text, rng, fim_rate=0.8, spm_rate=0.5, line_rate=0.5)
        key = tuple(p[0] for p in lay if isinstance(p, tuple) and len(p) == 1)
        seen.add(key)
        if key == (tk.EOT,):
            assert lay == [text, (tk.EOT,)]
            continue
        mid = lay[5][1]
        assert lay[4] == (tk.FIM_MID,) and lay[6] == (tk.EOT, "end")
        pre, suf = (lay[1], lay[3]) if lay[0] == (tk.FIM_PRE,) else (lay[3], lay[1])
        assert pre + mid + suf == text
    assert {(tk.EOT,), (tk.FIM_PRE, tk.FIM_SUF, tk.FIM_MID), (tk.FIM_SUF, tk.FIM_PRE, tk.FIM_MID)} <= seen


def test_encode_stream_mask_covers_middles():
    tok = tk.for_data(tk.train([random_code(np.random.default_rng(1), 200)], vocab_size=300))
    texts = ["def f(x):\n    return x + 1\n", "a = [1, 2, 3]\nprint(a)\n"]
    stream, counts, mask = fim.encode_stream(texts, tok, seed=3, fim_rate=1.0, spm_rate=0.0)
    assert len(stream) == len(mask) == sum(counts)
    assert stream.dtype == np.uint16
    mid, eot = tok.token_to_id(tk.FIM_MID), tok.token_to_id(tk.EOT)
    # After each <|fim_middle|> the mask is on up to and including <|endoftext|>.
    for i in np.flatnonzero(stream == mid):
        j = i + 1 + np.argmax(stream[i + 1:] == eot)
        assert mask[i] == 0 and mask[i + 1:j + 1].all()
    plain, counts, mask = fim.encode_stream(texts, tok, fim_rate=0.0)
    assert mask.sum() == 0 and tok.decode(plain.tolist(), skip_special_tokens=True) == "".join(texts)


def fake_dist(site, name, licence_fields, files):
    di = site / f"{name}-1.0.dist-info"
    di.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    lines += [f"{k}: {v}" for k, v in licence_fields]
    (di / "METADATA").write_text("\n".join(lines) + "\n\n")
    rec = []
    for rel, text in files.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        rec.append(f"{rel},,")
    (di / "RECORD").write_text("\n".join(rec) + "\n")


def test_corpus_from_fake_install(tmp_path):
    rng = np.random.default_rng(int(np.random.SeedSequence().entropy % 2**32))
    site, std = tmp_path / "site", tmp_path / "std"
    a, b, c = (random_code(rng, 40) for _ in range(3))
    fake_dist(site, "goodpkg", [("License-Expression", "MIT")],
              {"goodpkg/__init__.py": a, "goodpkg/copy.py": a, "goodpkg/k.cu": b, "goodpkg/data.txt": c,
               "goodpkg/gen.py": "# Generated by a tool. DO NOT EDIT.\n" + c})
    fake_dist(site, "gplpkg", [("License", "GPL-3.0")], {"gplpkg/__init__.py": c})
    fake_dist(site, "other", [("Classifier", "License :: OSI Approved :: BSD License")], {"other/m.py": c})
    (std / "json").mkdir(parents=True)
    (std / "json" / "__init__.py").write_text(random_code(rng, 30))
    (std / "site-packages").mkdir()
    (std / "site-packages" / "skip.py").write_text(random_code(rng, 30))
    m = data.build(tmp_path / "out", stdlib=std, site_dirs=[site], heldout=["other"], workers=1, log=lambda s: None)
    pk = {p["name"]: p for p in m["packages"]}
    assert pk["gplpkg"]["split"] == "excluded" and pk["gplpkg"]["licence"] is None
    assert pk["goodpkg"]["split"] == "train" and pk["goodpkg"]["licence"] == "MIT"
    assert pk["goodpkg"]["n_files"] == 2  # __init__.py and k.cu; copy.py is a duplicate, gen.py generated
    assert pk["goodpkg"]["dropped"] == {"exact duplicate": 1, "generated": 1}
    assert pk["other"]["split"] == "heldout" and pk["other"]["licence"] == "BSD"
    assert pk["stdlib/json"]["licence"] == "PSF-2.0"
    assert "skip" not in json.dumps(m)
    train = list(data.read_docs(tmp_path / "out" / "train.jsonl"))
    held = list(data.read_docs(tmp_path / "out" / "heldout.jsonl"))
    assert {d["pkg"] for d in train} == {"goodpkg", "stdlib/json"}
    assert {d["lang"] for d in train} == {"python", "cuda"}
    assert [d["pkg"] for d in held] == ["other"] and held[0]["text"] == c


def _cursor_parts(lay):
    """(prefix, middle, suffix, head pieces) of a cursors.example layout."""
    i = next(k for k, p in enumerate(lay) if p in ((tk.FIM_PRE,), (tk.FIM_SUF,)))
    body = lay[i:]
    if body[0] == (tk.FIM_SUF,):
        suf, pre = body[1], body[3][1]
    else:
        pre, suf = body[1][1], body[3]
    assert body[-3:-1] == [(tk.FIM_MID,), body[-2]] and body[-1] == (tk.EOT, "end")
    return pre, body[-2][1], suf, lay[:i]


def test_cursor_examples_are_contiguous_cuts_of_the_file():
    seed = int(np.random.SeedSequence().entropy % 2**32)
    print("seed", seed)
    rng = np.random.default_rng(seed)
    files = [{"pkg": "p", "path": f"p/m{i}.py", "lang": "python", "text": random_code(rng, 80)} for i in range(4)]
    files[1]["text"] = "def helper(a, b):\n    return a + b\n\n\nclass Box:\n    pass\n"
    files[2]["text"] += "\nx = helper(1, 2)\nbox = Box()\ny = helper(\n"
    n, heads = 0, 0
    for i, lay in cursors.package_layouts(files, rng, fim_rate=1.0):
        pre, mid, suf, head = _cursor_parts(lay)
        assert mid and pre + mid + suf in files[i]["text"]
        if head:
            heads += 1
            assert head[-2] == (tk.FILE_SEP,) and head[-1] == files[i]["path"].rsplit("/", 1)[-1] + "\n"
        n += 1
    assert n >= 4 and heads >= 1
    for mode in cursors.MODES:
        text = files[0]["text"]
        for _ in range(50):
            a, b = cursors.cut(text, rng, mode)
            assert 0 <= a < b <= len(text)
            if mode == "line":
                line_end = text.find("\n", a)
                assert "\n" not in text[a:b] and text[b:line_end].strip() == ""


def test_cursor_examples_fit_their_window_and_grow_to_the_servers_budgets():
    """3,800 characters (a 1,024-token window): the prefix gives way to the retrieved head and the suffix. 5,700 (a
    2,048-token window): head, prefix and suffix each reach the server's budget, as in a served prompt."""
    rng = np.random.default_rng(11)
    text = random_code(rng, 600)
    windows = [("a.py", "x = 1\n" * 130), ("b.py", "y = 2\n" * 130)]   # 780 characters each
    longest = {}
    for total in (cursors.TOTAL_CHARS, 5700):
        longest[total] = 0
        for _ in range(300):
            lay = cursors.example(text, "m.py", rng, total_chars=total, retrieve=lambda before, k: windows[:k])
            if lay is None:
                continue
            pre, mid, suf, head = _cursor_parts(lay)
            shown = len(pre) + len(suf) + sum(len(p) for p in head if isinstance(p, str))
            assert shown <= total + 100, (total, len(pre), len(suf))   # (+ the file names of the head)
            if sum(isinstance(p, str) and p.startswith(("a.py", "b.py")) for p in head) == 2:  # a full head
                longest[total] = max(longest[total], len(pre))
    assert longest[cursors.TOTAL_CHARS] <= 2000 < 2400 < longest[5700] <= cursors.PREFIX_CHARS[1]


def test_cursor_head_carries_definitions_used_near_the_cursor():
    rng = np.random.default_rng(0)
    defs = {"helper": ("util.py", "def helper(a, b):")}
    pieces = cursors.head("x = 1\ny = helper(", "main.py", defs, [], rng)
    assert pieces[:2] == [(tk.FILE_SEP,), "util.py\ndef helper(a, b):\n"]
    assert pieces[-2:] == [(tk.FILE_SEP,), "main.py\n"]


def test_encode_layouts_heals_the_prefix_into_the_middle():
    tok = tk.for_data(tk.train([random_code(np.random.default_rng(1), 200)], vocab_size=300))
    pre, mid, suf = "def f(x):\n    return x + 1\n\nvalue = comp", "ute(3)", "\nprint(value)\n"
    lay = [(tk.FIM_SUF,), suf, (tk.FIM_PRE,), ("pre", pre), (tk.FIM_MID,), ("mid", mid), (tk.EOT, "end")]
    stream, counts, mask, starts = fim.encode_layouts([lay, ["plain text", (tk.EOT,)]], tok)
    assert list(starts) == [0, counts[0]] and len(stream) == sum(counts) == len(mask)
    ids = stream[:counts[0]].tolist()
    p, m = ids.index(tok.token_to_id(tk.FIM_PRE)), ids.index(tok.token_to_id(tk.FIM_MID))
    healed_pre, healed_mid = tok.decode(ids[p + 1:m]), tok.decode(ids[m + 1:-1])
    assert healed_pre + healed_mid == pre + mid and len(healed_pre) < len(pre)   # the last token moved
    assert tok.encode(pre).ids[:-1] == ids[p + 1:m]   # what the server sends: the prefix less its last token
    assert mask[m + 1:counts[0]].all() and not mask[:m + 1].any() and not mask[counts[0]:].any()


def test_step_rows_aligned_windows_start_sequences():
    pytest.importorskip("torch")
    from ckls.train.train import step_rows
    starts = np.array([0, 500, 1200, 3000])
    plain = step_rows(7, 3, 10_000, 256, 64)
    assert (step_rows(7, 3, 10_000, 256, 64, starts, 0.0) == plain).all()   # off: the old draw, unchanged
    assert set(step_rows(7, 3, 10_000, 256, 64, starts, 1.0)) <= set(starts)
    mixed = step_rows(7, 3, 10_000, 256, 400, starts, 0.5)
    assert 100 < np.isin(mixed, starts).sum() < 300
