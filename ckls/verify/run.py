"""One verification from start to verdict: build, fixed plan, Hypothesis fuzzing, sanitizer re-run, bench."""
from __future__ import annotations

import dataclasses
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import build as build_mod
from . import cell as cell_mod
from . import cudacell
from .bench import gpu_hardware_flags, hardware_flags, speedup
# Hypothesis keeps an example store under ./.hypothesis by default: the judge runs in the user's workspace (the
# server's cwd) and keeps nothing between runs (database=None), so any store goes to a temp folder instead.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "ckls-hypothesis"))
from .fuzz import cuda_sanitizer_plan, hypothesis_strategy, plan, sanitizer_plan, shrink_candidates, tsan_plan
from .report import ERROR, FAIL, PASS, UNVERIFIED, Failure, Report, repro_command
from .sandbox import Crash, Limits, Worker, isolation
from .spec import KernelSpec, eval_expr


@dataclass
class Budget:
    """How hard to look. "full" for users, "ci" for the test suite (same plan, fewer random cases)."""
    hypothesis_examples: int = 60
    sanitizer: bool = True
    bench_s: float = 3.0
    shrink_tries: int = 16
    differential: bool = True           # False: the sanitizer runs only (to see what each tool finds)
    cuda_tools: tuple = ("memcheck", "racecheck", "initcheck", "synccheck")

    @classmethod
    def named(cls, name: str) -> "Budget":
        if name == "ci":
            return cls(hypothesis_examples=12, bench_s=0.0, shrink_tries=6)
        if name == "quick":
            return cls(hypothesis_examples=0, sanitizer=False, bench_s=0.0, shrink_tries=0)
        return cls()


def _case_result(worker: Worker, case: dict) -> dict:
    """Run one case; a dead or hung child is the candidate's failure."""
    try:
        return worker.request({"op": "case", "case": case})
    except Crash as c:
        return {"ok": False, "check": {"timeout": "timeout", "sanitizer": "sanitizer"}.get(c.reason, "crash"),
                "detail": c.detail, "log_tail": c.log_tail}


def _failure(res: dict, phase: str, case: dict | None) -> Failure:
    return Failure(check=res.get("check", "unknown"), detail=res.get("detail", ""), phase=phase, case=case,
                   call=res.get("call"), mismatch=res.get("mismatch"), log_tail=res.get("log_tail", ""))


def _shrink(worker: Worker, spec: KernelSpec, case: dict, res: dict, tries: int) -> tuple[dict, dict]:
    """Smaller case failing the same check, when one is found within `tries` runs. A hang is not shrunk:
    each try could cost the whole timeout."""
    if res.get("check") == "timeout":
        return case, res
    n = 0
    improved = True
    while improved and n < tries:
        improved = False
        for cand in shrink_candidates(spec, case):
            if n >= tries:
                break
            n += 1
            r = _case_result(worker, cand)
            if not r.get("ok") and r.get("check") == res.get("check"):
                case, res, improved = cand, r, True
                break
    return case, res


def verify(ref: str, kernel: str, spec: KernelSpec, *, spec_path: str | None = None, budget: str | Budget = "full",
           seed: int | None = None, only_case: dict | None = None, limits: Limits | None = None,
           log=None) -> Report:
    t0 = time.monotonic()
    budget = Budget.named(budget) if isinstance(budget, str) else budget
    seed = random.SystemRandom().getrandbits(32) if seed is None else seed
    say = log or (lambda *_: None)
    rep = Report(verdict=PASS, ref=ref, kernel=str(kernel), spec_name=spec.name, seed=seed,
                 isolation=isolation())
    say(f"verifying {spec.name}: seed {seed}")
    work = tempfile.mkdtemp(prefix="ckls-build-")
    os.chmod(work, 0o755)
    try:
        _verify(rep, ref, kernel, spec, spec_path, budget, seed, only_case, limits, work, say)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        rep.seconds = time.monotonic() - t0
    if rep.verdict == FAIL:
        rep.repro = repro_command(ref, str(kernel), spec_path, rep.failure.case if rep.failure else None, seed)
    return rep


