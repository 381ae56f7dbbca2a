"""Judge instruction templates: versioned text files, shipped in the package or given by the user.

A template file starts with ``key: value`` header lines (``version``, ``protocol``,
``max_tokens``), then a ``=== system ===`` section (optional) and a ``=== user ===`` section.
The sections are :class:`string.Template` texts: ``${name}`` is filled in per request (a literal
``$`` is written ``$$``). The placeholders each protocol fills are listed in
:data:`PLACEHOLDERS`; a template that uses another one is refused.

A template's ``version`` is its header version plus the first 12 hex digits of the SHA-256 of its
bytes (``1+3f2a...``), so editing a template, or substituting the paper's own prompt text
(config ``judge.templates.<protocol>``, ``divtrace judge --template-dir``), changes the version
and therefore every cached request's key.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from divtrace.errors import UsageError

#: Placeholders each protocol fills (:mod:`divtrace.judge.protocols`).
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "reference_ranking": frozenset({"source", "answer_1", "answer_2", "doc_type"}),
    "base_pairwise": frozenset({"source", "answer_a", "answer_b"}),
    "wb_score": frozenset({"source", "answer", "checklist"}),
}

_SECTION = re.compile(r"^=== (system|user) ===\s*$", re.MULTILINE)


@dataclass(frozen=True)
class JudgeTemplate:
    """One protocol's instructions: an optional system message and the user message."""

    protocol: str
    version: str
    max_tokens: int
    system: string.Template | None
    user: string.Template
    origin: str

    def messages(self, **values: str) -> list[dict[str, str]]:
        """The chat messages of one request, the placeholders filled with ``values``."""
        out: list[dict[str, str]] = []
        if self.system is not None:
            out.append({"role": "system", "content": self.system.substitute(values)})
        out.append({"role": "user", "content": self.user.substitute(values)})
        return out


def parse_template(text: str, origin: str, protocol: str | None = None) -> JudgeTemplate:
    """Read a template's text; ``protocol`` (if given) must be the one the header names."""
    header_text, *_ = _SECTION.split(text, maxsplit=1)
    header: dict[str, str] = {}
    for line in header_text.splitlines():
        if line.strip():
            key, sep, value = line.partition(":")
            if not sep:
                raise UsageError(f"judge template {origin}: bad header line {line!r}")
            header[key.strip()] = value.strip()
    for key in ("version", "protocol", "max_tokens"):
        if key not in header:
            raise UsageError(f"judge template {origin}: header lacks {key!r}")
    name = header["protocol"]
    if name not in PLACEHOLDERS:
        raise UsageError(f"judge template {origin}: unknown protocol {name!r}")
    if protocol is not None and name != protocol:
        raise UsageError(f"judge template {origin}: is for {name!r}, not {protocol!r}")
    try:
        max_tokens = int(header["max_tokens"])
    except ValueError:
        raise UsageError(f"judge template {origin}: max_tokens must be an integer") from None
    sections: dict[str, str] = {}
    matches = list(_SECTION.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        if match.group(1) in sections:
            raise UsageError(f"judge template {origin}: two {match.group(1)!r} sections")
        sections[match.group(1)] = text[match.end() : end].strip("\n")
    if "user" not in sections:
        raise UsageError(f"judge template {origin}: no '=== user ===' section")
    templates = {k: string.Template(v) for k, v in sections.items()}
    for section, template in templates.items():
        if not template.is_valid():
            raise UsageError(f"judge template {origin}: bad '$' in the {section} section")
        unknown = set(template.get_identifiers()) - PLACEHOLDERS[name]
        if unknown:
            raise UsageError(
                f"judge template {origin}: unknown placeholder(s) {sorted(unknown)} "
                f"(the {name} protocol fills {sorted(PLACEHOLDERS[name])})"
            )
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return JudgeTemplate(
        protocol=name,
        version=f"{header['version']}+{digest}",
        max_tokens=max_tokens,
        system=templates.get("system"),
        user=templates["user"],
        origin=origin,
    )


def load_template(protocol: str, path: str | Path | None = None) -> JudgeTemplate:
    """The template of ``protocol``: the file at ``path``, else the package's own."""
    if protocol not in PLACEHOLDERS:
        raise UsageError(f"unknown judge protocol {protocol!r} (known: {sorted(PLACEHOLDERS)})")
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise UsageError(f"judge template for {protocol}: no file {file}")
        return parse_template(file.read_text(encoding="utf-8"), str(file), protocol)
    resource = resources.files("divtrace.judge").joinpath("instructions", f"{protocol}.txt")
    return parse_template(resource.read_text(encoding="utf-8"), f"divtrace:{protocol}", protocol)
