"""Option types shared by the ``qama`` sub-commands (argparse reports a bad value under the option's name)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["BITS_CHOICES", "at_least_one", "parse_bits", "positive_int", "recall"]

#: What ``--bits`` takes.
BITS_CHOICES = ("1", "1.5", "2", "hybrid", "8", "16", "32")


def parse_bits(value: str | None) -> Any:
    """``--bits`` as `qama_rs.cli.methods.method_spec` takes it: ``None``, a number, or ``"hybrid"``."""
    if value is None or value == "hybrid":
        return value
    number = float(value)
    return int(number) if number.is_integer() else number


def positive_int(value: str) -> int:
    """An ``int >= 1`` (counts, sizes, ``--k``); argparse prints ``argument --k: must be ...`` otherwise."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}")
    return number


def _number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value!r}")
    return number


def recall(value: str) -> float:
    """A recall target in (0, 1] (``--target-recall``)."""
    number = _number(value)
    if not 0.0 < number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value!r}")
    return number


def at_least_one(value: str) -> float:
    """A number >= 1 (``--k-factor``)."""
    number = _number(value)
    if number < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number >= 1, got {value!r}")
    return number