def _verify(rep, ref, kernel, spec, spec_path, budget, seed, only_case, limits, work, say):
    builds = build_mod.build(spec, kernel, work)
    rep.builds = [b.to_dict() for b in builds]
    bad = [b for b in builds if not b.ok]
    if bad and bad[0].unavailable:
        rep.verdict, rep.failure = ERROR, Failure("harness_error", bad[0].log.removeprefix("not compiled: "), "build")
        rep.reasons.append(rep.failure.detail)
        return
    if bad:
        b = bad[0]
        check = "forbidden_symbol" if b.forbidden_symbols else "build"
        detail = ("imports " + ", ".join(b.forbidden_symbols)) if b.forbidden_symbols else \
            f"{b.variant} build failed ({sum(d.severity == 'error' for d in b.diagnostics)} errors)"
        rep.verdict, rep.failure = FAIL, Failure(check, detail, "build")
        rep.reasons.append(detail)
        return
    cuda = spec.language == "cuda"
    if not cuda:
        for b, sanitizer in zip(builds, (False, True)):
            exe, log = cell_mod.build_cell(spec, work, sanitizer)
            if exe is None:
                rep.verdict, rep.failure = ERROR, Failure("harness_error", "the judge's cell did not build: "
                                                          + log.strip()[-300:], "build")
                return
    if cuda:
        if not build_mod.gpu_present():
            rep.verdict = UNVERIFIED
            rep.reasons.append("compiled with nvcc; no GPU here, so it was not run (not PASS)")
            return
        exe, log = cudacell.build_cuda_cell(spec, work)
        if exe is None:
            rep.verdict, rep.failure = ERROR, Failure("harness_error", "the judge's CUDA cell did not build: "
                                                      + log.strip()[-300:], "build")
            return
        # The CUDA driver reserves far more address space than any RLIMIT_AS we would set (the cell inherits it).
        limits = dataclasses.replace(limits or Limits(), address_space_mb=0)
        rep.isolation = dict(rep.isolation, cuda_cell=rep.isolation.get("c_cell", "") + ", with the GPU")

    numpy_ref = spec.numpy
    if numpy_ref and not os.path.isabs(numpy_ref):
        base = Path(spec_path).parent if spec_path else Path(kernel).parent
        numpy_ref = str((base / numpy_ref).resolve())
    init = {"spec": spec.to_dict(), "so": builds[0].so_path, "ref": _abs_ref(ref), "numpy": numpy_ref,
            "guard_pad": 16, "cell": os.path.join(work, "cell_cuda" if cuda else "cell"),
            "timeout_s": (limits or Limits()).request_timeout_s}
    counts = rep.cases_run
    if budget.differential:
        if not _differential(rep, spec, init, limits, seed, budget, only_case, counts, say):
            return
    if budget.sanitizer and cuda:
        if not _cuda_sanitizers(rep, spec, init, limits, seed, only_case, say, budget.cuda_tools):
            return
    elif budget.sanitizer:
        _asan(rep, spec, init, builds, limits, seed, only_case, counts, say)
        if rep.verdict != PASS:
            return
        if spec.openmp or build_mod.uses_threads(builds[0].so_path):
            _tsan(rep, spec, kernel, init, work, limits, seed, only_case, counts, say)
            if rep.verdict != PASS:
                return
    if budget.bench_s > 0 and only_case is None:
        _bench(rep, spec, init, limits, seed, budget, say)


