"""Declared licences as SPDX expressions where they parse (``packaging.licenses`` does the parsing).

Package metadata says licences in many dialects: SPDX expressions (npm, PEP 639,
apk, Fedora), Debian's DEP-5 short names (``GPL-2+``, ``Expat``), and free text
("Apache 2.0", "BSD"). :func:`normalize` maps the well-known short names of
those dialects to SPDX identifiers and returns a canonical SPDX expression when
the result parses; otherwise it returns the text as declared, which writers
then report as a named (non-SPDX) licence.
"""

from __future__ import annotations

import re
from functools import lru_cache

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

# Short names (compared case-insensitively) that are not SPDX identifiers but name
# one: Debian's DEP-5 names, old Fedora/RPM names, common free-text spellings.
_ALIASES: dict[str, str] = {
    "gpl-1": "GPL-1.0-only",
    "gpl-1+": "GPL-1.0-or-later",
    "gpl-2": "GPL-2.0-only",
    "gpl-2+": "GPL-2.0-or-later",
    "gpl-2.0+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only",
    "gpl-3+": "GPL-3.0-or-later",
    "gpl-3.0+": "GPL-3.0-or-later",
    "gplv2": "GPL-2.0-only",
    "gplv2+": "GPL-2.0-or-later",
    "gplv3": "GPL-3.0-only",
    "gplv3+": "GPL-3.0-or-later",
    "lgpl-2": "LGPL-2.0-only",
    "lgpl-2+": "LGPL-2.0-or-later",
    "lgpl-2.0+": "LGPL-2.0-or-later",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-2.1+": "LGPL-2.1-or-later",
    "lgpl-3": "LGPL-3.0-only",
    "lgpl-3+": "LGPL-3.0-or-later",
    "lgpl-3.0+": "LGPL-3.0-or-later",
    "lgplv2+": "LGPL-2.0-or-later",
    "lgplv2.1": "LGPL-2.1-only",
    "lgplv2.1+": "LGPL-2.1-or-later",
    "lgplv3+": "LGPL-3.0-or-later",
    "agpl-3": "AGPL-3.0-only",
    "agpl-3+": "AGPL-3.0-or-later",
    "gfdl-1.2": "GFDL-1.2-only",
    "gfdl-1.2+": "GFDL-1.2-or-later",
    "gfdl-1.3": "GFDL-1.3-only",
    "gfdl-1.3+": "GFDL-1.3-or-later",
    "gfdl-nis-1.2+": "GFDL-1.2-no-invariants-or-later",
    "gfdl-nis-1.3": "GFDL-1.3-no-invariants-only",
    "gfdl-nis-1.3+": "GFDL-1.3-no-invariants-or-later",
    "expat": "MIT",
    "mit/x11": "MIT",
    "x11": "X11",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "artistic": "Artistic-1.0-Perl",
    "artistic-2": "Artistic-2.0",
    "apache-2": "Apache-2.0",
    "apache-2.0": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "asl 2.0": "Apache-2.0",
    "mpl-1.1": "MPL-1.1",
    "mpl-2.0": "MPL-2.0",
    "zlib": "Zlib",
    "isc": "ISC",
    "psf": "PSF-2.0",
    "psf-2": "PSF-2.0",
    "python": "PSF-2.0",
    "python-2.0": "Python-2.0",
    "ofl-1.1": "OFL-1.1",
    "cc0": "CC0-1.0",
    "cc0-1.0": "CC0-1.0",
    "unlicense": "Unlicense",
    "wtfpl": "WTFPL",
    "openssl": "OpenSSL",
    "curl": "curl",
    "public-domain": "LicenseRef-public-domain",
    "public domain": "LicenseRef-public-domain",
}

# Trove classifiers (Python's "License ::" lines) that name one SPDX licence.
_CLASSIFIERS: dict[str, str] = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: BSD License": "BSD-3-Clause",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)": (
        "GPL-2.0-or-later"
    ),
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": (
        "GPL-3.0-or-later"
    ),
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": (
        "LGPL-2.0-or-later"
    ),
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": (
        "LGPL-3.0-or-later"
    ),
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: zlib/libpng License": "Zlib",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
_OPERATORS = {"and": "AND", "or": "OR", "with": "WITH", "&": "AND", "|": "OR", ",": "AND"}


def _outer_parens(expression: str) -> bool:
    """Whether the whole expression is one parenthesised group: ``(A OR B)``."""
    if not (expression.startswith("(") and expression.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(expression):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(expression) - 1:
            return False
    return True


def _spdx(expression: str) -> str | None:
    try:
        out: str = canonicalize_license_expression(expression)
    except (InvalidLicenseExpression, ValueError):
        return None
    while _outer_parens(out):
        out = out[1:-1].strip()
    return out


@lru_cache(maxsize=4096)
def normalize(declared: str) -> str:
    """An SPDX expression for ``declared`` where one parses; else ``declared`` stripped."""
    text = " ".join(declared.split())
    if not text:
        return ""
    alias = _ALIASES.get(text.lower())
    if alias:
        return alias
    # Token by token first: DEP-5 names (``GPL-2+`` would otherwise pass as the
    # deprecated ``GPL-2.0+`` form) and lower-case operators inside an expression.
    tokens = []
    for m in _TOKEN.finditer(text.replace(",", " , ")):
        tok = m.group(1)
        low = tok.lower()
        tokens.append(_OPERATORS.get(low) or _ALIASES.get(low) or tok)
    mapped = _spdx(" ".join(tokens).replace("( ", "(").replace(" )", ")"))
    if mapped is not None:
        return mapped
    direct = _spdx(text)
    return direct if direct is not None else text


@lru_cache(maxsize=4096)
def is_spdx(expression: str) -> bool:
    """True when ``expression`` is a valid SPDX licence expression."""
    return bool(expression) and _spdx(expression) is not None


def from_classifier(classifier: str) -> str | None:
    """The SPDX identifier a Python ``License ::`` trove classifier names, if exactly one."""
    return _CLASSIFIERS.get(classifier.strip())


def unique(values: list[str]) -> tuple[str, ...]:
    """Normalized, de-duplicated, in first-seen order; empty values dropped."""
    out: list[str] = []
    for v in values:
        n = normalize(v)
        if n and n not in out:
            out.append(n)
    return tuple(out)
