"""Decide from a distribution's metadata whether its source may train the shipped model.

Only the metadata counts (License-Expression, License, trove classifiers): a package whose metadata names no
licence, or only a copyleft or proprietary one, is left out.
"""
from __future__ import annotations

import re

# SPDX ids we accept: permissive licences whose terms a model trained on the code can meet.
PERMISSIVE = {
    "MIT", "MIT-0", "BSD", "BSD-2-Clause", "BSD-3-Clause", "BSD-3-Clause-Clear", "0BSD", "Apache-2.0", "PSF-2.0",
    "Python-2.0", "ISC", "Zlib", "Unlicense", "CC0-1.0", "BSL-1.0", "HPND", "NCSA", "X11", "MIT-CMU",
}

# Trove classifier tail → SPDX id.
_CLASSIFIERS = {
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "BSD License": "BSD",
    "Apache Software License": "Apache-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "ISC License (ISCL)": "ISC",
    "zlib/libpng License": "Zlib",
    "The Unlicense (Unlicense)": "Unlicense",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "University of Illinois/NCSA Open Source License": "NCSA",
}

# Free-text `License:` fields seen in the wild → SPDX id (lower-case keys, first match wins).
_TEXT = [
    (r"^mit( license)?$|^the mit license|^mit/expat|^expat", "MIT"),
    (r"^mit-0$", "MIT-0"),
    (r"^(new |modified |revised |simplified )?bsd[- ]?(3|three)[- ]?clause|^bsd-3|^3-clause bsd|^new bsd|^modified bsd|^revised bsd", "BSD-3-Clause"),
    (r"^(simplified |freebsd )?bsd[- ]?(2|two)[- ]?clause|^bsd-2|^2-clause bsd|^simplified bsd", "BSD-2-Clause"),
    (r"^bsd( license)?$|^bsd style|^bsd-style", "BSD"),
    (r"^apache(-| )?(software )?(license)?[ ,-]*(version )?2(\.0)?|^apache-2|^apache license 2|^asl 2|^apache$|^apache license$|^apache software license$", "Apache-2.0"),
    (r"^psf|^python software foundation|^python-2\.0", "PSF-2.0"),
    (r"^isc( license)?$|^iscl$", "ISC"),
    (r"^zlib", "Zlib"),
    (r"^unlicense|^the unlicense", "Unlicense"),
    (r"^cc0", "CC0-1.0"),
    (r"^0bsd$", "0BSD"),
    (r"^bsl-1\.0$|^boost", "BSL-1.0"),
]

_SPDX_NORMAL = {s.lower(): s for s in PERMISSIVE}


def _spdx_atom(s: str) -> str | None:
    s = s.strip().strip("()").strip()
    if not s:
        return None
    if s.lower() in _SPDX_NORMAL:
        return _SPDX_NORMAL[s.lower()]
    low = s.lower()
    for pat, spdx in _TEXT:
        if re.search(pat, low):
            return spdx
    return None


def from_expression(expr: str) -> str | None:
    """SPDX expression → the permissive licences it can be used under ("A AND B"), or None.

    `A OR B` needs one side acceptable, `A AND B` both; parentheses nest; `X WITH exception` counts as X.
    """
    toks = re.findall(r"\(|\)|[^\s()]+", expr)
    pos = 0

    def peek():
        return toks[pos].upper() if pos < len(toks) else None

    def disj():
        nonlocal pos
        best = conj()
        while peek() == "OR":
            pos += 1
            alt = conj()
            best = best if best is not None else alt
        return best

    def conj():
        nonlocal pos
        parts = [atom()]
        while peek() == "AND":
            pos += 1
            parts.append(atom())
        return None if any(p is None for p in parts) else [x for p in parts for x in p]

    def atom():
        nonlocal pos
        if peek() == "(":
            pos += 1
            r = disj()
            if peek() == ")":
                pos += 1
            return r
        if pos >= len(toks):
            return None
        words = [toks[pos]]
        pos += 1
        # free-text names ("Apache License 2.0") run until an operator or parenthesis
        while pos < len(toks) and peek() not in ("AND", "OR", "(", ")", "WITH"):
            words.append(toks[pos])
            pos += 1
        if peek() == "WITH":
            pos += 2
        a = _spdx_atom(" ".join(words))
        return [a] if a else None

    try:
        r = disj()
    except IndexError:
        return None
    if r is None or pos != len(toks):
        return None
    return " AND ".join(dict.fromkeys(r))


def from_metadata(meta) -> tuple[str | None, str]:
    """(accepted SPDX id or None, what the metadata said) from an email.message-like METADATA object."""
    expr = meta.get("License-Expression")
    if expr:
        return from_expression(expr), f"License-Expression: {expr}"
    found = []
    for c in meta.get_all("Classifier") or []:
        if c.startswith("License ::"):
            tail = c.split("::")[-1].strip()
            found.append(c)
            if tail in _CLASSIFIERS:
                return _CLASSIFIERS[tail], c
    lic = (meta.get("License") or "").strip()
    if lic:
        first = lic.splitlines()[0].strip()
        if len(first) <= 80:
            return from_expression(first) or _spdx_atom(first), f"License: {first}"
        # A whole licence text pasted in the field: recognise the common headers only.
        head = lic[:400].lower()
        if "permission is hereby granted, free of charge" in head:
            return "MIT", "License: (MIT text)"
        if "redistribution and use in source and binary forms" in head:
            return "BSD", "License: (BSD text)"
        if "apache license" in head and "version 2.0" in head:
            return "Apache-2.0", "License: (Apache-2.0 text)"
        return None, "License: (unrecognised text)"
    if found:
        return None, found[0]
    return None, "none"
