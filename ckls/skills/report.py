"""An evaluation's result shown three ways: a terminal table, JSON, and an SVG plot (written by hand here, so
no plotting library is needed; the file is self-contained and opens in any browser)."""
from __future__ import annotations

import json
from html import escape

from .evaluate import CONDITIONS


def _pct(x, signed=False) -> str:
    if x is None:
        return "-"
    return f"{x * 100:+.0f}%" if signed else f"{x * 100:.0f}%"


def _num(x, fmt="{:,.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def _money(x) -> str:
    return "-" if x is None else (f"${x:.3f}" if x < 10 else f"${x:,.2f}")


def _points(frac) -> str:
    return "-" if frac is None else f"{frac * 100:+.0f} points"


def _fewer(frac) -> str:
    if frac is None:
        return "-"
    return f"{abs(frac) * 100:.0f}% {'fewer' if frac >= 0 else 'more'}"


def _speed(x) -> str:
    return "-" if x is None else (f"{x:.1f}x" if x < 100 else f"{x:,.0f}x")


def to_text(result: dict) -> str:
    """The terminal table: per model, one row per condition, then the lift."""
    s = result["settings"]
    nt = len(result["tasks"])
    lines = [f"skill {s['skill']}  ({s['lang']}, {nt} task{'s' * (nt != 1)} x {s['trials']} trials, baseline "
             f"{s['baseline']}, judge budget {s['judge_budget']}){'  INTERRUPTED' if result.get('interrupted') else ''}"]
    head = (f"  {'':8} {'pass rate':>19} {'runs':>5} {'input':>9} {'output':>8} {'cache w':>8} {'cache r':>9} "
            f"{'tok/pass':>9} {'turns':>5} {'cost':>9} {'speedup':>8}")
    for model, m in result["summary"].items():
        lines += ["", f"model {model}", head]
        for c in CONDITIONS:
            st = m["conditions"][c]
            pr = st["pass_rate"]
            rate = "-" if pr["mean"] is None else f"{_pct(pr['mean'])} ±{pr['std'] * 100:.0f} [{_pct(pr['min'])}-{_pct(pr['max'])}]"
            t = st["tokens"]
            lines.append(
                f"  {c:8} {rate:>19} {st['passes']:>2}/{st['runs']:<2} {_num(t['input_tokens']):>9} "
                f"{_num(t['output_tokens']):>8} {_num(t['cache_creation_input_tokens']):>8} "
                f"{_num(t['cache_read_input_tokens']):>9} {_num(st['tokens_per_pass']):>9} "
                f"{_num(st['turns'], '{:.1f}'):>5} {_money(st['cost_usd']['total']):>9} "
                f"{_speed(st['speedup']['vs_numpy']):>8}")
        lf = m["lift"]
        d = lf["pass_rate_delta"]
        spread = "" if d["mean"] is None else \
            f" (±{d['std'] * 100:.0f} over trials, {d['min'] * 100:+.0f}..{d['max'] * 100:+.0f})"
        lines.append(f"  lift: pass rate {_points(d['mean'])}{spread}; tokens per run "
                     f"{_fewer(lf['token_savings'])}; cost {_fewer(lf['cost_savings'])}; "
                     f"turns {_num(lf['turns_delta'], '{:+.1f}')}")
        errs = {c: m["conditions"][c]["stops"].get("error", 0) for c in CONDITIONS}
        if any(errs.values()):
            lines.append(f"  runs ended by an error (API or setup; counted as failures): without {errs['without']}, "
                         f"with {errs['with']}; see the runs in result.json")
        worse = [n for n, pt in m["per_task"].items() if pt["with"]["passes"] < pt["without"]["passes"]]
        better = [n for n, pt in m["per_task"].items() if pt["with"]["passes"] > pt["without"]["passes"]]
        if better:
            lines.append(f"  tasks it helps: {', '.join(better)}")
        if worse:
            lines.append(f"  tasks it hurts: {', '.join(worse)}")
    lines += ["", "pass rate: mean over trials of the share of tasks whose kernel the judge PASSED, ± sample "
                  "std over trials [min-max]; tokens: mean per run (input, output, cache writes, cache reads); "
                  "speedup: geometric mean over passing kernels vs the vectorised NumPy version (full budget only)."]
    return "\n".join(lines)


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2, default=str)


# ---- SVG --------------------------------------------------------------------------------------------------
COLORS = {"without": "#9aa5b1", "with": "#2f6fdf"}


