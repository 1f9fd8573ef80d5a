"""Checks a skill folder against the Agent Skills format (agentskills.io, and the Messages API's own limits).

A skill is a folder holding SKILL.md: YAML front matter between two `---` lines, then a Markdown body. The front
matter's `name` (1-64 chars of a-z, 0-9 and single inner hyphens, equal to the folder's name) and `description`
(1-1024 chars, what the skill does and when to use it) are required; `license`, `compatibility` (<= 500 chars),
`metadata` (string to string) and `allowed-tools` (space-separated) are optional. The body is what a model reads
when it opens the skill, so it is held to 500 lines and about 5,000 tokens; longer material belongs in
references/ files, which are read on demand.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
NAME_MAX, DESCRIPTION_MAX, COMPATIBILITY_MAX = 64, 1024, 500
BODY_MAX_LINES, BODY_MAX_TOKENS = 500, 5000
KNOWN_KEYS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
KNOWN_ENTRIES = ("SKILL.md", "references", "scripts", "assets", "LICENSE", "LICENSE.txt", "LICENSE.md")
RESERVED_WORDS = ("anthropic", "claude")  # refused in names by the Messages API's skill upload
PLACEHOLDER = "TODO:"  # what `ckls skills new` leaves for the author to replace
_XML_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")

ERROR, WARNING = "error", "warning"


@dataclass
class Finding:
    path: str
    level: str   # error | warning
    rule: str    # short id: name-format, description-length, body-lines, ...
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.level}: {self.message} [{self.rule}]"

    def to_dict(self) -> dict:
        return asdict(self)


class FrontMatterError(ValueError):
    pass


def split_front_matter(text: str) -> tuple[dict, str, int]:
    """(front matter mapping, body, line number where the body starts); FrontMatterError when malformed."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise FrontMatterError("SKILL.md must start with a '---' line opening the YAML front matter")
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            head, body = "".join(lines[1:i]), "".join(lines[i + 1:])
            break
    else:
        raise FrontMatterError("the YAML front matter has no closing '---' line")
    try:
        front = yaml.safe_load(head)
    except yaml.YAMLError as e:
        raise FrontMatterError(f"the front matter is not valid YAML: {str(e).splitlines()[0]}") from e
    if front is None:
        front = {}
    if not isinstance(front, dict):
        raise FrontMatterError("the front matter must be a YAML mapping (key: value lines)")
    return front, body, i + 2


def estimate_tokens(text: str) -> int:
    """About four bytes per token for English prose and code; an estimate, stated as such in messages."""
    return (len(text.encode("utf-8")) + 3) // 4


def check_name(name) -> str | None:
    """Why `name` is not a valid skill name, or None."""
    if not isinstance(name, str) or not name:
        return "name must be a non-empty string"
    if len(name) > NAME_MAX:
        return f"name is {len(name)} characters; at most {NAME_MAX}"
    if not NAME_RE.match(name):
        return (f"name {name!r} must be lowercase letters, digits and hyphens, without a leading, trailing or "
                "double hyphen")
    for w in RESERVED_WORDS:
        if w in name:
            return f"name {name!r} contains the reserved word {w!r}"
    return None


