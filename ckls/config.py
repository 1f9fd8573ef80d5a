"""One settings schema (the model, completion, tuning) for every way a user configures ckls: CLI flags,
`ckls.toml`, LSP initializationOptions and workspace/configuration (section "ckls"). Later sources override
earlier ones: defaults < CLI flags < ckls.toml < initializationOptions < workspace/configuration."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    tomllib = None  # type: ignore[assignment]

from ckls.models import DEFAULT_MODEL  # noqa: E402  (re-exported for the settings schema)


class SettingsError(ValueError):
    """A setting has a wrong type or an out-of-range value."""


@dataclass(frozen=True)
class Setting:
    name: str          # snake_case; camelCase in LSP, --kebab-case on the command line
    type: type
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None


SCHEMA: tuple[Setting, ...] = (
    Setting("model_path", str, "", "GGUF model file (empty: the model shipped with ckls)"),
    Setting("threads", int, 0, "CPU threads for the model (0: all cores, at most 8)", 0, 256),
    Setting("n_ctx", int, 2048, "model context in tokens", 256, 1 << 17),
    Setting("latency_ms", int, 400, "hard cap on the time from request to answer", 20, 60000),
    Setting("quick_start", bool, True, "when a new prompt cannot be evaluated within latency_ms, answer from a "
            "reduced one (last lines, short suffix, no other files) and finish the full prompt in the background"),
    Setting("prefill_idle_ms", int, 300, "after opening a document or editing far from the last place, evaluate "
            "the prompt there once the user has been idle this long (0: never)", 0, 600000),
    Setting("max_tokens", int, 64, "most tokens generated for one suggestion", 1, 1024),
    Setting("max_lines", int, 8, "most lines in a multi-line suggestion", 1, 200),
    Setting("prefix_tokens", int, 768, "token budget for text before the cursor", 16, 1 << 16),
    Setting("suffix_tokens", int, 256, "token budget for text after the cursor", 0, 1 << 16),
    Setting("extra_tokens", int, 512, "token budget for context from other files and definitions", 0, 1 << 16),
    Setting("fim_order", str, "spm", "fill-in-the-middle layout: spm (suffix first: typing keeps the cached "
            "suffix) or psm", choices=("spm", "psm")),
    Setting("speculative_tokens", int, 8, "speculative decoding: most tokens drafted per step from earlier text "
            "of the prompt and suggestion (n-gram lookup), checked in one batched pass; the output is the same, "
            "sooner (0: off)", 0, 64),
    Setting("multiline", str, "auto", "multi-line suggestions: auto (by context), always or never",
            choices=("auto", "always", "never")),
    Setting("debounce_ms", int, 0, "least wait after a keystroke before starting the model", 0, 5000),
    Setting("debounce_max_ms", int, 80, "keystrokes closer than this count as a burst: wait up to this long",
            0, 5000),
    Setting("trigger_with_text_right", bool, False, "suggest automatically when meaningful text sits right of "
            "the cursor"),
    Setting("disabled_languages", list, [], "language ids with completion switched off (e.g. [\"markdown\"])"),
    Setting("enabled", bool, True, "completion on or off"),
    Setting("prefetch", bool, True, "compute the next suggestion right after one is accepted"),
    Setting("telemetry", bool, True, "count shown/accepted suggestions locally (nothing leaves the machine)"),
    Setting("retrieval", bool, False, "index the workspace in the background (~/.cache/ckls/index) and put the "
            "code most similar to the lines above the cursor, from other files, in the prompt"),
    # fine-tuning on the workspace (ckls.tune): a LoRA adapter trained while the user is idle
    Setting("tune_enabled", bool, False, "train an adapter on the workspace when idle (server start and file saves)"),
    Setting("tune_rank", int, 8, "LoRA rank of the workspace adapter", 1, 256),
    Setting("tune_alpha", float, 16.0, "LoRA alpha (the adapter is scaled by alpha / rank)", 0.0, 4096.0),
    Setting("tune_lr", float, 1e-4, "AdamW learning rate", 0.0, 1.0),
    Setting("tune_budget_s", int, 600,
            "most seconds of work per round: steps and held-out evaluations (waits not counted)", 1, 7 * 86400),
    Setting("tune_max_steps", int, 0, "most steps per round (0: two passes over the new samples)", 0, 1 << 30),
    Setting("tune_seq_len", int, 1024, "tokens per training sample (an example at a cursor must fit)", 16, 1 << 14),
    Setting("tune_schedule", str, "idle", "when training runs: idle (after tune_idle_ms without typing or "
            "requests) or always (between completions)", choices=("idle", "always")),
    Setting("tune_idle_ms", int, 3000, "quiet time before training resumes (schedule idle)", 0, 3600_000),
    Setting("tune_threads", int, 1, "CPU threads for training (0: all cores)", 0, 256),
    Setting("tune_dir", str, "", "folder for the tuning state and adapter (empty: ~/.cache/ckls/tune/<repo>)"),
    Setting("tune_on_battery", bool, False, "let rounds the server starts on its own run while on battery"),
    Setting("tune_use_adapter", bool, True, "serve completions with the workspace adapter once one is trained"),
    # the language server's own log: window/logMessage to the client from this level up, and a file if given
    Setting("log_level", str, "info", "least level of the server's log sent to the editor (window/logMessage)",
            choices=("error", "warning", "info", "debug")),
    Setting("log_file", str, "", "also append the server's log to this file (empty: none)"),
    # the repository memory at the logits (ckls.completion.memory): an n-gram / suffix cache of the workspace's
    # token stream mixed into each generation step
    Setting("memory_enabled", bool, True, "mix a token memory of the workspace's files (updated on save) and of "
            "the open document into the model's next-token choice"),
    Setting("memory_tokens", int, 1 << 20, "most tokens the repository memory holds (about 20 bytes each); the "
            "oldest files are evicted beyond it", 1024, 1 << 27),
)
BY_NAME = {s.name: s for s in SCHEMA}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _key(k: str) -> str | None:
    """Accepts snake_case, camelCase and kebab-case spellings of a setting name."""
    k = k.replace("-", "_")
    if k in BY_NAME:
        return k
    snake = "".join("_" + c.lower() if c.isupper() else c for c in k)
    return snake if snake in BY_NAME else None


def _number(s: Setting, v: Any, what: str) -> float:
    """v (a number, or a string of one; not a bool) as a float, else SettingsError: s should be `what`."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise SettingsError(f"{s.name} should be {what}, not {v!r}")
    try:
        return float(v)
    except ValueError:
        raise SettingsError(f"{s.name} should be {what}, not {v!r}") from None


