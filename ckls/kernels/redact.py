"""Masks secrets in every text the kernel command lets out: tool results before they go to the API, the
transcript, progress lines, the report and notes shown to the user, error messages.

What is masked (each as `[redacted: WHAT]`):
- the API key, wherever it came from (config, editor, environment): `[redacted: ANTHROPIC_API_KEY]`;
- the value of every environment variable whose name looks secret (KEY, TOKEN, SECRET, PASSWORD, PASSWD,
  CREDENTIAL, AUTH, COOKIE, SESSION, PRIVATE, ...; any case) and whose value has at least 8 characters;
- the contents of the files where secrets live: the private files under ~/.ssh (each line), the values in
  ~/.aws/credentials, ~/.netrc, ~/.git-credentials, ~/.pypirc, ~/.docker/config.json, ~/.config/gh/hosts.yml,
  and in the `.env` files of the workspace (the folder of the user's function and the folders above it);
- well-known shapes of secrets in any text: Anthropic/OpenAI `sk-...` keys, `-----BEGIN ... PRIVATE KEY-----`
  blocks (and their lines one by one), long base64 runs, GitHub `ghp_...`/`github_pat_...`, AWS `AKIA...`,
  Slack `xox.-...`, Google `AIza...`, JWTs, and password hashes as /etc/shadow writes them (`name:$6$...`).
Compiler output gets one more rule (foreign_source): where gcc or nvcc quotes a line, or a token in quotes, of a
file that is neither the candidate nor a system header (a kernel that #includes ~/.ssh/id_ed25519 or ../.env),
the quote is masked as `[redacted: contents of FILE]`, whatever the file holds.
Literal values are also matched in their JSON-escaped form, and pieces of them: a run of 8 or more letters and
digits (with a digit, or with both cases) that occurs inside a known value is masked too, so a compiler that
quotes one token of an included key file does not let that token out. Compiler diagnostics, paths and hex addresses are
left alone (the shapes need a prefix, or mixed case and digits over 40 characters).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

MIN_LEN = 8
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|"
                         r"SIGNATURE|CERT|API_?KEY|(?:^|_)PASS(?:_|$)|(?:^|_)PWD(?:_|$)|DSN|CONN(?:ECTION)?_STR",
                         re.I)
NOT_SECRET_NAMES = {"PWD", "OLDPWD", "SSH_AUTH_SOCK", "XAUTHORITY", "KEYTIMEOUT", "GPG_TTY"}

# (label, pattern): applied after the literal values; a named group `keep` is kept in front of the mask
SHAPES = [
    ("private key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY"
                    r"(?: BLOCK)?-----|\Z)"),
    ("private key", r"-----(?:BEGIN|END) [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"),
    ("Anthropic key", r"\bsk-ant-[A-Za-z0-9_\-]{8,}"),
    ("API key", r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_\-]{20,}"),
    ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    ("AWS access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("Slack token", r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    ("Google API key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("JWT", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    ("password hash", r"(?P<keep>\b[a-z_][a-z0-9_.\-]{0,31}:)\$(?:1|2[abxy]?|5|6|7|y|gy|sha1|md5)\$[^\s:]{8,}"),
    ("key material", r"(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[0-9])"
                     r"[A-Za-z0-9+/]{40,}={0,2}"),
]

_RUN = re.compile(r"[A-Za-z0-9]{%d,}" % MIN_LEN)
_HOME_FILES = [".aws/credentials", ".netrc", ".git-credentials", ".pypirc", ".docker/config.json",
               ".config/gh/hosts.yml", ".config/anthropic/api_key"]
_SSH_PUBLIC = {"known_hosts", "known_hosts.old", "authorized_keys", "authorized_keys2", "config", "environment"}
_MAX_FILE = 256 * 1024


def _read(p: Path) -> str:
    try:
        if p.is_file() and p.stat().st_size <= _MAX_FILE:
            return p.read_text(errors="replace")
    except OSError:
        pass
    return ""


def _values_of(text: str) -> list[str]:
    """The values in a credentials file: what follows `=`, `:`, or a keyword like netrc's `password`."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        for tok in re.split(r"[\s=,\"'{}]+|(?<!:)//", line):
            tok = tok.strip(":")
            if len(tok) >= MIN_LEN and re.search(r"\d", tok) and re.search(r"[A-Za-z]", tok):
                out.append(tok)
    return out