def to_svg(result: dict) -> str:
    """Two panels per model side by side: pass rate (bar = mean, whisker = min..max over trials, dots = each
    trial) and mean tokens per run split into input / output / cache, for both conditions."""
    models = list(result["summary"])
    pw, ph, gap, top = 220, 220, 40, 96
    width = max(1, len(models)) * (2 * pw + gap) + gap
    height = top + ph + 90
    width = max(width, 900)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{gap}" y="24" font-size="16" font-weight="bold">skill {escape(result["settings"]["skill"])}: '
           f'with vs without</text>',
           f'<text x="{gap}" y="44" fill="#555">{len(result["tasks"])} tasks x {result["settings"]["trials"]} trials, '
           f'{escape(result["settings"]["lang"])}, verdicts by ckls verify</text>',
           f'<text x="{gap}" y="62" fill="#777" font-size="11">pass rate: bar = mean over trials, whisker = '
           f'min..max, dots = each trial; tokens: mean per run, bottom to top input, cache reads, cache writes, '
           f'output</text>']
    max_tok = max([m["conditions"][c]["tokens"]["total"] or 0 for m in result["summary"].values() for c in CONDITIONS]
                  + [1])
    for i, model in enumerate(models):
        m = result["summary"][model]
        x0 = gap + i * (2 * pw + gap)
        out.append(f'<text x="{x0}" y="{top - 8}" font-weight="bold">{escape(model)}</text>')
        out += _panel_pass(m, x0, top, pw - 20, ph)
        out += _panel_tokens(m, x0 + pw, top, pw - 20, ph, max_tok)
    lx = gap
    for c in CONDITIONS:
        out.append(f'<rect x="{lx}" y="{height - 22}" width="12" height="12" fill="{COLORS[c]}"/>')
        out.append(f'<text x="{lx + 16}" y="{height - 12}">{c} the skill</text>')
        lx += 130
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _axes(x, y, w, h, title, ticks):
    out = [f'<text x="{x}" y="{y + 14}" fill="#333">{escape(title)}</text>']
    for frac, label in ticks:
        yy = y + 24 + (h - 24) * (1 - frac)
        out.append(f'<line x1="{x + 40}" y1="{yy:.1f}" x2="{x + w}" y2="{yy:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x + 36}" y="{yy + 4:.1f}" text-anchor="end" fill="#666">{escape(label)}</text>')
    out.append(f'<line x1="{x + 40}" y1="{y + h}" x2="{x + w}" y2="{y + h}" stroke="#333"/>')
    return out


def _panel_pass(m, x, y, w, h):
    out = _axes(x, y, w, h, "pass rate", [(f, f"{int(f * 100)}%") for f in (0, 0.25, 0.5, 0.75, 1.0)])
    scale = h - 24
    bw = (w - 60) / 2 - 10
    for j, c in enumerate(CONDITIONS):
        pr = m["conditions"][c]["pass_rate"]
        bx = x + 50 + j * (bw + 20)
        if pr["mean"] is None:
            continue
        bh = scale * pr["mean"]
        out.append(f'<rect x="{bx:.1f}" y="{y + h - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{COLORS[c]}">'
                   f'<title>{c}: {pr["mean"] * 100:.1f}% (std {pr["std"] * 100:.1f})</title></rect>')
        cx = bx + bw / 2
        y_lo, y_hi = y + h - scale * pr["min"], y + h - scale * pr["max"]
        out.append(f'<line x1="{cx:.1f}" y1="{y_lo:.1f}" x2="{cx:.1f}" y2="{y_hi:.1f}" stroke="#222"/>')
        for yy in (y_lo, y_hi):
            out.append(f'<line x1="{cx - 5:.1f}" y1="{yy:.1f}" x2="{cx + 5:.1f}" y2="{yy:.1f}" stroke="#222"/>')
        for k, v in enumerate(pr["per_trial"]):
            out.append(f'<circle cx="{cx + 8 + 3 * k:.1f}" cy="{y + h - scale * v:.1f}" r="2" fill="#222"/>')
        out.append(f'<text x="{cx:.1f}" y="{y + h + 16}" text-anchor="middle">{pr["mean"] * 100:.0f}%</text>')
    d = m["lift"]["pass_rate_delta"]["mean"]
    if d is not None:
        out.append(f'<text x="{x + 50}" y="{y + h + 34}" fill="#333">lift {d * 100:+.0f} points</text>')
    return out


def _panel_tokens(m, x, y, w, h, max_tok):
    ticks = [(f, _short(max_tok * f)) for f in (0, 0.5, 1.0)]
    out = _axes(x, y, w, h, "tokens per run", ticks)
    scale = h - 24
    bw = (w - 60) / 2 - 10
    shades = {"input_tokens": 1.0, "cache_read_input_tokens": 0.45, "cache_creation_input_tokens": 0.65,
              "output_tokens": 0.8}
    for j, c in enumerate(CONDITIONS):
        t = m["conditions"][c]["tokens"]
        bx = x + 50 + j * (bw + 20)
        yy = y + h
        for k, op in shades.items():
            v = t.get(k) or 0
            bh = scale * v / max_tok
            if bh <= 0:
                continue
            yy -= bh
            out.append(f'<rect x="{bx:.1f}" y="{yy:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{COLORS[c]}" '
                       f'fill-opacity="{op}" stroke="white" stroke-width="0.5"><title>{c} {k}: {v:,.0f}</title></rect>')
        if t["total"] is not None:
            out.append(f'<text x="{bx + bw / 2:.1f}" y="{y + h + 16}" text-anchor="middle">{_short(t["total"])}</text>')
    s = m["lift"]["token_savings"]
    if s is not None:
        out.append(f'<text x="{x + 50}" y="{y + h + 34}" fill="#333">{escape(_fewer(s))} tokens</text>')
    return out


def _short(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e3:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}"