def _in_range(s: Setting, v):
    """v, else SettingsError: NaN or outside [s.lo, s.hi]."""
    if v != v or (s.lo is not None and v < s.lo) or (s.hi is not None and v > s.hi):
        raise SettingsError(f"{s.name} = {v} is outside [{s.lo:g}, {s.hi:g}]")
    return v


def _coerce(s: Setting, v: Any) -> Any:
    if s.type is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return v.lower() in ("true", "1", "yes", "on")
        raise SettingsError(f"{s.name} should be true or false, not {v!r}")
    if s.type is int:
        f = _number(s, v, "an integer")
        if f != f or f in (float("inf"), float("-inf")) or f != int(f):
            raise SettingsError(f"{s.name} should be an integer, not {v!r}")
        return _in_range(s, int(f))
    if s.type is float:
        return _in_range(s, _number(s, v, "a number"))
    if s.type is str:
        if not isinstance(v, str):
            raise SettingsError(f"{s.name} should be a string, not {v!r}")
        if s.choices and v not in s.choices:
            raise SettingsError(f"{s.name} should be one of {', '.join(s.choices)}, not {v!r}")
        return v
    if s.type is list:
        if isinstance(v, str):
            v = [p.strip() for p in v.split(",") if p.strip()]
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            raise SettingsError(f"{s.name} should be a list of strings, not {v!r}")
        return list(v)
    raise SettingsError(f"{s.name}: unsupported type")  # pragma: no cover