def _differential(rep, spec, init, limits, seed, budget, only_case, counts, say) -> bool:
    """The fixed plan and the Hypothesis cases in one judge process (and its cell). False when the verdict is
    settled."""
    with Worker(init, limits, isolate=False) as w:  # the candidate runs in its own cell, not in the judge
        try:
            w.start()
        except Crash as c:
            rep.verdict, rep.failure = ERROR, Failure("harness_error", str(c), "start", log_tail=c.log_tail)
            return False

        def run_phase(name, cases) -> bool:
            for case in cases:
                counts[name] = counts.get(name, 0) + 1
                r = _case_result(w, case)
                if r.get("ok"):
                    if r.get("skipped") and r["skipped"] not in rep.reasons:
                        rep.reasons.append(r["skipped"])
                    continue
                if r.get("check") == "harness_error":
                    rep.verdict, rep.failure = ERROR, _failure(r, name, case)
                    return False
                say(f"  {name}: {r.get('check')} on {case}; shrinking")
                case, r = _shrink(w, spec, case, r, budget.shrink_tries)
                rep.verdict, rep.failure = FAIL, _failure(r, name, case)
                return False
            return True

        if only_case is not None:
            return run_phase("case", [only_case])
        say(f"  plan: {len(plan(spec, seed))} cases")
        if not run_phase("plan", plan(spec, seed)):
            return False
        if budget.hypothesis_examples and not _hypothesis_phase(w, spec, seed, budget, counts, rep, say):
            return False
    return True


def _asan(rep, spec, init, builds, limits, seed, only_case, counts, say) -> None:
    say("  ASan+UBSan re-run")
    env = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:"
                           "hard_rss_limit_mb=4096:handle_segv=1:symbolize=0",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:symbolize=0"}
    sinit = dict(init, so=builds[1].so_path, guard_pad=0, settle_s=0, cell=init["cell"] + "_asan", sanitizer=True,
                 cell_env=env)
    with Worker(sinit, limits, sanitizer=True, isolate=False) as sw:
        for case in ([only_case] if only_case is not None else sanitizer_plan(spec, seed)):
            counts["sanitizer"] = counts.get("sanitizer", 0) + 1
            r = _case_result(sw, case)
            if not r.get("ok"):
                rep.verdict = ERROR if r.get("check") == "harness_error" else FAIL
                rep.failure = _failure(r, "sanitizer", case)
                return


TSAN_OPTIONS = ("halt_on_error=1:exitcode=66:symbolize=0:report_signal_unsafe=0:detect_deadlocks=0:"
                # libomp is not instrumented; archer gives TSan its synchronisation, and reports whose every frame
                # is inside it are noise archer asks us to drop (it prints so when this is missing)
                "ignore_noninstrumented_modules=1")


def _tsan(rep, spec, kernel, init, work, limits, seed, only_case, counts, say) -> None:
    """ThreadSanitizer, for a kernel that starts threads: a clang build linked to LLVM's libomp, run in its own
    cell with the archer tool (build.py says why not gcc's libgomp), a few cases at several threads. A race is a
    FAIL naming both accesses; a toolchain without it is UNVERIFIED, never a silent PASS."""
    why = build_mod.tsan_toolchain()
    if why:
        rep.verdict = UNVERIFIED
        rep.reasons.append("the kernel starts threads, but ThreadSanitizer cannot run here: " + why +
                           "; races were looked for only by repeated calls at several thread counts (not PASS)")
        return
    say("  ThreadSanitizer re-run")
    b = build_mod.build_c(kernel, work, "tsan")
    rep.builds.append(b.to_dict())
    if not b.ok and b.forbidden_symbols:
        rep.verdict, rep.failure = FAIL, Failure("forbidden_symbol", "imports " + ", ".join(b.forbidden_symbols),
                                                 "build")
        rep.reasons.append(rep.failure.detail)
        return
    if not b.ok:
        first = next((d for d in b.diagnostics if d.severity == "error"), None)
        rep.verdict = UNVERIFIED
        rep.reasons.append("the kernel starts threads, but clang could not build it for ThreadSanitizer (" +
                           (f"{first.line}: {first.message}" if first else b.log.strip()[-200:]) +
                           "); races were looked for only by repeated calls (not PASS)")
        return
    exe, log = cell_mod.build_cell(spec, work, "tsan")
    if exe is None:
        rep.verdict, rep.failure = ERROR, Failure("harness_error", "the judge's ThreadSanitizer cell did not "
                                                  "build: " + log.strip()[-300:], "build")
        return
    env = {"TSAN_OPTIONS": TSAN_OPTIONS, "OMP_TOOL_LIBRARIES": build_mod.archer_library(),
           "ARCHER_OPTIONS": "verbose=0"}
    sinit = dict(init, so=b.so_path, guard_pad=0, settle_s=0, cell=exe, sanitizer="tsan", cell_env=env)
    with Worker(sinit, limits, sanitizer=True, isolate=False) as sw:
        for case in ([only_case] if only_case is not None else tsan_plan(spec, seed)):
            counts["threadsanitizer"] = counts.get("threadsanitizer", 0) + 1
            r = _case_result(sw, case)
            if r.get("ok"):
                if r.get("skipped") and r["skipped"] not in rep.reasons:
                    rep.reasons.append(r["skipped"])
                continue
            rep.verdict = ERROR if r.get("check") == "harness_error" else FAIL
            rep.failure = _failure(r, "threadsanitizer", case)
            return


