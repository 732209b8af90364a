"""The exception classes of qama_rs (created by the Rust binding, ``qama_rs._core``), and its warning.

* :class:`QamaError` (a ``ValueError``): the base of every qama_rs error — bad shapes or values,
  ``k <= 0``, empty indexes, corrupt or foreign files. Messages name the argument.
* :class:`QamaTypeError` (a :class:`QamaError` and a ``TypeError``): wrong dtype, not an array, a
  non-contiguous or misaligned array, a wrong argument type. ``except TypeError`` keeps working.
* Allocation failures (a result or copy too large for memory) raise the builtin ``MemoryError``.
* :class:`QamaWarning` (a ``UserWarning``): input that is accepted but degrades the result without
  an error, e.g. training data with a constant column, whose codes then carry no information.

A panic inside the Rust core (a bug, never bad input) surfaces as ``RuntimeError``.
"""

from qama_rs._core import QamaError, QamaTypeError


class QamaWarning(UserWarning):
    """Accepted input that makes a result worse than the caller likely expects (the message says how)."""


__all__ = ["QamaError", "QamaTypeError", "QamaWarning"]
