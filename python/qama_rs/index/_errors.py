"""The package's error classes, as the index layer raises them.

``qama_rs.errors`` (built by the binding) owns :class:`QamaError`; this module only re-exports it so
the index layer has one import. Until that module exists (a partial build) a local stand-in with the
same contract keeps the layer importable.
"""

from __future__ import annotations

try:
    from qama_rs.errors import QamaError, QamaTypeError
except ImportError:  # pragma: no cover - only before qama_rs.errors lands

    class QamaError(ValueError):  # type: ignore[no-redef]
        """Bad input or a corrupt file: the one base class of qama-rs errors."""

    class QamaTypeError(QamaError, TypeError):  # type: ignore[no-redef]
        """Wrong dtype or type of an argument."""


__all__ = ["QamaError", "QamaTypeError"]
