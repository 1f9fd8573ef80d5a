"""Fuzzing the model loader: 10,000 mutated and truncated copies of a small valid GGUF thrown at load_model.

Every case must either load (and then evaluate one prompt) or raise ModelError. Anything else fails the test:
another exception type, a crash (signal), or a hang. Cases run in child processes (this file run as a script), so
a crash kills a child, not pytest: the parent notes the case the child was on, and restarts it after that case.

Mutations are derived from (seed, case number) alone, so any failure reproduces with
`python tests/test_gguf_fuzz.py one BASE.gguf SEED CASE`. CKLS_FUZZ_SEED picks another mutation stream and
CKLS_FUZZ_CASES the count. For out-of-bounds reads that do not crash, run it against an ASan/UBSan build of
ckls._native with libasan/libubsan in LD_PRELOAD and ASAN_OPTIONS=detect_leaks=0 (the children inherit both).
"""
from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

N_CASES = int(os.environ.get("CKLS_FUZZ_CASES", "10000"))
N_CHILDREN = 4
SEED = int(os.environ.get("CKLS_FUZZ_SEED", "20261123"))
CHILD_TIMEOUT_S = 300
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A small model whose matrices cover several types (f32 norms, q8_0 / q4_0 / f16 / bf16 matrices) and whose
# vocabulary is short (gguf's reader spends its time per string; a short vocabulary keeps a case near 10 ms).
FUZZ_SHAPE = dict(n_vocab=48, n_embd=32, n_layer=1, n_head=2, n_head_kv=1, n_ff=64, n_ctx_train=64,
                  rms_eps=1e-6, rope_base=10000.0)
FUZZ_TYPES = {"blk.0.attn_q.weight": "q4_0", "blk.0.attn_k.weight": "f16", "blk.0.attn_v.weight": "bf16",
              "blk.0.ffn_down.weight": "f32"}


def write_base(path: str) -> None:
    from ckls.runtime.gguf_write import TOKEN_CONTROL, TOKEN_NORMAL, VocabSpec, write_model
    from ckls.runtime.synth import SPECIALS, synth_weights

    chars = [c for c in "etaoinsrlhdcupfmgbywvkx_()=:.,"] + ["Ġ", "Ċ"]  # byte-level space, newline
    merges = ["e t", "a o", "i n", "s r", "l h", "d c", "Ġ e", "in s", "et a"]
    tokens = chars + [m.replace(" ", "") for m in merges]
    tokens += SPECIALS
    types = [TOKEN_NORMAL] * (len(tokens) - len(SPECIALS)) + [TOKEN_CONTROL] * len(SPECIALS)
    assert len(tokens) == FUZZ_SHAPE["n_vocab"], len(tokens)
    eos = tokens.index("<|endoftext|>")
    vocab = VocabSpec(tokens, types, merges, pre="qwen2", eos_id=eos, bos_id=eos,
                      fim={"pre": eos + 1, "mid": eos + 2, "suf": eos + 3, "pad": eos + 4})
    write_model(path, "qwen2", FUZZ_SHAPE, synth_weights("qwen2", FUZZ_SHAPE, 7, tied=True), vocab,
                tensor_types=FUZZ_TYPES, default_type="q8_0")


# ---- layout of the base file: where each count, length, type, dim and offset sits ----------------------------
_SCALAR_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def layout(data: bytes) -> dict:
    """Offsets of the structural fields of a valid GGUF v3 file (parsed here, independently of the loader)."""
    pos = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    out = {"u64": [8, 16], "u32": [4], "vtype": [], "key_name": [], "tensor_name": [], "dims": [], "ndims": [],
           "ttype": [], "toffset": [], "strlen": [], "arrcount": []}

    def string(p):
        n = struct.unpack_from("<Q", data, p)[0]
        return p + 8 + n, n

    for _ in range(n_kv):
        out["strlen"].append(pos)
        end, n = string(pos)
        out["key_name"].append((pos + 8, n))
        pos = end
        vt = struct.unpack_from("<I", data, pos)[0]
        out["vtype"].append(pos)
        pos += 4
        if vt in _SCALAR_SIZE:
            pos += _SCALAR_SIZE[vt]
        elif vt == 8:
            out["strlen"].append(pos)
            pos, _ = string(pos)
        else:
            it, cnt = struct.unpack_from("<IQ", data, pos)
            out["vtype"].append(pos)
            out["arrcount"].append(pos + 4)
            pos += 12
            if it == 8:
                for j in range(cnt):
                    if j < 64:
                        out["strlen"].append(pos)
                    pos, _ = string(pos)
            else:
                pos += _SCALAR_SIZE[it] * cnt
    out["kv_end"] = pos
    for _ in range(n_tensors):
        out["strlen"].append(pos)
        end, n = string(pos)
        out["tensor_name"].append((pos + 8, n))
        pos = end
        nd = struct.unpack_from("<I", data, pos)[0]
        out["ndims"].append(pos)
        pos += 4
        out["dims"] += [pos + 8 * k for k in range(nd)]
        pos += 8 * nd
        out["ttype"].append(pos)
        pos += 4
        out["toffset"].append(pos)
        pos += 8
    out["info_end"] = pos
    out["data_start"] = (pos + 31) // 32 * 32
    out["size"] = len(data)
    return out


