"""`ckls skills new NAME`: a new skill folder whose SKILL.md passes lint once its description is written."""
from __future__ import annotations

from pathlib import Path

from .lint import PLACEHOLDER, check_name

TEMPLATE = """\
---
name: {name}
description: {description}
---

# {title}

State the goal in one or two sentences, then what the model should do, in order. Write only what a strong
model would not already know: the conventions of this code base, the traps, the checks that decide success.

## When to use

- The situations (file types, requests, symptoms) where this skill applies.

## Steps

1. ...

## Pitfalls

- ...

Longer material (tables, worked examples, API notes) goes in files under references/, linked from here
with a relative Markdown link; a model reads them only when it needs them.
"""


class ScaffoldError(ValueError):
    pass


def new_skill(root: str | Path, name: str, description: str | None = None, force: bool = False) -> Path:
    """Create <root>/<name>/SKILL.md; returns its path. Refuses a bad name or an existing skill (unless force)."""
    why = check_name(name)
    if why:
        raise ScaffoldError(why)
    if description is not None:
        description = " ".join(description.split())
        if not description:
            raise ScaffoldError("the description is empty")
        if len(description) > 1024:
            raise ScaffoldError(f"the description is {len(description)} characters; at most 1024")
    folder = Path(root) / name
    md = folder / "SKILL.md"
    if md.exists() and not force:
        raise ScaffoldError(f"{md} exists (use --force to overwrite)")
    folder.mkdir(parents=True, exist_ok=True)
    desc = description or f"{PLACEHOLDER} say what this skill does and when a model should use it."
    # Quoted as a YAML string so colons and leading symbols in the description stay text.
    desc_yaml = '"' + desc.replace("\\", "\\\\").replace('"', '\\"') + '"'
    title = name.replace("-", " ").capitalize()
    md.write_text(TEMPLATE.format(name=name, description=desc_yaml, title=title), encoding="utf-8")
    return md
