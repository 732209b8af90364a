"""The exception classes of qama_rs (created by the Rust binding, ``qama_rs._core``).

* :class:`QamaError` (a ``ValueError``): the base of every qama_rs error — bad shapes or values,
  ``k <= 0``, empty indexes, corrupt or foreign files. Messages name the argument.
* :class:`QamaTypeError` (a :class:`QamaError` and a ``TypeError``): wrong dtype, not an array, a
  non-contiguous or misaligned array, a wrong argument type. ``except TypeError`` keeps working.
* Allocation failures (a result or copy too large for memory) raise the builtin ``MemoryError``.

A panic inside the Rust core (a bug, never bad input) surfaces as ``RuntimeError``.
"""

from qama_rs._core import QamaError, QamaTypeError

__all__ = ["QamaError", "QamaTypeError"]