SANITIZER_TOOLS = ("memcheck", "racecheck", "initcheck", "synccheck")


def _cuda_sanitizers(rep, spec, init, limits, seed, only_case, say, tools=None) -> bool:
    """Each compute-sanitizer tool over a few shapes with tails, with the CUDA cell run under it (in its jail); a
    finding is a FAIL with the tool's first error. Without compute-sanitizer the verdict is UNVERIFIED. False
    when the verdict is settled."""
    exe = build_mod.compute_sanitizer()
    if not exe:
        rep.verdict = UNVERIFIED
        rep.reasons.append("ran on the GPU, but compute-sanitizer was not found, so memory errors, races and "
                           "uninitialised reads were not looked for (not PASS)")
        return False
    counts = rep.cases_run
    cases = [only_case] if only_case is not None else cuda_sanitizer_plan(spec, seed)
    # A call under a tool runs many times slower: the cell's deadline per call, and the judge's per case.
    lim = dataclasses.replace(limits, request_timeout_s=max(limits.request_timeout_s, 600.0))
    sinit = dict(init, guard_pad=0, settle_s=0, hold_s=0, timeout_s=max(init["timeout_s"], 120.0))
    for tool in tools or SANITIZER_TOOLS:
        say(f"  compute-sanitizer --tool {tool}: {len(cases)} cases")
        wrapper = [exe, "--tool", tool, "--report-api-errors", "no", "--error-exitcode", "86",
                   "--print-limit", "20"]
        phase = f"compute-sanitizer {tool}"
        sw = Worker(dict(sinit, cuda_sanitizer=wrapper), lim, isolate=False)
        bad = None
        try:
            try:
                sw.start()
            except Crash as c:
                rep.verdict, rep.failure = ERROR, Failure("harness_error", f"{tool}: {c}", phase,
                                                          log_tail=c.log_tail)
                return False
            for case in cases:
                counts[phase] = counts.get(phase, 0) + 1
                r = _case_result(sw, case)
                if r.get("check") == "sanitizer":
                    bad = (r.get("log_tail") or r.get("detail", ""), case)
                    break
                if not r.get("ok"):
                    rep.verdict = ERROR if r.get("check") == "harness_error" else FAIL
                    rep.failure = _failure(r, phase, case)
                    return False
            if bad is None:
                try:
                    end = sw.request({"op": "finish"}, timeout=180)
                except Crash as c:
                    end = {"rc": None, "finding": "", "log": c.log_tail}
                if end.get("finding") or end.get("rc") == 86:
                    bad = (end.get("finding") or "exit status 86: errors reported (see log)\n" + end.get("log", ""),
                           None)
        finally:
            sw.close()
        if bad:
            first = bad[0].splitlines()[0].strip()
            rep.verdict = FAIL
            rep.failure = Failure("sanitizer", f"{tool}: {first}", phase, case=bad[1], log_tail=bad[0])
            return False
    return True


