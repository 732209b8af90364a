"""The factory's spec strings: faiss-style comma-separated stages, parsed into :class:`Stage` objects.

Grammar (whitespace around tokens is ignored; names match case-insensitively)::

    spec   := stage ("," stage)*
    stage  := NAME [ "(" arg ("," arg)* ")" ]
    arg    := text without top-level commas (it may hold a nested stage: ``Rescore(LloydMax2,100)``)

A spec reads left to right: optional transforms (``Prefix96``, ``Hadamard``, ``Orthogonal``,
``QAMA(path)``), exactly one codec (``Flat``, ``Thermo2``, ``LloydMax2``, ...), and an optional
refinement (``Rescore(codec,k')`` or ``RFlat(k')``). The string a user gave is kept verbatim (it is
what :class:`~qama_rs.index.Index` saves and what tables print); parsing only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from qama_rs.errors import QamaError

__all__ = ["Stage", "parse_spec", "split_top_level"]


@dataclass(frozen=True)
class Stage:
    """One comma-separated stage: ``name`` as written and its raw ``args`` (strings, stripped)."""

    name: str
    args: tuple[str, ...] = ()
    text: str = ""

    @property
    def key(self) -> str:
        """The case-folded name the registries are keyed by."""
        return self.name.lower()


def split_top_level(text: str, what: str = "spec") -> list[str]:
    """Splits ``text`` at commas outside parentheses; unbalanced parentheses are a ``QamaError``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise QamaError(f"{what} {text!r}: unbalanced ')' at position {i}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise QamaError(f"{what} {text!r}: missing ')'")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _parse_stage(text: str, spec: str) -> Stage:
    if not text:
        raise QamaError(f"spec {spec!r}: empty stage (two commas in a row, or a leading/trailing comma)")
    if "(" not in text:
        if ")" in text:
            raise QamaError(f"spec {spec!r}: unbalanced ')' in stage {text!r}")
        return Stage(text, (), text)
    open_at = text.index("(")
    if not text.endswith(")"):
        raise QamaError(f"spec {spec!r}: stage {text!r} has text after its closing ')'")
    name = text[:open_at].strip()
    if not name:
        raise QamaError(f"spec {spec!r}: stage {text!r} has arguments but no name")
    inner = text[open_at + 1 : -1]
    args = tuple(split_top_level(inner, f"stage {text!r} of spec")) if inner.strip() else ()
    if any(a == "" for a in args):
        raise QamaError(f"spec {spec!r}: stage {text!r} has an empty argument")
    return Stage(name, args, text)


def parse_spec(spec: object) -> list[Stage]:
    """The stages of ``spec`` in order. Anything but a non-empty string is a ``QamaError``."""
    if not isinstance(spec, str):
        raise QamaError(
            f"spec must be a string such as 'LloydMax2' or 'Hadamard,Thermo2', got {type(spec).__name__}"
        )
    if not spec.strip():
        raise QamaError("spec is empty; give a codec such as 'Flat', 'Thermo2' or 'LloydMax2'")
    return [_parse_stage(part, spec) for part in split_top_level(spec.strip())]
