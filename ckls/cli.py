"""The `ckls` command line: `ckls` / `ckls serve` (LSP over stdio), `ckls complete`, `ckls generate`, `ckls model info|quantize|merge`, `ckls bench runtime`, `ckls tune`, `ckls eval completion`,
`ckls verify`, `ckls kernel`, `ckls skills`."""
from __future__ import annotations

import argparse
import os
import sys
import time

from ckls.usage import Parser

# numpy's BLAS threads would spin beside ours on a 2-core laptop; ckls does its own threading.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

QUANT_TYPES = ("q8_0", "q4_0", "q4_k", "q6_k", "f16", "bf16", "f32")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default=None,
                   help="path of a llama/qwen2 GGUF model (default: the model shipped with ckls)")
    p.add_argument("--threads", "-t", type=int, default=None, help="CPU threads (default: all cores, at most 8)")
    p.add_argument("--ctx", type=int, default=2048, help="context length in tokens (default 2048)")


def _default_path() -> str:
    from ckls.models import default_model_path

    return default_model_path() or "-"


def _load(args):
    from ckls.models import default_model_path
    from ckls.runtime import ModelError, load_model

    path = args.model or default_model_path()
    if path is None:
        raise ModelError("no --model given and this installation has no embedded default model")
    return load_model(path, n_ctx=args.ctx, n_threads=args.threads)


# lines `ckls generate` holds back before printing: the repetition rule may still take back up to two runs of
# four lines (ckls.completion.postprocess)
GENERATE_LAG = 8


def _stop_ids(tok) -> set[int]:
    """EOS, the FIM tokens and every control token (`<|...|>`): generation ends there, their text is never shown."""
    from ckls.fim.tokens import FimFormat
    from ckls.runtime.tokenizer import TOKEN_CONTROL, TOKEN_USER_DEFINED

    stops = set(FimFormat.from_tokenizer(tok).stop_ids)
    for i, kind in enumerate(tok.token_types):
        if kind == TOKEN_CONTROL or (kind == TOKEN_USER_DEFINED and tok.token_text(i).startswith(b"<")
                                     and tok.token_text(i).endswith(b">")):
            stops.add(i)
    return stops


def cmd_generate(args) -> int:
    from ckls.completion.engine import decode_utf8
    from ckls.completion.postprocess import Post, continuation_shape

    model = _load(args)
    tok = model.tokenizer
    prompt = args.prompt if args.prompt is not None else sys.stdin.read()
    ids = ([tok.bos_id] if args.bos and tok.bos_id is not None else []) + tok.encode(prompt, parse_special=args.special)
    if not ids:
        print("ckls: the prompt is empty", file=sys.stderr)
        return 2
    if len(ids) + args.max_tokens > model.n_ctx:
        print(f"ckls: prompt ({len(ids)} tokens) + --max-tokens {args.max_tokens} exceed --ctx {model.n_ctx}",
              file=sys.stderr)
        return 2
    # where a completion would stop: the end of the block the prompt's last line is in (or opens), a loop of
    # repeated lines, EOS or any special token (--raw: only the last two)
    last = next((ln for ln in reversed(prompt.split("\n")) if ln.strip()), "")
    braces = last.rstrip().endswith(("{", ";", "}"))
    post = None if args.raw else Post(continuation_shape(prompt, braces), max_lines=1 << 30)
    t0 = time.perf_counter()
    model.logits_for(ids)
    t1 = time.perf_counter()
    out: list[int] = []
    raw = b""
    shown = 0  # lines (or, with --raw, characters) written
    stream = sys.stdout
    for t in model.generate(ids, args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, min_p=args.min_p, repeat_penalty=args.repeat_penalty,
                            seed=args.seed, stop_ids=sorted(_stop_ids(tok))):
        out.append(t)
        raw += tok.token_bytes(t)
        text = decode_utf8(raw)  # complete UTF-8 only: a character split over tokens prints whole
        if post is None:
            stream.write(text[shown:])
            shown = len(text)
        else:
            if post.early_stop(text):
                break
            lines = text.split("\n")
            settled = post.finalize("\n".join(lines[:max(0, len(lines) - 1 - GENERATE_LAG)])).split("\n")
            if len(lines) - 1 - GENERATE_LAG > 0 and len(settled) - 1 > shown:  # all but its last line are final
                stream.write("".join(l + "\n" for l in settled[shown:-1]))
                shown = len(settled) - 1
        stream.flush()
    if post is None:
        stream.write(raw.decode("utf-8", "replace")[shown:] + "\n")
    else:
        stream.write("".join(l + "\n" for l in post.finalize(decode_utf8(raw)).split("\n")[shown:]))
    stream.flush()
    t2 = time.perf_counter()
    if not args.quiet:
        n = max(len(out), 1)
        print(f"[ckls] prompt {len(ids)} tokens in {(t1 - t0) * 1e3:.1f} ms ({len(ids) / (t1 - t0):.1f} tok/s); "
              f"generated {len(out)} tokens in {(t2 - t1) * 1e3:.1f} ms ({n / (t2 - t1):.1f} tok/s)",
              file=sys.stderr)
    return 0


