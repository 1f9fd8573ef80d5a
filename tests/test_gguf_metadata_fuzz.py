"""Fuzzing the *meaning* of GGUF metadata: mutants that keep the file well-formed but give keys the wrong type
(an integer where an array is due, an array where a string is due...), odd values (NaN, 2**63, huge strings,
ids past the vocabulary, fewer tokens than embedding rows) or drop and add keys. test_gguf_fuzz.py mutates bytes;
byte flips rarely produce a well-formed file whose *types* are wrong, which is where the loader had tracebacks.

Each mutant goes through `ckls model info`, the loader and `ckls generate` (a few tokens), in a child process
(a crash kills the child, not pytest; the parent notes the case and goes on after it). Every case must load and
generate, or end in a ModelError whose message (and the CLI's one line) is at most 500 characters; no other
exception, no crash, no hang. Mutants derive from (seed, case) alone; the seed is printed, CKLS_META_FUZZ_SEED
picks another and CKLS_META_FUZZ_CASES the count. One case: `python tests/test_gguf_metadata_fuzz.py one SEED CASE`.
"""
from __future__ import annotations

import io
import json
import math
import os
import random
import struct
import sys
import tempfile
import time

N_CASES = int(os.environ.get("CKLS_META_FUZZ_CASES", "2000"))
SEED = int(os.environ.get("CKLS_META_FUZZ_SEED", str(random.randrange(1 << 30))))
CASE_TIMEOUT_S = 20
MAX_MESSAGE = 500
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# GGUF value types: id -> struct format; 8 = string, 9 = array
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
INTS = [0, 1, 2, 3, 7, 8, 31, 32, 47, 48, 49, 63, 64, 255, 256, 65535, 2**31 - 1, 2**31, 2**32 - 1, 2**40,
        2**63 - 1, 2**64 - 1, -1, -2, -2**31, -2**63]
FLOATS = [0.0, -0.0, 1.0, -1.0, 1e-45, 1e-6, 0.5, 1e4, 1e38, 3.4e38, 1e300, math.inf, -math.inf, math.nan]
STRINGS = ["", "gpt2", "llama", "qwen2", "bert", "model", "adapter", "default", "qwen2 ", "x" * 300,
           "Ġ" * 5000, "a" * 200_000, "\udcff", "\x00"]


# ---- a well-formed GGUF from a key/value list and the base's tensors ------------------------------------------
def parse(data: bytes):
    """(kv list of [key, vtype, value, itype], tensor-info bytes, n_tensors, data section) of a valid GGUF v3."""
    pos = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)

    def string(p):
        n = struct.unpack_from("<Q", data, p)[0]
        return data[p + 8:p + 8 + n], p + 8 + n

    def scalar(t, p):
        fmt = "<" + SCALARS[t]
        return struct.unpack_from(fmt, data, p)[0], p + struct.calcsize(fmt)

    kv = []
    for _ in range(n_kv):
        key, pos = string(pos)
        vt = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        it = None
        if vt in SCALARS:
            v, pos = scalar(vt, pos)
        elif vt == 8:
            v, pos = string(pos)
        else:
            it, cnt = struct.unpack_from("<IQ", data, pos)
            pos += 12
            v = []
            for _ in range(cnt):
                x, pos = string(pos) if it == 8 else scalar(it, pos)
                v.append(x)
        kv.append([key.decode(), vt, v, it])
    info_start = pos
    for _ in range(n_tensors):
        _, pos = string(pos)
        nd = struct.unpack_from("<I", data, pos)[0]
        pos += 4 + 8 * nd + 4 + 8
    data_start = (pos + 31) // 32 * 32
    return kv, data[info_start:pos], n_tensors, data[data_start:]


def _enc_scalar(t: int, v) -> bytes:
    fmt = SCALARS[t]
    if fmt in "fd":
        v = float(v)
        if fmt == "f" and math.isfinite(v) and abs(v) > 3.4028234e38:
            v = math.copysign(math.inf, v)  # what a float32 holds of it
        return struct.pack("<" + fmt, v)
    if fmt == "?":
        return struct.pack("<?", bool(v))
    bits = struct.calcsize(fmt) * 8
    v = int(v) & ((1 << bits) - 1)  # wrap into the type, as a misread would
    return struct.pack("<" + fmt.upper(), v)


