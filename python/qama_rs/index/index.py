"""The unified index: one object for every codec, built from a spec string.

``index = index_factory(384, "Hadamard,LloydMax2")``; ``index.train(docs)``; ``index.add(docs)``;
``D, I = index.search(queries, k)``. Conventions (faiss's, with one score direction for all codecs):

* queries are float vectors, always; the codec scores them asymmetrically where it can (per-dimension
  codecs, float rescoring) and through their own codes where it is symmetric (``Thermo*``, ``Sign``,
  ``Hybrid``);
* ``D`` is float32 and **higher is better** for every codec (inner products, or ``-Hamming distance``);
  ``I`` is int64; both ``(nq, k)``, best first, ties by insertion order; when fewer than ``k`` vectors
  are stored the rest of the row is ``I = -1``, ``D = -inf``;
* ``ids`` are int64 (default: consecutive from 0); :meth:`add` also takes string ids (document names),
  kept beside consecutive int64 ids and returned by :meth:`names_of`.

Files (:meth:`save`, :meth:`load`) use :mod:`qama_rs.index.fileformat`; ``Index.load(path, mmap=True)``
maps the codes instead of reading them.
"""

from __future__ import annotations

import operator
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from qama_rs.index import fileformat
from qama_rs.index._errors import QamaError, QamaTypeError
from qama_rs.index.codecs import Codec, PerDimCodec, ThermoCodec
from qama_rs.index.factory import Pipeline, build_pipeline
from qama_rs.index.store import Rows
from qama_rs.index.transforms import PrefixTransform, QamaTransform

__all__ = ["MAX_K", "MAX_RESULTS", "Index", "index_factory"]

FORMAT = "qama-rs/factory-index"
#: Largest ``k`` accepted (the engine's top-k takes 32-bit sizes).
MAX_K = 2**31 - 1
#: Largest ``nq * k`` a search may return (the padded result is allocated in full).
MAX_RESULTS = 1 << 28


