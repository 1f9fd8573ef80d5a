"""The verdict and how it is shown: terminal text, Markdown, JSON."""
from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field

PASS, FAIL, UNVERIFIED, ERROR = "PASS", "FAIL", "UNVERIFIED", "ERROR"


@dataclass
class Failure:
    check: str            # wrong_result, input_mutated, out_of_bounds_write, crash_after_call, late_write, nondeterministic,
    #                       crash, timeout, sanitizer, build, forbidden_symbol, implausible_speed, harness_error
    detail: str
    phase: str = ""       # plan, hypothesis, sanitizer, bench, build
    case: dict | None = None
    call: str | None = None
    mismatch: dict | None = None
    log_tail: str = ""


@dataclass
class Report:
    verdict: str
    ref: str
    kernel: str
    spec_name: str
    seed: int
    reasons: list[str] = field(default_factory=list)
    failure: Failure | None = None
    cases_run: dict = field(default_factory=dict)
    builds: list[dict] = field(default_factory=list)
    bench: dict | None = None
    isolation: dict = field(default_factory=dict)
    seconds: float = 0.0
    repro: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    # ---- text -----------------------------------------------------------------------------------------
    def _lines(self, md: bool) -> list[str]:
        b = "**" if md else ""
        out = [f"{'# ' if md else ''}{self.spec_name}: {b}{self.verdict}{b}",
               f"original {self.ref}  kernel {self.kernel}  seed {self.seed}  {self.seconds:.1f} s"]
        if self.cases_run:
            out.append("cases: " + ", ".join(f"{k} {v}" for k, v in self.cases_run.items()))
        for r in self.reasons:
            out.append(f"- {r}")
        f = self.failure
        if f:
            out.append(f"{b}failed check:{b} {f.check} ({f.phase}) - {f.detail}")
            if f.case:
                c = {k: v for k, v in f.case.items() if k != "tag"}
                out.append(f"case: {json.dumps(c)}")
            if f.call:
                out.append(f"in: {f.call}")
            if f.mismatch:
                out.append("mismatch: " + json.dumps(f.mismatch))
            if f.log_tail:
                tail = "\n".join(f.log_tail.strip().splitlines()[-15:])
                out += (["```", tail, "```"] if md else [tail])
        for bld in self.builds:
            if not bld.get("ok"):
                diags = bld.get("diagnostics") or []
                out.append(f"build {bld['variant']} failed: {bld['command']}")
                for d in diags[:10]:
                    out.append(f"  {d['file']}:{d['line']}:{d['col']}: {d['severity']}: {d['message']}")
                if not diags:
                    out.append("  " + bld.get("log", "").strip()[-800:])
        if self.bench:
            out += self.bench_lines(md)
        if self.repro:
            out.append(f"reproduce: {'`' if md else ''}{self.repro}{'`' if md else ''}")
        return out

    def bench_lines(self, md: bool = False) -> list[str]:
        """The benchmark as text lines (Markdown table rows when md)."""
        bn = self.bench
        gpu = "kernel_with_transfers" in bn["timings"]
        names = {"kernel": "kernel (device time, CUDA events, transfers excluded)" if gpu else "kernel",
                 "kernel_with_transfers": "kernel + host<->device copies", "original": "original",
                 "numpy": "numpy (CPU)" if gpu else "numpy", "cupy": "numpy code on CuPy arrays (GPU)"}
        rows = []
        for k in ("kernel", "kernel_with_transfers", "original", "numpy", "cupy"):
            if k in bn["timings"]:
                rows.append((names[k], bn["timings"][k], bn["speedup"].get(k)))
        head = f"benchmark at {json.dumps(bn['sizes'])}:"
        if gpu:
            dev = bn.get("device", {})
            head += f" on {dev.get('name', 'the GPU')}; L2 flushed before each timed run"
        lines = [head]
        if md:
            lines += ["", "| code | median | 95% CI | runs | kernel speedup |", "|---|---|---|---|---|"]
        for name, t, sp in rows:
            ci = f"{_fmt(t['ci_lo_s'])}..{_fmt(t['ci_hi_s'])}"
            spd = f"{sp['x']:.1f}x ({sp['lo']:.1f}..{sp['hi']:.1f})" if sp else ""
            if md:
                lines.append(f"| {name} | {_fmt(t['median_s'])} | {ci} | {t['runs']} | {spd} |")
            else:
                lines.append(f"  {name:9s} {_fmt(t['median_s']):>10s}  [{ci}]  n={t['runs']:<4d} {spd}")
        for k, sp in bn.get("speedup_with_transfers", {}).items():
            lines.append(f"  {k} / (kernel + copies): {sp['x']:.1f}x ({sp['lo']:.1f}..{sp['hi']:.1f})")
        for fl in bn.get("flags", []):
            lines.append(f"  FLAG: {fl}")
        return lines

    def to_text(self) -> str:
        return "\n".join(self._lines(False))

    def to_markdown(self) -> str:
        return "\n".join(self._lines(True)) + "\n"


def _fmt(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def repro_command(ref: str, kernel: str, spec_path: str | None, case: dict | None, seed: int) -> str:
    parts = ["ckls", "verify", ref, kernel]
    if spec_path:
        parts += ["--spec", spec_path]
    if case:
        parts += ["--case", json.dumps({k: v for k, v in case.items() if k != "tag"})]
    else:
        parts += ["--seed", str(seed)]
    return " ".join(shlex.quote(p) for p in parts)