def _hypothesis_phase(w, spec, seed, budget, counts, rep, say) -> bool:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    found = []

    @hseed(seed)
    @settings(max_examples=budget.hypothesis_examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False, report_multiple_bugs=False)
    @given(case=hypothesis_strategy(spec))
    def prop(case):
        counts["hypothesis"] = counts.get("hypothesis", 0) + 1
        r = _case_result(w, case)
        if not r.get("ok"):
            found.append((case, r))
            raise AssertionError(r.get("detail"))

    say(f"  hypothesis: {budget.hypothesis_examples} examples")
    try:
        prop()
    except AssertionError:
        pass
    if not found:
        return True
    case, r = found[0]
    if r.get("check") == "harness_error":
        rep.verdict, rep.failure = ERROR, _failure(r, "hypothesis", case)
        return False
    case, r = _shrink(w, spec, case, r, budget.shrink_tries)
    rep.verdict, rep.failure = FAIL, _failure(r, "hypothesis", case)
    return False


def _bench(rep, spec, init, limits, seed, budget, say):
    sizes = {s.name: s.typical for s in spec.sizes}
    say(f"  bench at {sizes}")
    lim = limits or Limits()
    with Worker(dict(init, settle_s=0), lim, isolate=False) as w:
        try:
            r = w.request({"op": "bench", "sizes": sizes, "seed": seed, "budget_s": budget.bench_s},
                          timeout=budget.bench_s * 4 + 60)
        except Crash as c:
            rep.verdict, rep.failure = FAIL, Failure("crash", str(c), "bench", log_tail=c.log_tail)
            return
    if not r.get("ok"):
        rep.reasons.append(f"benchmark failed: {r.get('detail')}")
        return
    t = r["timings"]
    nbytes = eval_expr(spec.bytes, sizes) if spec.bytes else sum(
        _prod(spec.shape_of(a, sizes)) * {"f32": 4, "f64": 8, "i32": 4, "i64": 8}[a.dtype] for a in spec.arrays)
    flops = eval_expr(spec.flops, sizes) if spec.flops else None
    dtype = spec.outputs[0].dtype
    if spec.language == "cuda":
        flags = gpu_hardware_flags(t["kernel"], nbytes, flops, dtype, r["device"])
    else:
        flags = hardware_flags(t["kernel"], nbytes, flops, dtype)
    sp = {k: speedup(t[k], t["kernel"]) for k in ("original", "numpy", "cupy") if k in t}
    rep.bench = {"sizes": sizes, "timings": t, "speedup": sp, "flags": flags, "bytes": nbytes, "flops": flops}
    if "kernel_with_transfers" in t:
        rep.bench["speedup_with_transfers"] = {k: speedup(t[k], t["kernel_with_transfers"])
                                               for k in ("original", "numpy") if k in t}
        rep.bench["device"] = r["device"]
    if flags:
        rep.verdict = FAIL
        rep.failure = Failure("implausible_speed", "; ".join(flags), "bench")


def _abs_ref(ref: str) -> str:
    path, sep, func = ref.rpartition("::")
    return str(Path(path).resolve()) + sep + func if sep else ref


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def load_spec_for(kernel: str | Path, spec_path: str | None) -> tuple[KernelSpec, str]:
    """The spec given, else <kernel>.spec.json, else spec.json beside the kernel."""
    p = Path(spec_path) if spec_path else Path(kernel).with_suffix(".spec.json")
    if not spec_path and not p.exists():
        p = Path(kernel).parent / "spec.json"
    if not p.exists():
        raise FileNotFoundError(f"no spec: pass --spec or put {p.name} beside the kernel")
    return KernelSpec.load(p), str(p)