def index_factory(dims: int, spec: str, *, head: Any = None) -> Index:
    """An empty :class:`Index` for ``dims``-dimensional float vectors, built from ``spec`` (see
    :mod:`qama_rs.index`). ``head``: an already loaded QAMA model for a ``QAMA(...)`` stage."""
    return Index(dims, spec, head=head)


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise QamaTypeError(f"{name} must be an int, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise QamaTypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not low <= value <= high:
        raise QamaError(f"{name} = {value}; must be in {low}..{high}")
    return value


def _float_rows(x: Any, name: str, dims: int, allow_empty: bool = True) -> np.ndarray:
    if isinstance(x, np.ndarray):
        array = x
    else:
        try:
            array = np.asarray(x)
        except (ValueError, TypeError) as err:
            raise QamaTypeError(f"{name} must be a 2-D float array: {err}") from None
    if array.dtype.kind != "f":
        raise QamaTypeError(f"{name} must be a floating-point array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise QamaError(f"{name} must be 2-D (n, {dims}), got shape {array.shape}")
    if array.shape[1] != dims:
        raise QamaError(f"{name} has {array.shape[1]} columns, the index takes {dims}")
    if not allow_empty and len(array) == 0:
        raise QamaError(f"{name} has no rows")
    array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise QamaError(f"{name} has a non-finite value (NaN or inf) at row {row}, column {col}")
    return array


class Index:
    """Stores vectors under one codec and searches them with float queries (see the module docs).

    ``Index(dims, spec)`` (or :func:`index_factory`). For compatibility, ``Index(quantizer)`` with a
    :class:`~qama_rs.engine.Quantizer` still builds the engine's symmetric Hamming index
    (:class:`qama_rs.engine.Index`), and :meth:`load` reads that class's files too.
    """

    def __new__(cls, *args: Any, **kwargs: Any):
        from qama_rs.engine.index import Index as HammingIndex
        from qama_rs.engine.quantizer import Quantizer

        one_arg = len(args) == 1 and "spec" not in kwargs and not isinstance(args[0], int | np.integer)
        if args and (isinstance(args[0], Quantizer) or one_arg):
            return HammingIndex(*args, **kwargs)  # raises its own clear error for a non-Quantizer
        return super().__new__(cls)

    def __init__(self, dims: int, spec: str, *, head: Any = None) -> None:
        self._dims = _check_int(dims, "dims", 1, 1 << 24)
        if not isinstance(spec, str):
            raise QamaTypeError(f"spec must be a string, got {type(spec).__name__}")
        self._spec = spec.strip()
        self._pipe: Pipeline = build_pipeline(self._spec, head)
        width = self._dims
        for t in self._pipe.transforms:
            width = t.out_dims(width)
        self._code_width = width
        self._ids = Rows(np.int64, ())
        self._names: list[str] | None = None
        self._next_id = 0
        self._mapped = False
        self._header: dict[str, Any] | None = None
        self._sections: dict[str, np.ndarray] | None = None
        #: JSON-ready notes saved with the index (the CLI records the embedding model and the source here).
        self.metadata: dict[str, Any] = {}
        # One lock for every call that reads or changes the stored rows: a search never sees a half-done
        # add or remove (codecs, ids and names change together). The kernels parallelize inside a call.
        self._lock = threading.RLock()
        if self.needs_training:
            return
        self._train_stages(None)

    # ---------------------------------------------------------------------------- description
    @property
    def spec(self) -> str:
        """The spec string exactly as given (round-trips through save/load)."""
        return self._spec

    @property
    def dims(self) -> int:
        """Columns of the vectors :meth:`add` and :meth:`search` take."""
        return self._dims

    d = dims  # faiss spelling

    @property
    def ntotal(self) -> int:
        return self._ids.n

    def __len__(self) -> int:
        return self._ids.n

    @property
    def codec(self) -> Codec:
        return self._pipe.codec

    @property
    def is_trained(self) -> bool:
        return all(t.trained for t in self._pipe.transforms) and self._pipe.codec.trained

    @property
    def needs_training(self) -> bool:
        codecs = [self._pipe.codec] + ([self._pipe.refine] if self._pipe.refine else [])
        heads = [t for t in self._pipe.transforms if isinstance(t, QamaTransform)]
        if any(t.recalibrates and t.scheme is not None for t in heads):
            return True  # the pretrained head's thresholds are refitted on the documents (train)
        return not all(c.training_free for c in codecs) and not (
            heads and all(isinstance(c, ThermoCodec) for c in codecs)
        )

    @property
    def bytes_per_vector(self) -> int:
        """Stored bytes per vector: the codec's codes (padding and per-vector factors included), plus the
        rescoring stage's. Ids are not counted."""
        self._require_trained()
        total = self._pipe.codec.bytes_per_vector
        if self._pipe.refine is not None:
            total += self._pipe.refine.bytes_per_vector
        return total

    @property
    def ids(self) -> np.ndarray:
        """Read-only ``int64 (ntotal,)`` ids in insertion order."""
        return self._ids.view

    @property
    def names(self) -> list[str] | None:
        """String ids (document names) in insertion order, when the index was given any."""
        return None if self._names is None else list(self._names)

    def __repr__(self) -> str:
        state = "" if self.is_trained else ", untrained"
        mapped = ", mmap" if self._mapped else ""
        return f"Index(dims={self._dims}, spec={self._spec!r}, ntotal={self.ntotal}{state}{mapped})"

    # ------------------------------------------------------------------------------- training
    def _train_unlocked(self, x: Any) -> None:
        """Fits the transforms and codecs on float rows ``x`` (documents only; nothing is stored)."""
        if self.ntotal:
            raise QamaError("the index already holds vectors; train an empty index")
        x = _float_rows(x, "x", self._dims, allow_empty=False)
        self._train_stages(x)

    def fit(self, x: Any) -> Index:
        """:meth:`train` on ``x``, returning the index (for chaining)."""
        self.train(x)
        return self

    def _train_stages(self, x: np.ndarray | None) -> None:
        width = self._dims
        for t in self._pipe.transforms:
            t.train(width)
            width = t.out_dims(width)
            if x is not None:
                t.calibrate(x)
                x = t.apply(x)
        for codec in self._codecs():
            learned = self._learned_transform()
            if isinstance(codec, ThermoCodec) and learned is not None:
                codec.quantizer = learned.learned_quantizer(x)
            if x is None:
                x = np.zeros((0, width), dtype=np.float32)
            try:
                codec.train(x)
            except QamaError:
                raise
            except (ValueError, TypeError) as err:
                raise QamaError(f"training codec {codec.label!r}: {err}") from None

    def _codecs(self) -> list[Codec]:
        return [self._pipe.codec] + ([self._pipe.refine] if self._pipe.refine is not None else [])

    def _learned_transform(self) -> QamaTransform | None:
        t = self._pipe.transforms[-1] if self._pipe.transforms else None
        return t if isinstance(t, QamaTransform) and t.scheme is not None else None

    def _require_trained(self) -> None:
        if not self.is_trained:
            raise QamaError(f"index {self._spec!r} is not trained; call train(x) on documents first")

    def _transform(self, x: np.ndarray) -> np.ndarray:
        for t in self._pipe.transforms:
            x = t.apply(x)
        return x

    # ------------------------------------------------------------------------------- contents
    def _add_unlocked(self, x: Any, ids: Any = None) -> None:
        """Encodes and stores float rows ``x`` ``(n, dims)``. ``ids``: unique int64 ids not yet in the index
        (default: consecutive after the largest so far), or a sequence of ``n`` distinct strings (document
        names; the int64 ids are then consecutive)."""
        self._require_trained()
        x = _float_rows(x, "x", self._dims)
        new_ids, names = self._new_ids(ids, len(x))
        if not len(x):
            return
        xt = self._transform(x)
        for codec in self._codecs():
            codec.add(xt)
        self._commit(new_ids, names)

    def _add_codes_unlocked(self, codes: Any, ids: Any = None) -> None:
        """Stores already encoded codes of a single-codec index (``Thermo*``: ``uint64 (n, words)``;
        per-dimension codecs: ``uint8`` codes, packed or one per dimension)."""
        self._require_trained()
        codec = self._pipe.codec
        if self._pipe.refine is not None or not isinstance(codec, ThermoCodec | PerDimCodec):
            raise QamaError(f"add_codes needs a single Thermo or per-dimension codec, not {self._spec!r}")
        if not isinstance(codes, np.ndarray):
            raise QamaTypeError(f"codes must be a NumPy array, got {type(codes).__name__}")
        new_ids, names = self._new_ids(ids, len(codes))
        codec.add_codes(codes)
        self._commit(new_ids, names)

    def _new_ids(self, ids: Any, m: int) -> tuple[np.ndarray, list[str] | None]:
        if ids is None:
            if self._names is not None and m:
                raise QamaError("ids: this index names its documents; give one string id per row")
            return np.arange(self._next_id, self._next_id + m, dtype=np.int64), None
        if isinstance(ids, str | bytes):
            raise QamaTypeError("ids must be a sequence (one id per row), not a single string")
        if isinstance(ids, Sequence) and m and all(isinstance(i, str) for i in ids):
            names = list(ids)
            if len(names) != m:
                raise QamaError(f"ids has {len(names)} entries for {m} rows")
            if self.ntotal and self._names is None:
                raise QamaError(
                    "ids: this index holds unnamed vectors; string ids must be given from the start"
                )
            known = set(self._names or ())
            if len(set(names)) != m or known.intersection(names):
                dup = next(n for i, n in enumerate(names) if n in known or n in names[:i])
                raise QamaError(f"ids: document id {dup!r} appears twice")
            return np.arange(self._next_id, self._next_id + m, dtype=np.int64), names
        if self._names is not None:
            raise QamaError("ids: this index names its documents; give string ids")
        array = np.asarray(ids)
        if array.dtype.kind not in "iu" or array.dtype == np.bool_:
            raise QamaTypeError(f"ids must be integers or strings, got dtype {array.dtype}")
        if array.shape != (m,):
            raise QamaError(f"ids must have shape ({m},), got {array.shape}")
        if array.dtype.kind == "u" and m and int(array.max()) > np.iinfo(np.int64).max:
            raise QamaError("ids must fit in int64")
        array = array.astype(np.int64)
        if m and int(array.min()) < 0:
            raise QamaError(f"ids must be non-negative (-1 marks a missing result), got {int(array.min())}")
        if len(np.unique(array)) != m:
            raise QamaError("ids contains duplicates")
        clash = np.isin(array, self._ids.view)
        if clash.any():
            raise QamaError(f"ids: id {int(array[np.argmax(clash)])} is already in the index")
        return array, None

    def _commit(self, new_ids: np.ndarray, names: list[str] | None) -> None:
        if names is not None:
            self._names = (self._names or []) + names
        self._ids.append(new_ids)
        if len(new_ids):
            self._next_id = max(self._next_id, int(new_ids.max()) + 1)

    def _remove_unlocked(self, ids: Any) -> int:
        """Removes the vectors with these int64 ids (or string names); unknown ids are ignored, as in
        faiss's ``remove_ids``. Returns how many were removed. Costs one pass over the stored codes."""
        if isinstance(ids, str):
            ids = [ids]
        values = list(ids) if isinstance(ids, Sequence) and not isinstance(ids, np.ndarray) else None
        if values and all(isinstance(v, str) for v in values):
            if self._names is None:
                return 0
            wanted = set(values)
            mask = np.array([n not in wanted for n in self._names], dtype=bool)
        else:
            array = np.asarray(ids)
            if array.size and (array.dtype.kind not in "iu" or array.dtype == np.bool_):
                raise QamaTypeError(f"ids must be integers or strings, got dtype {array.dtype}")
            mask = ~np.isin(self._ids.view, array.astype(np.int64).ravel())
        removed = int((~mask).sum())
        if removed:
            for codec in self._codecs():
                codec.keep(mask)
            self._ids.keep(mask)
            if self._names is not None:
                self._names = [n for n, keep in zip(self._names, mask.tolist(), strict=True) if keep]
        return removed

    def names_of(self, I: Any) -> np.ndarray:  # noqa: E741 - faiss's name for the id matrix
        """Document names (object array of str, ``""`` for ``-1``) of the ids in ``I`` (any shape)."""
        if self._names is None:
            raise QamaError("this index has no string ids; add vectors with ids=[...strings]")
        I = np.asarray(I, dtype=np.int64)  # noqa: E741
        names = np.array([*self._names, ""], dtype=object)
        order = np.argsort(self._ids.view, kind="stable")
        keys = self._ids.view[order]
        at = np.searchsorted(keys, I).clip(0, max(len(keys) - 1, 0))
        found = (keys[at] == I) if len(keys) else np.zeros(I.shape, dtype=bool)
        return np.where(found, names[order[at]] if len(keys) else "", "")

    # --------------------------------------------------------------------------------- search
    def _search_unlocked(self, xq: Any, k: int, dims: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(D float32, I int64)``, both ``(nq, k)``: the ``k`` best stored vectors for each float query
        (see the module docs). ``dims=m`` scores the Matryoshka prefix of the first ``m`` coded dimensions of
        the same codes (thermometer codes, per-dimension codes and Flat; not after a rotation or a head)."""
        k = _check_int(k, "k", 1, MAX_K)
        self._require_trained()
        xq = _float_rows(xq, "xq", self._dims)
        nq = len(xq)
        if nq * k > MAX_RESULTS:
            raise QamaError(
                f"k = {k} for {nq} queries asks for {nq * k} results; at most {MAX_RESULTS} per call (search in batches)"
            )
        prefix = self._check_dims(dims)
        D = np.full((nq, k), -np.inf, dtype=np.float32)
        I = np.full((nq, k), -1, dtype=np.int64)  # noqa: E741
        n = self.ntotal
        if nq == 0 or n == 0:
            return D, I
        q = self._transform(xq)
        pipe = self._pipe
        if pipe.refine is None:
            scores, rows = pipe.codec.search(q, min(k, n), prefix)
        else:
            _, candidates = pipe.codec.search(q, min(pipe.k_prime, n), prefix)
            scores, rows = pipe.refine.rescore(q, candidates, min(k, candidates.shape[1]))
        got = rows.shape[1]
        D[:, :got] = scores
        I[:, :got] = self._ids.view[rows]
        return D, I

    def train(self, x: Any) -> None:
        """Fits the transforms and codecs on float rows ``x`` (documents only; nothing is stored)."""
        with self._lock:
            self._train_unlocked(x)

    def add(self, x: Any, ids: Any = None) -> None:
        """Encodes and stores float rows ``x`` ``(n, dims)``. ``ids``: unique non-negative int64 ids not yet
        in the index (default: consecutive after the largest so far), or a sequence of ``n`` distinct strings
        (document names; the int64 ids are then consecutive)."""
        with self._lock:
            self._add_unlocked(x, ids)

    def add_codes(self, codes: Any, ids: Any = None) -> None:
        """Stores already encoded codes of a single-codec index (``Thermo*``: ``uint64 (n, words)``;
        per-dimension codecs: ``uint8`` codes, packed or one per dimension)."""
        with self._lock:
            self._add_codes_unlocked(codes, ids)

    def remove(self, ids: Any) -> int:
        """Removes the vectors with these int64 ids (or string names); unknown ids are ignored, as in
        faiss's ``remove_ids``. Returns how many were removed. Costs one pass over the stored codes."""
        with self._lock:
            return self._remove_unlocked(ids)

    def search(self, xq: Any, k: int, dims: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(D float32, I int64)``, both ``(nq, k)``: the ``k`` best stored vectors for each float query
        (see the module docs). ``dims=m`` scores the Matryoshka prefix of the first ``m`` coded dimensions
        of the same codes (thermometer, per-dimension and Flat codecs, not after a rotation or a head; with a
        refinement stage the prefix applies to the first stage)."""
        with self._lock:
            return self._search_unlocked(xq, k, dims)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the index atomically (:mod:`qama_rs.index.fileformat`): a failed save leaves an existing
        file untouched. The spec is stored verbatim; a ``QAMA(path)`` head is stored by its path."""
        with self._lock:
            self._save_unlocked(path)

    def _check_dims(self, dims: Any) -> int | None:
        if dims is None:
            return None
        m = _check_int(dims, "dims", 1, self._code_width)
        if m == self._code_width:
            return None
        if (
            any(not isinstance(t, PrefixTransform) for t in self._pipe.transforms)
            or not self._pipe.codec.supports_prefix()
        ):
            raise QamaError(
                f"dims: {self._spec!r} has no Matryoshka prefix search (a rotation or head mixes dimensions, "
                "or the codec scores whole vectors); build a Prefix{m} index instead"
            )
        codec = self._pipe.codec
        if isinstance(codec, ThermoCodec) and m > codec.quantizer.dims:
            raise QamaError(f"dims = {m}; this codec has {codec.quantizer.dims} quantized values")
        return m

    # ---------------------------------------------------------------------------- persistence
    def _save_unlocked(self, path: str | os.PathLike[str]) -> None:
        """Writes the index atomically (:mod:`qama_rs.index.fileformat`): a failed save leaves an existing
        file untouched. The spec is stored verbatim; a ``QAMA(path)`` head is stored by its path."""
        self._require_trained()
        sections: dict[str, np.ndarray] = {"ids": self._ids.view}
        stages = []
        for i, t in enumerate(self._pipe.transforms):
            meta, arrays = t.state()
            stages.append(meta)
            sections.update({f"t{i}.{k}": v for k, v in arrays.items()})
        codecs = []
        for role, codec in zip(("codec", "refine"), self._codecs(), strict=False):
            meta, arrays = codec.state()
            codecs.append(meta)
            sections.update({f"{role}.{k}": v for k, v in arrays.items()})
        if self._names is not None:
            encoded = [n.encode("utf-8") for n in self._names]
            sections["names.offsets"] = np.concatenate(
                [[0], np.cumsum([len(b) for b in encoded], dtype=np.int64)]
            ).astype(np.int64)
            sections["names.bytes"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        header = {
            "format": FORMAT,
            "spec": self._spec,
            "dims": self._dims,
            "ntotal": self.ntotal,
            "next_id": self._next_id,
            "transforms": stages,
            "codecs": codecs,
            "metadata": self.metadata,
        }
        fileformat.write_index(path, header, sections)

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = False, *, head: Any = None) -> Index:
        """Reads a file written by :meth:`save`. ``mmap=True`` maps it instead: codes, ids and float vectors
        are served from the page cache as they are touched (section checksums are then checked only by
        :meth:`verify`). A foreign, truncated, corrupt or newer file raises :class:`QamaError`."""
        name = os.fspath(path)
        legacy = _engine_file_class(path)
        if legacy is not None:
            return legacy.load(path)
        header, sections = fileformat.read_index(path, mmap_mode=bool(mmap))
        if header.get("format") != FORMAT:
            raise QamaError(f"{name}: not a qama-rs factory index (format {header.get('format')!r})")
        try:
            index = cls(int(header["dims"]), header["spec"], head=head)
            pipe = index._pipe
            if len(header["transforms"]) != len(pipe.transforms) or len(header["codecs"]) != len(
                index._codecs()
            ):
                raise QamaError(f"{name}: the stored stages do not match the spec {header['spec']!r}")
            for i, (t, meta) in enumerate(zip(pipe.transforms, header["transforms"], strict=True)):
                t.restore(meta, _prefixed(sections, f"t{i}."))
            if index._learned_transform() is not None:
                index._learned_transform().learned_quantizer()  # the head must be loadable for queries
            for role, codec, meta in zip(
                ("codec", "refine"), index._codecs(), header["codecs"], strict=False
            ):
                codec.restore(meta, _prefixed(sections, f"{role}."))
            ids = sections["ids"]
            n = int(header["ntotal"])
            if ids.shape != (n,) or any(c.ntotal != n for c in index._codecs()):
                raise QamaError(f"{name}: corrupt qama-rs index (stored rows disagree with ntotal = {n})")
            index._ids = Rows(np.int64, ())
            index._ids.attach(ids)
            index._next_id = int(header["next_id"])
            if "names.offsets" in sections:
                offsets = sections["names.offsets"]
                blob = sections["names.bytes"].tobytes()
                if offsets.shape != (n + 1,):
                    raise QamaError(f"{name}: corrupt qama-rs index (names section)")
                index._names = [
                    blob[a:b].decode("utf-8")
                    for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
                ]
        except QamaError:
            raise
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
            raise QamaError(f"{name}: corrupt qama-rs index ({type(err).__name__}: {err})") from None
        index.metadata = dict(header.get("metadata") or {})
        index._mapped = bool(mmap)
        index._header, index._sections = header, sections
        return index

    def verify(self) -> None:
        """Checks a loaded index's sections against their stored checksums (reads every byte)."""
        if self._header is None or self._sections is None:
            raise QamaError("verify() checks an index loaded from a file; this one was built in memory")
        fileformat.verify_sections(self._header, self._sections, self._spec)


def _engine_file_class(path: str | os.PathLike[str]):
    """The engine class whose file format ``path`` has (by its magic), or None."""
    from qama_rs.engine import asym
    from qama_rs.engine import index as hamming

    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError:
        return None
    return {hamming.MAGIC: hamming.Index, asym.MAGIC: asym.AsymmetricIndex}.get(magic)


def _prefixed(sections: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in sections.items() if k.startswith(prefix)}