HUGE64 = [0, 1, 2, 31, 32, 33, 255, 256, 4096, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**48,
          2**62, 2**63 - 1, 2**63, 2**64 - 1]
HUGE32 = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 14, 15, 16, 30, 31, 39, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1]


def mutate(base: bytes, lay: dict, seed: int, case: int) -> tuple[bytes, str]:
    """The case-th mutant of base (deterministic in seed and case) and a short description."""
    r = random.Random(seed * 1_000_003 + case)
    d = bytearray(base)
    meta_end = lay["info_end"]
    kind = r.choice(["bitflip", "bitflip", "bytes", "truncate", "truncate", "count64", "count32", "vtype", "dims",
                     "ndims", "ttype", "toffset", "dup_tensor", "dup_key", "splice", "data", "multi"])

    def put64(off, v):
        struct.pack_into("<Q", d, off, v & (2**64 - 1))

    def put32(off, v):
        struct.pack_into("<I", d, off, v & (2**32 - 1))

    def one(kind):
        if kind == "bitflip":
            hi = meta_end if r.random() < 0.9 else len(d)
            offs = [r.randrange(hi) for _ in range(r.randint(1, 4))]
            for o in offs:
                d[o] ^= 1 << r.randrange(8)
            return f"bitflip@{offs}"
        if kind == "bytes":
            o = r.randrange(meta_end)
            n = r.randint(1, 8)
            for k in range(o, min(o + n, len(d))):
                d[k] = r.choice([0x00, 0xFF, 0x7F, 0x80, r.randrange(256)])
            return f"bytes@{o}+{n}"
        if kind == "truncate":
            region = r.choice(["header", "kv", "info", "pad", "data", "edge"])
            if region == "header":
                n = r.randrange(0, 24)
            elif region == "kv":
                n = r.randrange(24, lay["kv_end"])
            elif region == "info":
                n = r.randrange(lay["kv_end"], lay["info_end"])
            elif region == "pad":
                n = r.randrange(lay["info_end"], lay["data_start"] + 1)
            elif region == "data":
                n = r.randrange(lay["data_start"], len(d))
            else:
                n = r.choice([lay["kv_end"], lay["info_end"], lay["data_start"], len(d) - 1]) + r.choice([-1, 0, 1])
            del d[max(0, n):]
            return f"truncate@{n}/{region}"
        if kind == "count64":
            o = r.choice(lay["u64"] + lay["strlen"] + lay["arrcount"])
            v = r.choice(HUGE64 + [struct.unpack_from("<Q", d, o)[0] + r.choice([-1, 1])])
            put64(o, v)
            return f"u64@{o}={v}"
        if kind == "count32":
            o = r.choice(lay["u32"] + lay["ndims"])
            v = r.choice(HUGE32)
            put32(o, v)
            return f"u32@{o}={v}"
        if kind == "vtype":
            o = r.choice(lay["vtype"])
            v = r.choice(list(range(16)) + [2**31, 2**32 - 1])
            put32(o, v)
            return f"vtype@{o}={v}"
        if kind == "dims":
            o = r.choice(lay["dims"])
            v = r.choice(HUGE64 + [struct.unpack_from("<Q", d, o)[0] * 2, struct.unpack_from("<Q", d, o)[0] // 2])
            put64(o, v)
            return f"dim@{o}={v}"
        if kind == "ndims":
            o = r.choice(lay["ndims"])
            v = r.choice([0, 1, 2, 3, 4, 5, 2**32 - 1])
            put32(o, v)
            return f"ndims@{o}={v}"
        if kind == "ttype":
            o = r.choice(lay["ttype"])
            v = r.choice(list(range(42)) + [2**31 - 1, 2**32 - 1])
            put32(o, v)
            return f"ttype@{o}={v}"
        if kind == "toffset":
            o = r.choice(lay["toffset"])
            cur = struct.unpack_from("<Q", d, o)[0]
            v = r.choice([cur + r.randint(1, 31), cur - 32, cur + 32, len(d), len(d) - lay["data_start"],
                          len(d) - lay["data_start"] - 1, 0] + HUGE64)
            put64(o, v)
            return f"toffset@{o}={v}"
        if kind == "dup_tensor":
            # rename a tensor to another of the same name length (blk.0.attn_q / _k / _v, ffn_up ...)
            names = lay["tensor_name"]
            a = r.choice(names)
            same = [b for b in names if b[1] == a[1] and b != a]
            if not same:
                return "dup_tensor(none)"
            b = r.choice(same)
            d[b[0]:b[0] + b[1]] = base[a[0]:a[0] + a[1]]
            return f"dup_tensor@{b[0]}"
        if kind == "dup_key":
            keys = lay["key_name"]
            a = r.choice(keys)
            same = [b for b in keys if b[1] == a[1] and b != a]
            if not same:
                # or garble a key name
                o = a[0] + r.randrange(a[1])
                d[o] = r.randrange(256)
                return f"garble_key@{o}"
            b = r.choice(same)
            d[b[0]:b[0] + b[1]] = base[a[0]:a[0] + a[1]]
            return f"dup_key@{b[0]}"
        if kind == "splice":
            n = r.randint(1, 64)
            src, dst = r.randrange(len(d) - n), r.randrange(meta_end)
            d[dst:dst + n] = base[src:src + n]
            return f"splice {src}->{dst}+{n}"
        if kind == "data":
            o = r.randrange(lay["data_start"], len(d) - 4)
            struct.pack_into("<f", d, o - (o - lay["data_start"]) % 4, r.choice([float("nan"), float("inf"), -float("inf"), 1e38, -0.0]))
            d[r.randrange(lay["data_start"], len(d))] = r.randrange(256)
            return f"data@{o}"
        raise AssertionError(kind)

    if kind == "multi":
        desc = "+".join(one(r.choice(["bitflip", "bytes", "count64", "dims", "ttype", "toffset", "vtype"]))
                        for _ in range(3))
    else:
        desc = one(kind)
    return bytes(d), desc  # after the mutation ran


# ---- child: run cases, report counts and the bad ones --------------------------------------------------------
def run_case(path: str) -> str:
    """'loaded' or 'rejected'; raises anything else."""
    from ckls.runtime import ModelError, load_model

    try:
        m = load_model(path, n_ctx=16, n_threads=1)
    except ModelError:
        return "rejected"
    try:
        logits = m.eval([0, 1, min(2, m.n_vocab - 1)], logits_all=False)
        assert logits.shape == (m.n_vocab,)
    finally:
        m.close()
    return "loaded"


def child(base_path: str, seed: int, start: int, end: int, progress_path: str, out_path: str) -> None:
    sys.path.insert(0, REPO)
    base = open(base_path, "rb").read()
    lay = layout(base)
    counts = {"loaded": 0, "rejected": 0}
    bad = []
    # harness self-test only: CKLS_FUZZ_INJECT="crash:N,raise:M" makes case N kill the child and case M raise
    inject = dict(kv.split(":")[::-1] for kv in os.environ.get("CKLS_FUZZ_INJECT", "").split(",") if kv)
    fd, tmp = tempfile.mkstemp(suffix=".gguf")
    os.close(fd)
    with open(progress_path, "w") as prog:
        for case in range(start, end):
            data, desc = mutate(base, lay, seed, case)
            with open(tmp, "wb") as f:
                f.write(data)
            prog.seek(0)
            prog.write(f"{case:10d}")
            prog.flush()
            try:
                if inject.get(str(case)) == "crash":
                    os.kill(os.getpid(), 11)
                if inject.get(str(case)) == "raise":
                    raise TypeError("injected")
                counts[run_case(tmp)] += 1
            except BaseException as exc:  # noqa: BLE001 - every other outcome is a finding
                bad.append({"case": case, "mutation": desc, "error": f"{type(exc).__name__}: {exc}"[:300]})
    os.unlink(tmp)
    with open(out_path, "w") as f:
        json.dump({"counts": counts, "bad": bad}, f)


def run_range(base_path: str, seed: int, start: int, end: int, workdir: str, script: str | None = None,
              timeout: float = CHILD_TIMEOUT_S):
    """Runs cases [start, end) of `script` (this file by default; its `child` command) in children, restarting
    after a crash or hang; returns (counts, findings). A crash is the finding of the case it happened on."""
    counts = {"loaded": 0, "rejected": 0}
    findings = []
    pos = start
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    script = script or os.path.abspath(__file__)
    while pos < end and len(findings) < 50:
        prog, out = os.path.join(workdir, f"p{start}"), os.path.join(workdir, f"o{start}")
        for p in (prog, out):
            if os.path.exists(p):
                os.unlink(p)
        cmd = [sys.executable, script, "child", base_path, str(seed), str(pos), str(end), prog, out]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
            rc, tail = proc.returncode, proc.stderr[-500:].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            rc, tail = "timeout", ""
        if rc == 0 and os.path.exists(out):
            res = json.load(open(out))
            for k in counts:
                counts[k] += res["counts"][k]
            findings += res["bad"]
            break
        at = int(open(prog).read().strip() or pos) if os.path.exists(prog) else pos
        findings.append({"case": at, "error": f"child died ({rc}) on this case", "stderr": tail})
        pos = at + 1  # the counts of the cases before the crash are lost; the crash itself is the finding
    return counts, findings


def test_harness_reports_crashes_and_stray_exceptions(tmp_path, monkeypatch):
    """The harness itself: a child killed by a signal and a non-ModelError exception both become findings, and
    the cases after the crash still run."""
    base_path = str(tmp_path / "base.gguf")
    write_base(base_path)
    monkeypatch.setenv("CKLS_FUZZ_INJECT", "crash:3,raise:6")
    counts, findings = run_range(base_path, SEED, 0, 10, str(tmp_path))
    assert [f["case"] for f in findings] == [3, 6], findings
    assert "died (-" in findings[0]["error"] and "TypeError" in findings[1]["error"]  # -11, or -6 under ASan
    assert counts["loaded"] + counts["rejected"] == 5  # cases 4..9 but 6; the counts of 0..2 died with the child


def test_loader_survives_mutated_files(tmp_path):
    import concurrent.futures as cf

    base_path = str(tmp_path / "base.gguf")
    write_base(base_path)
    base = open(base_path, "rb").read()
    lay = layout(base)
    assert lay["data_start"] < len(base)
    assert run_case(base_path) == "loaded"  # the unmutated file is fine
    print(f"\nfuzz seed {SEED} (CKLS_FUZZ_SEED), {N_CASES} cases over {N_CHILDREN} children, base {len(base)} bytes, "
          f"metadata {lay['info_end']} bytes")
    t0 = time.time()
    per = (N_CASES + N_CHILDREN - 1) // N_CHILDREN
    ranges = [(i * per, min(N_CASES, (i + 1) * per)) for i in range(N_CHILDREN)]
    totals = {"loaded": 0, "rejected": 0}
    findings = []
    with cf.ThreadPoolExecutor(2) as ex:  # two children at a time: the machine has two cores
        for counts, bad in ex.map(lambda rg: run_range(base_path, SEED, rg[0], rg[1], str(tmp_path)), ranges):
            for k in totals:
                totals[k] += counts[k]
            findings += bad
    print(f"fuzz: {totals['loaded']} loaded and evaluated, {totals['rejected']} rejected with ModelError, "
          f"{len(findings)} failures, {time.time() - t0:.0f}s")
    for f in findings[:20]:
        print("  ", f)
    assert not findings, f"{len(findings)} cases neither loaded nor raised ModelError (first: {findings[0]})"
    assert totals["loaded"] + totals["rejected"] == N_CASES
    assert totals["rejected"] > N_CASES // 4 and totals["loaded"] > 0  # the mutations do reach both outcomes


if __name__ == "__main__":
    if sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7])
    elif sys.argv[1] == "one":  # reproduce one case: python tests/test_gguf_fuzz.py one BASE SEED CASE
        sys.path.insert(0, REPO)
        base = open(sys.argv[2], "rb").read()
        data, desc = mutate(base, layout(base), int(sys.argv[3]), int(sys.argv[4]))
        print(desc)
        with open("fuzz-case.gguf", "wb") as f:
            f.write(data)
        print(run_case("fuzz-case.gguf"))
