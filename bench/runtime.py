"""Runtime speed, ckls vs llama.cpp (llama-cpp-python) on the same GGUF files, in one run.

For each shape x weight type x thread count: prompt processing (PP, tokens/s for a fresh prompt) and decode
(TG, tokens/s of single-token steps after it), medians over repeats, interleaving the two engines so drift on a
shared machine hits both alike; the ratio ckls/llama.cpp is the figure that matters. Decode is also put against
the memory roofline: weight bytes read per token vs measured read bandwidth.

    python bench/runtime.py                       # small + qwen05b shapes, q8_0 + q4_k, 1 and 2 threads
    python bench/runtime.py --shapes small --types q8_0 --threads 2 --repeats 3
    python bench/runtime.py --model path.gguf     # an existing file instead of synthetic ones
    CKLS_REPACK=0 python bench/runtime.py ...     # Q4 and Q8_0 matrices on the row kernels (no interleaved copy)
    CKLS_ISA=avx2 python bench/runtime.py ...     # ckls pinned to an instruction set (llama.cpp keeps its own)
    python bench/runtime.py --isas amx,avx512vnni,avx2 ...   # several, taking turns in every repeat

Every run prints the CPU (model, family/model, the SIMD flags that pick kernels) and ckls's active kernel set
first; --json keeps both with every row.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # run from a checkout too
import llama_peer  # noqa: E402  (bench/, beside this script)


def read_bandwidth(n_threads: int, mb: int = 512, repeats: int = 5) -> float:
    """GB/s of streaming reads: integer max over a buffer far larger than L3, split over threads (numpy releases
    the GIL). A lower bound of the machine's bandwidth: numpy's reduction is not a tuned read loop."""
    a = np.ones(mb * (1 << 20) // 4, dtype=np.int32)
    parts = np.array_split(a, n_threads)
    best = []
    for _ in range(repeats):
        ts = [threading.Thread(target=np.max, args=(p,)) for p in parts]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        best.append(a.nbytes / (time.perf_counter() - t0) / 1e9)
    return statistics.median(best)


# the flags that decide which kernels run (ckls's and llama.cpp's), in /proc/cpuinfo's spelling
KERNEL_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16",
                "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm", "sve", "sve2")


def cpu_description() -> dict:
    """The CPU a figure came from: model name, family/model, and which of KERNEL_FLAGS it reports (Linux's
    /proc/cpuinfo; elsewhere only what platform says)."""
    info: dict[str, str] = {}
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            k = k.strip()
            if k and k not in info:
                info[k] = v.strip()
            if k == "processor" and info.get("processor") != v.strip():
                break  # the first processor is enough
    except OSError:
        pass
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return {
        "model": info.get("model name") or info.get("CPU part") or platform.processor() or platform.machine(),
        "family": info.get("cpu family", ""), "model_id": info.get("model", ""),
        "features": [f for f in KERNEL_FLAGS if f in flags],
    }


def cpu_line(cpu: dict) -> str:
    fam = f" (family {cpu['family']} model {cpu['model_id']})" if cpu["family"] else ""
    return f"cpu: {cpu['model']}{fam}; {' '.join(cpu['features']) or 'no SIMD flags read'}"


def weight_bytes_per_token(path: str) -> int:
    from ckls.runtime.gguf_file import read_gguf

    f = read_gguf(path)
    total = 0
    for name, t in f.tensors.items():
        if name == "token_embd.weight" and "output.weight" in f.tensors:
            total += t.nbytes // t.ne[1]  # only one embedding row is read per token
        else:
            total += t.nbytes
    return total


def bench_ckls(path: str, threads: int, n_prompt: int, n_gen: int, seed: int) -> tuple[float, float]:
    from ckls.runtime import load_model

    m = load_model(path, n_ctx=n_prompt + n_gen + 8, n_threads=threads)
    try:
        rng = np.random.default_rng(seed)
        prompt = rng.integers(0, m.n_vocab, n_prompt).tolist()
        gen = rng.integers(0, m.n_vocab, n_gen).tolist()
        m.eval(prompt[:4])
        t0 = time.perf_counter()
        m.eval(prompt, pos0=0)
        t1 = time.perf_counter()
        for i, t in enumerate(gen):
            m.eval([t], pos0=n_prompt + i)
        t2 = time.perf_counter()
    finally:
        m.close()
    return n_prompt / (t1 - t0), n_gen / (t2 - t1)


def bench_llamacpp(path: str, threads: int, n_prompt: int, n_gen: int, seed: int) -> tuple[float, float]:
    llama_cpp = llama_peer.load()
    llm = llama_cpp.Llama(model_path=path, n_ctx=n_prompt + n_gen + 8, n_threads=threads, n_threads_batch=threads,
                          n_batch=512, n_ubatch=512, verbose=False)
    try:
        rng = np.random.default_rng(seed)
        prompt = rng.integers(0, llm.n_vocab(), n_prompt).tolist()
        gen = rng.integers(0, llm.n_vocab(), n_gen).tolist()
        llm.eval(prompt[:4])
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        for t in gen:
            llm.eval([t])
        t2 = time.perf_counter()
    finally:
        llm.close()
    return n_prompt / (t1 - t0), n_gen / (t2 - t1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="small,qwen05b", help="synthetic shapes (ckls.runtime.synth.SHAPES)")
    ap.add_argument("--types", default="q8_0,q4_k")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--model", action="append", default=[], help="existing GGUF file(s) instead of synthetic ones")
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", default=None, help="where synthetic models are written (default: a temp dir)")
    ap.add_argument("--isas", default=None,
                    help="ckls under each of these instruction sets (e.g. avx512vnni,avx512,avx2), taking turns with "
                         "llama.cpp in every repeat; default: the active one (CKLS_ISA or the best)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    from ckls.native import check, ffi, lib

    tmp = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="ckls-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    files = [(os.path.basename(p), p) for p in args.model]
    if not files:
        from ckls.runtime.synth import synth_model

        for shape in args.shapes.split(","):
            for qt in args.types.split(","):
                p = tmp / f"{shape}-{qt}.gguf"
                if not p.exists():
                    print(f"writing {p} ...", flush=True)
                    synth_model(p, arch="qwen2", shape=shape, type=qt, seed=1)
                files.append((f"{shape} {qt}", str(p)))

    threads = [int(t) for t in args.threads.split(",")]
    bw = {n: read_bandwidth(n) for n in threads}
    isa = ffi.string(lib.ckls_isa_name(lib.ckls_isa_active())).decode()
    isa_ids = {ffi.string(lib.ckls_isa_name(i)).decode(): i for i in range(lib.CKLS_ISA_COUNT)}
    isas = args.isas.split(",") if args.isas else [isa]
    for name in isas:
        if name not in isa_ids or not lib.ckls_isa_available(isa_ids[name]):
            ap.error(f"--isas: {name!r} is not available here ({', '.join(n for n, i in isa_ids.items() if lib.ckls_isa_available(i))})")
    repack = "off (CKLS_REPACK=0)" if os.environ.get("CKLS_REPACK", "").strip() == "0" else "on"
    cpu = cpu_description()
    print(cpu_line(cpu))
    llama_cpp = llama_peer.load()  # refused before any timing where it cannot run
    peer = llama_peer.features(llama_cpp)
    print(f"llama.cpp: llama-cpp-python {llama_cpp.__version__}, built with {peer}")
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, ckls kernels {','.join(isas)}, 8-row repacking {repack}; "
          "read bandwidth " + ", ".join(f"{n} thr {v:.1f} GB/s" for n, v in bw.items())
          + "; load average %.1f %.1f %.1f" % os.getloadavg())
    print(f"PP = {args.prompt_tokens}-token prompt, TG = {args.gen_tokens} decode steps; medians of "
          f"{args.repeats}, engines interleaved\n")
    hdr = (f"{'model':<16} {'thr':>3} {'ckls isa':>10} {'PP ckls':>9} {'PP llama':>9} {'ratio':>6} {'TG ckls':>8} "
           f"{'TG llama':>8} {'ratio':>6} {'roofline':>8}")
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for label, path in files:
        wb = weight_bytes_per_token(path)
        for n in threads:
            ours: dict[str, list] = {name: [] for name in isas}
            theirs = []
            for r in range(args.repeats):
                for name in isas:  # the model is loaded (and repacked) under the ISA it runs
                    check(lib.ckls_set_isa(isa_ids[name]))
                    ours[name].append(bench_ckls(path, n, args.prompt_tokens, args.gen_tokens, seed=r))
                theirs.append(bench_llamacpp(path, n, args.prompt_tokens, args.gen_tokens, seed=r))
            check(lib.ckls_set_isa(isa_ids[isa]))
            pp_l, tg_l = (statistics.median(x) for x in zip(*theirs))
            roof = bw[n] * 1e9 / wb
            for name in isas:
                pp_o, tg_o = (statistics.median(x) for x in zip(*ours[name]))
                row = dict(model=label, threads=n, isa=name, cpu=cpu_line(cpu), pp_ckls=pp_o, pp_llama=pp_l,
                           pp_ratio=pp_o / pp_l, tg_ckls=tg_o, tg_llama=tg_l, tg_ratio=tg_o / tg_l,
                           weight_mb_per_token=wb / 1e6, roofline_tok_s=roof, load_average=os.getloadavg())
                rows.append(row)
                print(f"{label:<16} {n:>3} {name:>10} {pp_o:>9.1f} {pp_l:>9.1f} {pp_o / pp_l:>5.2f}x {tg_o:>8.1f} "
                      f"{tg_l:>8.1f} {tg_o / tg_l:>5.2f}x {roof:>8.1f}", flush=True)
    print("load average at the end %.1f %.1f %.1f" % os.getloadavg())
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"cpu": cpu, "llama_cpp": peer, "bandwidth_gb_s": bw, "isa": isa, "q4_repacking": repack, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