def _enc_string(v) -> bytes:
    b = v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogatepass")
    return struct.pack("<Q", len(b)) + b


def serialize(kv, infos: bytes, n_tensors: int, tensor_data: bytes) -> bytes:
    out = [b"GGUF", struct.pack("<IQQ", 3, n_tensors, len(kv))]
    align = 32
    for key, vt, v, it in kv:
        out.append(_enc_string(key) + struct.pack("<I", vt))
        if vt in SCALARS:
            out.append(_enc_scalar(vt, v))
        elif vt == 8:
            out.append(_enc_string(v))
        else:
            out.append(struct.pack("<IQ", it, len(v)))
            out += [_enc_string(x) if it == 8 else _enc_scalar(it, x) for x in v]
        if key == "general.alignment" and vt in SCALARS and vt not in (6, 7, 12):
            a = int(v) & 0xFFFFFFFF
            align = a if 0 < a <= 4096 and a & (a - 1) == 0 else 32
    out.append(infos)
    head = b"".join(out)
    return head + b"\0" * (-len(head) % align) + tensor_data


# ---- mutations of types and values ------------------------------------------------------------------------------
def _value_of(r: random.Random, vt: int, it, old):
    """A value of GGUF type vt (array element type it), related to old where that makes sense."""
    if vt in SCALARS:
        if SCALARS[vt] in "fd":
            return r.choice(FLOATS + ([float(old)] if isinstance(old, (int, float)) else []))
        if vt == 7:
            return r.random() < 0.5
        return r.choice(INTS + ([old + r.choice([-1, 1])] if isinstance(old, int) else []))
    if vt == 8:
        if isinstance(old, list) and old and r.random() < 0.3:
            return r.choice(old) if isinstance(old[0], bytes) else str(old[0])
        return r.choice(STRINGS + [bytes([r.randrange(256) for _ in range(r.randrange(1, 9))])])
    n = len(old) if isinstance(old, list) else r.choice([0, 1, 2, 5, 48])
    n = r.choice([n, n, max(0, n - 1), n + 1, r.randrange(0, 80)])
    return [_value_of(r, it, None, None) for _ in range(n)]


def _revalue_array(r: random.Random, it: int, v: list) -> list:
    v = list(v)
    op = r.choice(["truncate", "extend", "replace", "replace", "swap", "empty"])
    if op == "truncate" and v:
        return v[:r.randrange(len(v))]
    if op == "extend":
        extra = [r.choice(v) if v and r.random() < 0.5 else _value_of(r, it, None, None)
                 for _ in range(r.choice([1, 2, 16, 200]))]
        return v + extra
    if op == "swap" and len(v) > 1:
        i, j = r.randrange(len(v)), r.randrange(len(v))
        v[i], v[j] = v[j], v[i]
        return v
    if op == "empty":
        return []
    for _ in range(r.randint(1, 4)):
        if not v:
            break
        i = r.randrange(len(v))
        if it == 8:
            v[i] = r.choice([b"", b"a b c", b"a", b"\xff\xfe", v[0], b"x" * 100_000, b"<|fim_prefix|>", b" ",
                             b"\xc4\xa0 \xc4\xa0"])
        else:
            v[i] = _value_of(r, it, v[i], v[i])
    return v


# the keys the runtime reads (listed here, not taken from the loader: the test must not trust its schema)
KNOWN = ["general.architecture", "general.type", "general.name", "general.alignment", "tokenizer.ggml.model",
         "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type",
         "adapter.type", "adapter.lora.alpha"] + [
    f"tokenizer.ggml.{k}_token_id" for k in ("bos", "eos", "padding", "fim_pre", "fim_suf", "fim_mid", "fim_pad",
                                             "fim_rep", "fim_sep")] + [
    f"qwen2.{k}" for k in ("context_length", "embedding_length", "block_count", "feed_forward_length", "vocab_size",
                           "attention.head_count", "attention.head_count_kv", "rope.dimension_count",
                           "attention.layer_norm_rms_epsilon", "rope.freq_base")]