def _dotenv(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*[=:]\s*(.*?)\s*$", line)
        if m:
            name, value = m.group(1), m.group(2).strip("'\"")
            if len(value) >= MIN_LEN and (SECRET_NAME.search(name) or (len(value) >= 16 and " " not in value)):
                out.append((name, value))
    return out


def secret_name(name: str) -> bool:
    return name.upper() not in NOT_SECRET_NAMES and bool(SECRET_NAME.search(name))


class Redactor:
    """redactor(text) -> text with secrets masked; .obj() does the same through dicts and lists."""

    def __init__(self, literals: dict[str, str] | None = None):
        self.literals: dict[str, str] = {}   # value -> label
        self._rx: re.Pattern | None = None
        self._blob: str = ""
        self._starts: list[tuple[int, str]] = []
        for v, label in (literals or {}).items():
            self.add(v, label)

    def add(self, value: str | None, label: str) -> None:
        if not isinstance(value, str):
            return
        value = value.strip()
        if len(value) < MIN_LEN or (os.path.isabs(value) and os.path.exists(value)):
            return
        for v in {value, json.dumps(value)[1:-1]}:
            self.literals.setdefault(v, label)
        self._rx = None

    def _pattern(self) -> re.Pattern:
        if self._rx is None:
            parts = []
            lits = sorted(self.literals, key=len, reverse=True)
            if lits:
                parts.append("(?P<lit>" + "|".join(re.escape(v) for v in lits) + ")")
            for i, (_, rx) in enumerate(SHAPES):
                parts.append(f"(?P<s{i}>" + rx.replace("?P<keep>", f"?P<k{i}>") + ")")
            self._rx = re.compile("|".join(parts), re.S)
            self._starts, pos = [], 0
            for v in lits:
                self._starts.append((pos, self.literals[v]))
                pos += len(v) + 1
            self._blob = "\0".join(lits)
        return self._rx

    def _piece(self, m: re.Match) -> str:
        t = m.group(0)
        if not (re.search(r"\d", t) or (re.search(r"[a-z]", t) and re.search(r"[A-Z]", t))):
            return t
        i = self._blob.find(t)
        if i < 0:
            return t
        label = next(lb for start, lb in reversed(self._starts) if start <= i)
        return f"[redacted: {label}]"

    def _sub(self, m: re.Match) -> str:
        if "lit" in m.re.groupindex and m.group("lit") is not None:
            return f"[redacted: {self.literals[m.group('lit')]}]"
        for i, (label, _) in enumerate(SHAPES):
            if m.group(f"s{i}") is not None:
                keep = m.groupdict().get(f"k{i}") or ""
                return f"{keep}[redacted: {label}]"
        return m.group(0)

    def __call__(self, text):
        if not isinstance(text, str) or not text:
            return text
        text = self._pattern().sub(self._sub, text)
        return _RUN.sub(self._piece, text) if self._blob else text

    def obj(self, o):
        """A copy of a JSON-like object (dicts, lists, strings) with every string masked."""
        if isinstance(o, str):
            return self(o)
        if isinstance(o, dict):
            return {k: self.obj(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [self.obj(v) for v in o]
        return o


def redactor(api_key: str | None = None, workspace: str | os.PathLike | None = None,
             env: dict | None = None, home: str | os.PathLike | None = None) -> Redactor:
    """A Redactor for this process: the API key, the environment's secret-looking values, the secret files
    under home (default: ~), and the .env files of `workspace` (a file or folder; its folder and those above)."""
    env = os.environ if env is None else env
    r = Redactor()
    r.add(api_key, "ANTHROPIC_API_KEY")
    for name, value in env.items():
        if secret_name(name):
            r.add(value, name)
    try:
        h = Path(home) if home is not None else Path(env.get("HOME") or Path.home())
    except RuntimeError:
        h = None
    if h is not None:
        ssh = h / ".ssh"
        try:
            names = sorted(os.listdir(ssh)) if ssh.is_dir() else []
        except OSError:
            names = []
        for n in names:
            if n in _SSH_PUBLIC or n.endswith(".pub"):
                continue
            for line in _read(ssh / n).splitlines():
                if "PRIVATE KEY" not in line:
                    r.add(line, f"~/.ssh/{n}")
        for rel in _HOME_FILES:
            for v in _values_of(_read(h / rel)):
                r.add(v, f"~/{rel}")
    if workspace is not None:
        d = Path(workspace).resolve()
        d = d if d.is_dir() else d.parent
        for folder in [d, *d.parents][:8]:
            for n in (".env", ".env.local", ".envrc"):
                for name, value in _dotenv(_read(folder / n)):
                    r.add(value, f"{n} {name}")
    return r


def redact_dataclass(obj, red: Redactor):
    """A copy of a dataclass (the judge's Report, its Failure) with every string in it masked."""
    import dataclasses

    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return red.obj(obj)
    return dataclasses.replace(obj, **{f.name: redact_dataclass(getattr(obj, f.name), red)
                                       for f in dataclasses.fields(obj) if f.init})


# ---- compiler output: what it quotes from files that are not the kernel's ---------------------------------------
_DIAG = re.compile(r"^(?P<file>[^\s:(][^:(]*?)(?::\d+(?::\d+)?:|\(\d+\):) (?P<rest>.*)$")
_QUOTED = re.compile(r"‘[^’]*’|'[^']*'|\"[^\"]*\"")
_SOURCE_LINE = re.compile(r"^(\s*\d*\s*\|\s?)(.*\S.*)$")
_HARMLESS = re.compile(r"^(?:In file included from|\s+from |compilation terminated|\d+ errors? detected|"
                       r"forbidden imports:)")
SYSTEM_DIRS = ("/usr/", "<command-line>", "<built-in>")


def _foreign(path: str, own: tuple[str, ...]) -> bool:
    path = path.strip()
    if path.startswith(SYSTEM_DIRS) or any(path.startswith(d) for d in own if d):
        return False
    return "/" in path or path.startswith(".")   # a bare name is a file of the candidate's own folder


def foreign_source(text: str, own: tuple[str, ...] = ()) -> str:
    """Masks what a compiler log quotes from foreign files: the source lines it shows under a diagnostic and
    the quoted tokens of the diagnostic's message. `own`: folders whose files are the candidate's."""
    if not text or "|" not in text and "'" not in text and "\u2018" not in text:
        return text
    out, foreign, label = [], False, ""
    for line in text.split("\n"):
        m = _DIAG.match(line)
        if m and not line.startswith(("In file included from", "                 from")):
            foreign = _foreign(m.group("file"), own)
            if foreign:
                label = f"[redacted: contents of {m.group('file').strip()}]"
                head = line[: m.start("rest")]
                line = head + _QUOTED.sub(label, m.group("rest"))
        elif foreign and re.search(r"[^\s^~+|]", line) and not _HARMLESS.match(line):
            sm = _SOURCE_LINE.match(line)   # gcc: "   12 | text"; nvcc: the text itself, indented
            line = sm.group(1) + label if sm and "|" in sm.group(1) else re.match(r"\s*", line).group(0) + label
        out.append(line)
    return "\n".join(out)


def foreign_build(build: dict, own: tuple[str, ...]) -> dict:
    """A build record of the judge's report ({log, diagnostics: [{file, message}]}) through foreign_source."""
    b = dict(build)
    if isinstance(b.get("log"), str):
        b["log"] = foreign_source(b["log"], own)
    diags = []
    for d in b.get("diagnostics") or []:
        if isinstance(d, dict) and _foreign(str(d.get("file", "")), own):
            label = f"[redacted: contents of {d.get('file')}]"
            d = dict(d, message=_QUOTED.sub(label, str(d.get("message", ""))))
        diags.append(d)
    if "diagnostics" in b:
        b["diagnostics"] = diags
    return b