def lint_skill(folder: str | Path) -> list[Finding]:
    folder = Path(folder)
    md = folder / "SKILL.md"
    out: list[Finding] = []

    def add(level, rule, msg, path=md):
        out.append(Finding(str(path), level, rule, msg))

    if not md.is_file():
        add(ERROR, "skill-md", "no SKILL.md in the skill folder", folder)
        return out
    try:
        text = md.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        add(ERROR, "encoding", "SKILL.md is not UTF-8")
        return out
    try:
        front, body, _ = split_front_matter(text)
    except FrontMatterError as e:
        add(ERROR, "front-matter", str(e))
        return out

    name = front.get("name")
    if "name" not in front:
        add(ERROR, "name-missing", "the front matter has no 'name'")
    else:
        why = check_name(name)
        if why:
            add(ERROR, "name-format", why)
        elif name != folder.name:
            add(ERROR, "name-folder", f"name {name!r} differs from the folder name {folder.name!r}")
        if isinstance(name, str) and _XML_TAG.search(name):
            add(ERROR, "name-xml", "name contains an XML tag")

    desc = front.get("description")
    if "description" not in front:
        add(ERROR, "description-missing", "the front matter has no 'description'")
    elif not isinstance(desc, str) or not desc.strip():
        add(ERROR, "description-empty", "description must be a non-empty string")
    else:
        if len(desc) > DESCRIPTION_MAX:
            add(ERROR, "description-length", f"description is {len(desc)} characters; at most {DESCRIPTION_MAX}")
        if _XML_TAG.search(desc):
            add(ERROR, "description-xml", "description contains an XML tag")
        if PLACEHOLDER in desc:
            add(ERROR, "description-placeholder", "description still holds the scaffold's TODO text")
        if len(desc.split()) < 6:
            add(WARNING, "description-short", "description is very short; say what the skill does and when to "
                                              "use it, so a model can decide to open it")

    if "license" in front and not isinstance(front["license"], str):
        add(ERROR, "license", "license must be a string (a licence name or a bundled file)")
    if "compatibility" in front:
        c = front["compatibility"]
        if not isinstance(c, str) or not c.strip():
            add(ERROR, "compatibility", "compatibility must be a non-empty string")
        elif len(c) > COMPATIBILITY_MAX:
            add(ERROR, "compatibility-length", f"compatibility is {len(c)} characters; at most {COMPATIBILITY_MAX}")
    if "metadata" in front:
        m = front["metadata"]
        if not isinstance(m, dict):
            add(ERROR, "metadata", "metadata must be a mapping")
        elif any(not isinstance(k, str) or not isinstance(v, str) for k, v in m.items()):
            add(WARNING, "metadata-strings", "metadata keys and values should be strings (quote numbers)")
    if "allowed-tools" in front and not isinstance(front["allowed-tools"], str):
        add(ERROR, "allowed-tools", "allowed-tools must be a space-separated string of tool names")
    for k in front:
        if k not in KNOWN_KEYS:
            add(WARNING, "unknown-key", f"front matter key {k!r} is not part of the format "
                                        f"(known: {', '.join(KNOWN_KEYS)}); put extra data under metadata")

    n_lines = len(body.splitlines())
    n_tokens = estimate_tokens(body)
    if not body.strip():
        add(ERROR, "body-empty", "the body is empty: it is what a model reads when it opens the skill")
    if n_lines > BODY_MAX_LINES:
        add(ERROR, "body-lines", f"the body has {n_lines} lines; keep it under {BODY_MAX_LINES} and move detail "
                                 "to references/")
    if n_tokens > BODY_MAX_TOKENS:
        add(ERROR, "body-tokens", f"the body is about {n_tokens} tokens; keep it under {BODY_MAX_TOKENS} and move "
                                  "detail to references/")

    for target in _LINK.findall(body):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            continue  # URLs and absolute paths are not files of the skill
        p = (folder / target).resolve()
        if not p.exists():
            add(ERROR, "broken-link", f"the body links to {target}, which is not in the skill folder")
        elif folder.resolve() not in p.parents and p != folder.resolve():
            add(ERROR, "outside-link", f"the body links to {target}, outside the skill folder")

    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.name not in KNOWN_ENTRIES:
            add(WARNING, "layout", f"{entry.name} is not SKILL.md, references/, scripts/ or assets/", entry)
    return out


def lint_tree(root: str | Path) -> list[Finding]:
    """Lint every skill folder under `root` (a folder of skills, or one skill folder)."""
    root = Path(root)
    if not root.is_dir():
        return [Finding(str(root), ERROR, "missing", "no such folder")]
    if (root / "SKILL.md").exists():
        return lint_skill(root)
    out: list[Finding] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        out += lint_skill(d)
    return out


def skill_folders(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "SKILL.md").is_file())