def cmd_model_info(args) -> int:
    from ckls.runtime.gguf_file import read_gguf
    from ckls.runtime.model import read_hparams

    path = args.path
    if path is None:
        from ckls.models import default_model_path

        path = default_model_path()
        if path is None:
            print("ckls: this installation has no built-in model: give a GGUF file (ckls model info MODEL.gguf)",
                  file=sys.stderr)
            return 2
    f = read_gguf(path)
    hp = read_hparams(f)
    counts: dict[str, int] = {}
    n_params = 0
    for t in f.tensors.values():
        counts[t.type_name] = counts.get(t.type_name, 0) + 1
        n = 1
        for x in t.ne:
            n *= x
        n_params += n
    print(f"file         {f.path} ({f.size / 1e6:.1f} MB){'' if args.path else ', the built-in model'}")
    print(f"name         {str(f.get('general.name', '-'))[:120]}")
    print(f"architecture {hp['arch']}")
    print(f"parameters   {n_params / 1e6:.2f} M in {len(f.tensors)} tensors "
          f"({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})")
    for k in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_ff", "n_rot", "n_ctx_train",
              "rms_eps", "rope_base"):
        print(f"{k:<12} {hp[k]}")
    print(f"output       {'tied to token_embd' if 'output.weight' not in f.tensors else 'separate'}")
    tm = f.get("tokenizer.ggml.model")
    print(f"tokenizer    {str(tm or '-')[:40]} (pre {str(f.get('tokenizer.ggml.pre', '-'))[:40]}, "
          f"{len(f.get('tokenizer.ggml.tokens') or [])} tokens, {len(f.get('tokenizer.ggml.merges') or [])} merges)")
    fim = {k: f.get(f"tokenizer.ggml.fim_{k}_token_id") for k in ("pre", "suf", "mid", "pad", "rep", "sep")}
    print("fim tokens   " + (", ".join(f"{k}={v}" for k, v in fim.items() if v is not None) or "none"))
    return 0


