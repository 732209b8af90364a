"""What every codec of an index provides: training, encoding rows into its storage layout, turning float
queries into what its engine codec reads, and its state for a file.

A codec adapter owns no stored rows (the index's :class:`~qama_rs.index.storage.ListStore` does); it says
how rows are stored (``dtype``, ``row_units``, ``block_rows``, ``scaled``) and gives the Rust codec
(``engine()``: a ``_core.HammingCodec``, ``TableCodec`` or ``FloatCodec``) that scans them. Every engine
codec answers ``search`` / ``search_lists`` / ``score`` / ``rescore`` with float32 scores, higher is
better (Hamming: ``-distance``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qama_rs.errors import QamaError

__all__ = ["Codec", "split_state"]


class Codec:
    """Base adapter; subclasses fill in the storage description and the hooks."""

    #: ``"flat"``, ``"thermo"`` or ``"table"``.
    kind = "codec"
    #: ``"ip"`` (inner product or its estimate) or ``"hamming"`` (``-distance``).
    metric = "ip"
    #: True when training learns nothing (it only records the width).
    training_free = False
    #: Whether codes can hold residuals to a partition's centroid (the query stays one table for every
    #: list: ``<q, c + r> = <q, c> + <q, r>``); not for symmetric codes, whose query is a code itself.
    residual_capable = True
    #: Whether a partitioned index codes residuals by default (chosen per family by measurement).
    residual = False

    def __init__(self, label: str) -> None:
        self.label = label
        self.dims: int | None = None  # input columns
        self.trained = False
        self._engines: dict[Any, Any] = {}

    # ---------------------------------------------------------------------------------- storage
    #: Element type of stored rows.
    dtype: Any = np.uint8
    #: Rows per block of the storage layout (1 row-major, 32 the block layout).
    block_rows = 1
    #: Whether rows carry a float32 factor each.
    scaled = False

    @property
    def row_units(self) -> int:
        raise NotImplementedError

    @property
    def bytes_per_vector(self) -> int:
        """Stored bytes per vector: the row (padding included) plus its factor."""
        return self.row_units * np.dtype(self.dtype).itemsize + (4 if self.scaled else 0)

    # ---------------------------------------------------------------------------------- training
    def train(self, x: np.ndarray) -> None:
        self.dims = x.shape[1]
        try:
            self._train(x)
        except QamaError:
            raise
        except (ValueError, TypeError) as err:
            raise QamaError(f"training codec {self.label!r}: {err}") from None
        self._engines = {}
        self.trained = True

    def _train(self, x: np.ndarray) -> None:
        pass

    # -------------------------------------------------------------------------------- encoding
    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(rows (n, row_units) of dtype, factors float32 (n,) or None)`` of float rows ``x``."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ search
    def engine(self, dims: int | None = None) -> Any:
        """The Rust codec scanning the stored rows (for the Matryoshka prefix ``dims`` where supported)."""
        if dims not in self._engines:
            self._engines[dims] = self._engine(dims)
        return self._engines[dims]

    def _engine(self, dims: int | None) -> Any:
        raise NotImplementedError

    def queries(self, q: np.ndarray, dims: int | None = None) -> np.ndarray:
        """What the engine reads for float queries ``q`` (codes, prepared floats, or byte tables)."""
        raise NotImplementedError

    def prefix_dims(self) -> int | None:
        """Coded dimensions a ``dims=m`` prefix counts in, or None when the codec has no prefix search."""
        return None

    # ------------------------------------------------------------------------------- persistence
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(JSON-ready metadata, arrays)``: everything :meth:`restore` needs (not the stored rows)."""
        raise NotImplementedError

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


def split_state(state: dict[str, Any], prefix: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A codec object's ``to_state()`` dict split into JSON-ready values and NumPy arrays (the arrays go
    to binary file sections; their keys are listed in the metadata under ``"arrays"``)."""
    meta: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            arrays[prefix + key] = value
        else:
            meta[key] = value
    meta["arrays"] = sorted(arrays)
    return meta, arrays


def join_state(meta: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str = "") -> dict[str, Any]:
    """Inverse of :func:`split_state`."""
    out = {k: v for k, v in meta.items() if k != "arrays"}
    for key in meta.get("arrays", []):
        if key not in arrays:
            raise QamaError(f"corrupt qama-rs index (codec state lacks array {key!r})")
        out[key[len(prefix) :]] = arrays[key]
    return out