@dataclass(frozen=True)
class Settings:
    model_path: str = ""
    threads: int = 0
    n_ctx: int = 2048
    latency_ms: int = 400
    quick_start: bool = True
    prefill_idle_ms: int = 300
    max_tokens: int = 64
    max_lines: int = 8
    prefix_tokens: int = 768
    suffix_tokens: int = 256
    extra_tokens: int = 512
    fim_order: str = "spm"
    speculative_tokens: int = 8
    multiline: str = "auto"
    debounce_ms: int = 0
    debounce_max_ms: int = 80
    trigger_with_text_right: bool = False
    disabled_languages: list = field(default_factory=list)
    enabled: bool = True
    prefetch: bool = True
    telemetry: bool = True
    retrieval: bool = False
    tune_enabled: bool = False
    tune_rank: int = 8
    tune_alpha: float = 16.0
    tune_lr: float = 1e-4
    tune_budget_s: int = 600
    tune_max_steps: int = 0
    tune_seq_len: int = 1024
    tune_schedule: str = "idle"
    tune_idle_ms: int = 3000
    tune_threads: int = 1
    tune_on_battery: bool = False
    tune_dir: str = ""
    tune_use_adapter: bool = True
    log_level: str = "info"
    log_file: str = ""
    memory_enabled: bool = True
    memory_tokens: int = 1 << 20

    def merged(self, values: Mapping[str, Any] | None, strict: bool = False) -> tuple["Settings", list[str]]:
        """A copy with values applied. Unknown keys and bad values are skipped and reported (raised when
        strict), so one typo in an editor's settings does not stop the server."""
        if not values:
            return self, []
        if not isinstance(values, Mapping):
            msg = f"settings should be an object, not {type(values).__name__}"
            if strict:
                raise SettingsError(msg)
            return self, [msg]
        if isinstance(values.get("ckls"), Mapping):  # a whole configuration object with a "ckls" section
            values = values["ckls"]
        changes: dict[str, Any] = {}
        problems: list[str] = []
        for k, v in values.items():
            name = _key(str(k))
            if name is None:
                problems.append(f"unknown setting {k!r}")
                continue
            if v is None:
                continue
            try:
                changes[name] = _coerce(BY_NAME[name], v)
            except SettingsError as exc:
                problems.append(str(exc))
        if strict and problems:
            raise SettingsError("; ".join(problems))
        return dataclasses.replace(self, **changes), problems

    @property
    def resolved_model_path(self) -> str:
        return os.path.expanduser(self.model_path) if self.model_path else DEFAULT_MODEL

    @property
    def n_threads(self) -> int:
        return self.threads or min(os.cpu_count() or 1, 8)

    def language_enabled(self, language_id: str | None) -> bool:
        return self.enabled and (language_id or "") not in self.disabled_languages

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Settings from a ckls.toml: either top-level keys or a [ckls] table. Missing file: no settings."""
    if tomllib is None or not os.path.isfile(path):
        return {}
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from None
    return data.get("ckls", data) if isinstance(data.get("ckls"), dict) else data


# the settings one completion outside the editor uses (`ckls complete`, `ckls eval completion`): no debounce,
# prefill, cache, telemetry, tuning or server log
COMPLETION = ("model_path", "threads", "n_ctx", "latency_ms", "quick_start", "max_tokens", "max_lines",
              "speculative_tokens", "prefix_tokens", "suffix_tokens", "extra_tokens", "fim_order", "multiline",
              "retrieval", "memory_enabled")


def add_cli_args(parser, names: tuple[str, ...] | None = None) -> None:
    """Adds one --kebab-case flag per setting, or per setting in names (default None: only given flags
    override)."""
    for s in SCHEMA:
        if names is not None and s.name not in names:
            continue
        flag = "--" + s.name.replace("_", "-")
        if s.name == "model_path":
            parser.add_argument("--model", "-m", dest="model_path", default=None, help=s.help)
        elif s.type is bool:
            parser.add_argument(flag, dest=s.name, default=None, metavar="BOOL", help=s.help)
        else:
            parser.add_argument(flag, dest=s.name, default=None, help=s.help,
                                choices=s.choices if s.choices else None)


def from_cli(args) -> dict[str, Any]:
    return {s.name: getattr(args, s.name) for s in SCHEMA if getattr(args, s.name, None) is not None}


def workspace_state_dir(kind: str, root: str) -> str:
    """Where ckls keeps its state of one kind ("tune", "index") for a workspace: under $XDG_CACHE_HOME/ckls (default
    ~/.cache/ckls), one folder per workspace, never inside the workspace."""
    import hashlib

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = os.path.realpath(root)
    tag = hashlib.sha1(root.encode()).hexdigest()[:12]
    return os.path.join(base, "ckls", kind, f"{os.path.basename(root) or 'root'}-{tag}")