def cmd_model_quantize(args) -> int:
    from ckls.runtime.quantize import requantize

    t0 = time.perf_counter()

    def progress(done: int, total: int, name: str) -> None:
        if not args.quiet:
            print(f"\r[{done}/{total}] {name[:60]:<60}", end="", file=sys.stderr, flush=True)

    requantize(args.input, args.output, args.type, progress=progress)
    if not args.quiet:
        print(f"\nwrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB) in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def cmd_model_merge(args) -> int:
    from ckls.runtime.merge import merge

    if len(args.paths) not in (2, 3):
        print("ckls model merge: give BASE.gguf [ADAPTER.gguf] OUT.gguf (see `ckls model merge --help`)",
              file=sys.stderr)
        return 2
    adapters = [(args.paths[1], args.scale)] if len(args.paths) == 3 else []
    adapters += args.adapter or []
    if not adapters:
        print("ckls model merge: no adapter: give BASE.gguf ADAPTER.gguf OUT.gguf or --adapter PATH[:WEIGHT] "
              "(see `ckls model merge --help`)", file=sys.stderr)
        return 2
    base, out = args.paths[0], args.paths[-1]
    for path, _ in adapters:
        if os.path.abspath(path) == os.path.abspath(out):
            print(f"ckls model merge: the output {out} is one of the adapters", file=sys.stderr)
            return 2
    t0 = time.perf_counter()

    def progress(done: int, total: int, name: str) -> None:
        if not args.quiet:
            print(f"\r[{done}/{total}] {name[:60]:<60}", end="", file=sys.stderr, flush=True)

    res = merge(base, adapters, out, type=args.type, progress=progress)
    if not args.quiet:
        print(f"\nmerged {len(adapters)} adapter(s) into {len(res.merged)} matrices; wrote {out} "
              f"({os.path.getsize(out) / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _adapter_arg(text: str) -> tuple[str, float]:
    from ckls.runtime.merge import parse_adapter_arg

    try:
        return parse_adapter_arg(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _finite(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return x


def cmd_bench_runtime(args) -> int:
    from ckls.runtime.bench import bench_model

    model = _load(args)
    res = bench_model(model, n_prompt=args.prompt_tokens, n_gen=args.gen_tokens, repeats=args.repeats)
    print(f"model {args.model or f'{_default_path()} (built in)'}  threads {model.n_threads}")
    print(f"prompt processing  {res['pp_tok_s']:.1f} tok/s   (median of {args.repeats}, {args.prompt_tokens} tokens)")
    print(f"decode             {res['tg_tok_s']:.1f} tok/s   (median of {args.repeats}, {args.gen_tokens} tokens)")
    return 0


def cmd_verify(args, rest: list[str]) -> int:
    from ckls.verify.cli import main as verify_main

    return verify_main(rest)


def cmd_kernel(args, rest: list[str]) -> int:
    from ckls.kernels.cli import main as kernel_main

    return kernel_main(rest)


def cmd_skills(args, rest: list[str]) -> int:
    from ckls.skills.cli import main as skills_main

    return skills_main(rest)


def cmd_serve(args) -> int:
    import signal

    def stop(signum, frame):  # until the server's loop takes these over: an editor stopping it early is no error
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from ckls.config import Settings, from_cli
    from ckls.server import main as serve

    return serve(Settings().merged(from_cli(args), strict=True)[0] if args is not None else None)


def cmd_complete(args) -> int:
    from ckls.config import Settings, from_cli
    from ckls.completion.engine import NoModel
    from ckls.completion.oneshot import complete_file

    given = from_cli(args)
    # A person at a terminal waits for the answer: no editor's latency cap unless asked for (--latency-ms); a
    # busy machine then answers late rather than with nothing.
    given.setdefault("latency_ms", 60000)
    settings = Settings().merged(given, strict=True)[0]
    if os.path.isdir(args.file):
        print(f"ckls: {args.file} is a folder: give a source file", file=sys.stderr)
        return 2
    with open(args.file, encoding="utf-8", errors="replace", newline="") as f:
        lines = f.read().split("\n")
    if not 1 <= args.line <= len(lines):
        print(f"ckls: --line {args.line} is outside {args.file} (lines 1..{len(lines)})", file=sys.stderr)
        return 2
    if not 1 <= args.col <= len(lines[args.line - 1]) + 1:
        print(f"ckls: --col {args.col} is outside line {args.line} (columns 1..{len(lines[args.line - 1]) + 1})",
              file=sys.stderr)
        return 2
    try:
        res = complete_file(args.file, args.line - 1, args.col - 1, settings)
    except NoModel as exc:
        print(f"ckls: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(res.text + "\n")
    if not args.quiet:
        print(f"[ckls] prompt {res.n_prompt} tokens, {res.n_generated} generated, {res.total_ms:.0f} ms"
              f"{' (time cap reached)' if res.timed_out else ''}", file=sys.stderr)
    return 0


def cmd_tune(args) -> int:
    from ckls.tune.cli import main as tune_main

    return tune_main(args)


def cmd_editor_install(args) -> int:
    """Builds the VS Code extension of a ckls checkout (npm ci, npm run package: ckls.vsix) and installs it with
    `code --install-extension` when `code` is on PATH."""
    import shutil
    import subprocess

    src = args.source or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "editors",
                                      "vscode")
    if not os.path.isfile(os.path.join(src, "package.json")):
        print(f"ckls: no VS Code extension source at {src}: run this from ckls installed out of a clone of its "
              "repository, or pass --source REPO/editors/vscode", file=sys.stderr)
        return 1
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        print("ckls: building the extension needs Node.js and npm (Debian/Ubuntu: apt-get install nodejs npm; "
              "macOS: brew install node)", file=sys.stderr)
        return 1
    for step in (["ci"], ["run", "package"]):
        print(f"[ckls] npm {' '.join(step)} in {src}", file=sys.stderr)
        r = subprocess.run([npm, *step], cwd=src, stdout=sys.stderr)
        if r.returncode != 0:
            print(f"ckls: `npm {' '.join(step)}` failed in {src} (exit {r.returncode}; its output is above)",
                  file=sys.stderr)
            return 1
    vsix = os.path.join(src, "ckls.vsix")
    code = shutil.which("code")
    if code is None or args.no_install:
        print(vsix)
        print("[ckls] built; install it with: code --install-extension " + vsix, file=sys.stderr)
        return 0
    r = subprocess.run([code, "--install-extension", vsix, "--force"], stdout=sys.stderr)
    if r.returncode != 0:
        print(f"ckls: `code --install-extension {vsix}` failed (exit {r.returncode})", file=sys.stderr)
        return 1
    print(vsix)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(
        prog="ckls",
        description="ckls: code completion on your own CPU, with a quantized SIMD model runtime.",
        epilog="Run `ckls COMMAND --help` for the options of each command.")
    ap.add_argument("--version", action="store_true", help="print the version and the CPU kernels in use")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)

    g = sub.add_parser("generate", help="continue a prompt with a model", description=(
        "Continue a prompt with a GGUF model on the CPU, up to where a completion would stop: the end of the block "
        "the prompt's last line is in (or opens), repeated lines, EOS or a special token. Text streams to stdout "
        "line by line, timing to stderr."))
    _add_model_args(g)
    g.add_argument("--prompt", "-p", default=None, help="prompt text (default: read stdin)")
    g.add_argument("--max-tokens", "-n", type=_positive, default=128, help="tokens to generate (default 128)")
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--min-p", type=float, default=0.0)
    g.add_argument("--repeat-penalty", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--bos", action="store_true", help="start the prompt with the BOS token")
    g.add_argument("--special", action="store_true", help="parse special tokens such as <|fim_prefix|> in the prompt")
    g.add_argument("--raw", action="store_true", help="no stop at the end of the block or at repeated lines: "
                   "every token up to --max-tokens, EOS or a special token")
    g.add_argument("--quiet", "-q", action="store_true", help="no timing line")
    g.set_defaults(func=cmd_generate)

    m = sub.add_parser("model", help="inspect or convert model files")
    msub = m.add_subparsers(dest="model_cmd", metavar="ACTION", required=True)
    mi = msub.add_parser("info", help="architecture, shapes, types and tokenizer of a GGUF model")
    mi.add_argument("path", nargs="?", default=None, help="a GGUF file (default: the model built into ckls)")
    mi.set_defaults(func=cmd_model_info)
    mq = msub.add_parser("quantize", help="re-quantize a GGUF model with ckls's quantizers")
    mq.add_argument("input")
    mq.add_argument("output")
    mq.add_argument("--type", required=True, choices=QUANT_TYPES, help="target weight type")
    mq.add_argument("--quiet", "-q", action="store_true")
    mq.set_defaults(func=cmd_model_quantize)
    mm = msub.add_parser("merge", help="fold LoRA adapters into their base model (one GGUF, no --lora needed)",
                         usage="ckls model merge BASE.gguf [ADAPTER.gguf] OUT.gguf [--adapter PATH[:WEIGHT] ...] "
                               "[--scale S] [--type TYPE] [-q]",
                         description=(
        "Write OUT.gguf = BASE.gguf with each adapter folded in: every adapted matrix W becomes "
        "W + weight * (alpha / rank) * B.A, what serving BASE with the adapter computes, then is quantized again "
        "(to its own type, or --type). Every other tensor and key is copied. Several adapters add up."))
    mm.add_argument("paths", nargs="+", metavar="PATH",
                    help="the base model, an adapter (optional when --adapter is given) and the merged file")
    mm.add_argument("--adapter", action="append", type=_adapter_arg, metavar="PATH[:WEIGHT]",
                    help="one more adapter with its weight (default 1), e.g. --adapter a.gguf:0.5; repeatable")
    mm.add_argument("--scale", type=_finite, default=1.0, help="weight of the positional ADAPTER (default 1)")
    mm.add_argument("--type", default=None, choices=QUANT_TYPES,
                    help="every matrix in this type, as `ckls model quantize` (default: each keeps its own)")
    mm.add_argument("--quiet", "-q", action="store_true")
    mm.set_defaults(func=cmd_model_merge)

    b = sub.add_parser("bench", help="measure ckls's speed on this machine")
    bsub = b.add_subparsers(dest="bench_cmd", metavar="WHAT", required=True)
    br = bsub.add_parser("runtime", help="prompt and decode tokens/s of a model")
    _add_model_args(br)
    br.add_argument("--prompt-tokens", type=int, default=256)
    br.add_argument("--gen-tokens", type=int, default=64)
    br.add_argument("--repeats", type=int, default=5)
    br.set_defaults(func=cmd_bench_runtime)

    from ckls.config import COMPLETION, add_cli_args

    sv = sub.add_parser("serve", help="run the language server over stdio (the default)")
    add_cli_args(sv)
    sv.set_defaults(func=cmd_serve)
    c = sub.add_parser("complete", help="print the suggestion at a position of a file",
                       description="The suggestion the server would show at a position of a file, from the full "
                                   "prompt: unlike the editor's, no latency cap applies unless --latency-ms is given.")
    c.add_argument("file")
    c.add_argument("--line", type=_positive, required=True, help="1-based line")
    c.add_argument("--col", type=_positive, required=True, help="1-based column, in characters")
    c.add_argument("--quiet", "-q", action="store_true", help="no timing line")
    add_cli_args(c, COMPLETION)  # the settings one completion uses; no editor, tuning or log flags
    c.set_defaults(func=cmd_complete)

    ed = sub.add_parser("editor", help="install ckls's editor extension")
    esub = ed.add_subparsers(dest="editor_cmd", metavar="ACTION", required=True)
    ei = esub.add_parser("install", help="build and install an editor's extension", description=(
        "vscode: build editors/vscode into ckls.vsix (Node.js and npm needed) and install it with "
        "`code --install-extension` when `code` is on PATH; prints the .vsix path."))
    ei.add_argument("editor", choices=("vscode",))
    ei.add_argument("--source", default=None, help="the extension's folder (default: editors/vscode of the "
                    "checkout ckls runs from)")
    ei.add_argument("--no-install", action="store_true", help="build the .vsix only")
    ei.set_defaults(func=cmd_editor_install)

    from ckls.tune.cli import add_args as add_tune_args

    tu = sub.add_parser("tune", help="fine-tune a LoRA adapter on a repository", description=(
        "One tuning round on REPO: new and changed files plus a replay sample, held-out early stopping, a LoRA "
        "adapter GGUF the server picks up. Ctrl-C stops after a checkpoint; running again resumes."))
    add_tune_args(tu)
    tu.set_defaults(func=cmd_tune)

    from ckls.eval.cli import add_parser as add_eval_parser

    add_eval_parser(sub)

    v = sub.add_parser("verify", help="judge a C/CUDA kernel against a Python function", add_help=False)
    v.set_defaults(func=None, passthrough=cmd_verify)
    k = sub.add_parser("kernel", help="ask a model for a C/CUDA kernel of a Python function, verify, apply",
                       add_help=False)
    k.set_defaults(func=None, passthrough=cmd_kernel)
    sk = sub.add_parser("skills", help="evaluate (eval), scaffold (new) and lint agent skills", add_help=False)
    sk.set_defaults(func=None, passthrough=cmd_skills)
    return ap


NO_EDITOR = """ckls is a language server: your editor starts it and talks to it over stdin/stdout.
In a terminal, try:
  ckls complete FILE --line L --col C     the suggestion the editor would show there
  ckls generate -p 'def read_lines(path):'
  ckls --help                             every command
(`ckls serve` speaks LSP on this terminal anyway.)"""


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {n}")
    return n


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = build_parser()
    if argv[:1] == ["verify"]:
        return cmd_verify(None, argv[1:])
    if argv[:1] == ["kernel"]:
        return cmd_kernel(None, argv[1:])
    if argv[:1] == ["skills"]:
        return cmd_skills(None, argv[1:])
    args = ap.parse_args(argv)
    if args.version:
        from ckls import __version__
        from ckls.native import ffi, lib

        print(f"ckls {__version__} (kernels: {ffi.string(lib.ckls_isa_name(lib.ckls_isa_active())).decode()})")
        return 0
    if args.cmd is None:
        if sys.stdin.isatty():  # a person at a terminal, not an editor: say how to use it instead of waiting
            print(NO_EDITOR, file=sys.stderr)
            return 2
        return cmd_serve(None)
    from ckls.config import SettingsError
    from ckls.runtime import ModelError

    try:
        return args.func(args)
    except SettingsError as exc:  # a flag's value out of range or of the wrong type (or a bad ckls.toml): usage
        print(f"ckls: {exc} (see `ckls {args.cmd} --help`)", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(f"ckls: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a missing file, a folder where a file is due, no permission: one line, no traceback
        what = f"{exc.filename}: " if exc.filename else ""
        print(f"ckls: {what}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