def mutate(kv: list, seed: int, case: int) -> tuple[list, str]:
    r = random.Random(seed * 1_000_003 + case)
    kv = [list(e) for e in kv]
    known = KNOWN
    descs = []
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        op = r.choice(["retype", "retype", "retype", "revalue", "revalue", "revalue", "delete", "add"])
        if op == "add":
            have = {e[0] for e in kv}
            key = r.choice([k for k in known if k not in have] or known)
            vt = r.choice(list(SCALARS) + [8, 9])
            it = r.choice(list(SCALARS) + [8]) if vt == 9 else None
            kv.insert(r.randrange(len(kv) + 1), [key, vt, _value_of(r, vt, it, None), it])
            descs.append(f"add {key}:{vt}/{it}")
            continue
        # the keys the runtime reads are the interesting ones; others (general.file_type...) now and then
        used = [i for i, e in enumerate(kv) if e[0] in known]
        i = r.choice(used if used and r.random() < 0.85 else range(len(kv)))
        key, vt, v, it = kv[i]
        if op == "delete":
            del kv[i]
            descs.append(f"delete {key}")
        elif op == "retype":
            nvt = r.choice(list(SCALARS) + [8, 9, 9])
            nit = r.choice(list(SCALARS) + [8, 8]) if nvt == 9 else None
            kv[i] = [key, nvt, _value_of(r, nvt, nit, v), nit]
            descs.append(f"retype {key} {vt}/{it}->{nvt}/{nit}")
        else:
            nv = _revalue_array(r, it, v) if vt == 9 else _value_of(r, vt, it, v)
            kv[i] = [key, vt, nv, it]
            descs.append(f"revalue {key}")
    return kv, "; ".join(descs)


# ---- one case: model info, the loader, a short generation -----------------------------------------------------
class _Out(io.TextIOWrapper):
    def __init__(self):
        super().__init__(io.BytesIO(), encoding="utf-8", write_through=True)

    def text(self) -> str:
        return self.buffer.getvalue().decode("utf-8", "replace")


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """ckls's command line in this process: (exit code, stderr, stdout); any exception it lets out propagates."""
    from ckls.cli import main

    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err = _Out(), _Out()
    try:
        rc = main(argv)
    finally:
        sys.stdout, sys.stderr = old
    return rc, err.text(), out.text()


def run_case(path: str) -> str:
    """'loaded' (and generated) or 'rejected' (a ModelError); raises AssertionError or whatever escaped."""
    from ckls.runtime import ModelError, load_model

    rc, err, out = _cli(["model", "info", path])
    assert rc in (0, 1) and (rc == 0 or err.startswith("ckls: ")), (rc, err[:300])
    assert "Traceback" not in err and all(len(l) <= MAX_MESSAGE for l in (err + out).splitlines()), (err + out)[:300]
    try:
        m = load_model(path, n_ctx=32, n_threads=1)
    except ModelError as exc:
        assert len(str(exc)) <= MAX_MESSAGE, f"message of {len(str(exc))} characters: {str(exc)[:200]}"
        return "rejected"
    try:
        tok = m.tokenizer
        ids = tok.encode("def ta(e):\n") or [0]
        out = list(m.generate(ids[:16], 4))
        assert all(0 <= i < tok.n_vocab for i in out), out
        b"".join(tok.token_bytes(i) for i in out)
    finally:
        m.close()
    rc, err, _ = _cli(["generate", "-m", path, "-t", "1", "--ctx", "32", "-n", "4", "-q", "-p", "def ta(e):\n"])
    assert rc == 0, (rc, err[:300])
    return "loaded"


def child(base_path: str, seed: int, start: int, end: int, progress_path: str, out_path: str) -> None:
    import signal

    sys.path.insert(0, REPO)

    def hang(*_):
        raise TimeoutError(f"case ran over {CASE_TIMEOUT_S} s")

    signal.signal(signal.SIGALRM, hang)
    kv, infos, n_tensors, data = parse(open(base_path, "rb").read())
    counts = {"loaded": 0, "rejected": 0}
    bad = []
    fd, tmp = tempfile.mkstemp(suffix=".gguf")
    os.close(fd)
    with open(progress_path, "w") as prog:
        for case in range(start, end):
            mkv, desc = mutate(kv, seed, case)
            with open(tmp, "wb") as f:
                f.write(serialize(mkv, infos, n_tensors, data))
            prog.seek(0)
            prog.write(f"{case:10d}")
            prog.flush()
            signal.alarm(CASE_TIMEOUT_S)
            try:
                counts[run_case(tmp)] += 1
            except BaseException as exc:  # noqa: BLE001 - every other outcome is a finding
                bad.append({"case": case, "mutation": desc[:300], "error": f"{type(exc).__name__}: {exc}"[:300]})
            finally:
                signal.alarm(0)
    os.unlink(tmp)
    with open(out_path, "w") as f:
        json.dump({"counts": counts, "bad": bad}, f)


