"""The package's error classes as the index layer raises them (made by the binding; see
:mod:`qama_rs.errors`), re-exported so the layer has one import."""

from __future__ import annotations

from qama_rs.errors import QamaError, QamaTypeError

__all__ = ["QamaError", "QamaTypeError"]