def run_cases(base_path: str, seed: int, n: int, workdir: str):
    """Runs cases [0, n) in a child, restarting it after a crash or a hang; (counts, findings)."""
    from test_gguf_fuzz import run_range

    return run_range(base_path, seed, 0, n, workdir, os.path.abspath(__file__), CASE_TIMEOUT_S * 10 + n // 10)


def test_metadata_types_and_values(tmp_path):
    from test_gguf_fuzz import write_base

    base_path = str(tmp_path / "base.gguf")
    write_base(base_path)
    base = open(base_path, "rb").read()
    kv, infos, n_tensors, data = parse(base)
    assert serialize(kv, infos, n_tensors, data) == base  # the serializer is exact: mutants differ only as meant
    assert run_case(base_path) == "loaded"
    print(f"\nmetadata fuzz seed {SEED} (CKLS_META_FUZZ_SEED={SEED} reproduces), {N_CASES} cases")
    t0 = time.time()
    counts, findings = run_cases(base_path, SEED, N_CASES, str(tmp_path))
    print(f"metadata fuzz: {counts['loaded']} loaded and generated, {counts['rejected']} rejected with ModelError, "
          f"{len(findings)} failures, {time.time() - t0:.0f}s")
    for f in findings[:20]:
        print("  ", f)
    assert not findings, f"seed {SEED}: {len(findings)} cases failed (first: {findings[0]})"
    assert counts["loaded"] + counts["rejected"] == N_CASES
    assert counts["rejected"] > N_CASES // 4 and counts["loaded"] > N_CASES // 20  # both outcomes are reached


def test_padded_vocabulary_never_samples_past_the_tokens(tmp_path):
    """More embedding rows than tokens (llama.cpp loads such files): the rows past the vocabulary are made the
    most likely next token, and still never come out of generation, the CLI or the server's engine."""
    import numpy as np

    from ckls.runtime import load_model
    from ckls.runtime.gguf_write import write_model
    from ckls.runtime.synth import synth_vocab, synth_weights
    from test_gguf_fuzz import FUZZ_SHAPE

    vocab = synth_vocab(300)
    shape = dict(FUZZ_SHAPE, n_vocab=320)  # 20 padding rows
    w = synth_weights("qwen2", shape, 3, tied=False)
    path = str(tmp_path / "padded.gguf")
    write_model(path, "qwen2", shape, w, vocab, padded_vocab=True)
    prompt = "def f(x):\n"
    with load_model(path, n_ctx=64, n_threads=1) as m:
        assert m.n_vocab == 320 and m.tokenizer.n_vocab == 300
        ids = m.tokenizer.encode(prompt)
        logits = m.logits_for(ids)
    # make a padding row the argmax of the first step: 10x the best real token's output row
    best = int(np.argmax(logits[:300]))
    w["output.weight"][310] = w["output.weight"][best] * (10.0 if logits[best] > 0 else -10.0)
    write_model(path, "qwen2", shape, w, vocab, padded_vocab=True)
    with load_model(path, n_ctx=64, n_threads=1) as m:
        assert int(np.argmax(m.logits_for(ids))) == 310  # unmasked, the padding row would win
        out = list(m.generate(ids, 8))
        assert out and all(i < 300 for i in out)
        m.tokenizer.decode(out)
    rc, err, _ = _cli(["generate", "-m", path, "-t", "1", "--ctx", "64", "-n", "8", "-q", "-p", prompt])
    assert rc == 0, err


if __name__ == "__main__":
    if sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7])
    elif sys.argv[1] == "one":  # python tests/test_gguf_metadata_fuzz.py one SEED CASE
        sys.path.insert(0, REPO)
        from test_gguf_fuzz import write_base

        write_base("fuzz-base.gguf")
        kv, infos, n_tensors, data = parse(open("fuzz-base.gguf", "rb").read())
        mkv, desc = mutate(kv, int(sys.argv[2]), int(sys.argv[3]))
        print(desc)
        with open("fuzz-case.gguf", "wb") as f:
            f.write(serialize(mkv, infos, n_tensors, data))
        print(run_case("fuzz-case.gguf"))
