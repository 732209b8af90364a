"""Saving and loading an :class:`~qama_rs.index.Index`: its stages' states and stored rows as file
sections (:mod:`qama_rs.index.fileformat`), and the rebuild of an index from them (in memory, or mapped)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from qama_rs import _core
from qama_rs.errors import QamaError
from qama_rs.index import fileformat, legacy
from qama_rs.index.ids import IdMap

if TYPE_CHECKING:
    from qama_rs.index.index import Index

__all__ = ["FORMAT", "load", "save"]

FORMAT = "qama-rs/factory-index"


def save(index: Index, path: str | os.PathLike[str]) -> None:
    """:meth:`Index.save`: the header (spec, stages' metadata, search defaults) and binary sections."""
    with index._lock:
        index._require_trained()
        sections: dict[str, np.ndarray] = dict(index._ids.state())
        stages = []
        for i, t in enumerate(index._pipe.transforms):
            meta, arrays = t.state()
            stages.append(meta)
            sections.update({f"t{i}.{k}": v for k, v in arrays.items()})
        codecs = []
        for role, codec, store in zip(("codec", "refine"), index._codecs(), index._stores, strict=False):
            meta, arrays = codec.state()
            codecs.append(meta)
            sections.update({f"{role}.{k}": v for k, v in arrays.items()})
            sections.update({f"{role}.rows.{k}": v for k, v in store.state().items()})
        if index._partition is not None:
            meta, arrays = index._partition.state()
            meta["nprobe"] = None if index.nprobe is None else int(index.nprobe)
            sections.update({f"ivf.{k}": v for k, v in arrays.items()})
        header = {
            "format": FORMAT,
            "ivf": meta if index._partition is not None else None,
            "spec": index._spec,
            "dims": index._dims,
            "ntotal": index.ntotal,
            "next_id": index._ids.next_id,
            "ids_identity": index._ids.identity,
            "transforms": stages,
            "codecs": codecs,
            "metadata": index.metadata,
            "k_factor": index.k_factor,
        }
        fileformat.write_index(path, header, sections)


def load(cls: type[Index], path: str | os.PathLike[str], mmap: bool = False, *, head: Any = None) -> Index:
    """:meth:`Index.load`: a file of :func:`save` (or an upgraded 0.1 file) as an index of class ``cls``."""
    name = os.fspath(path)
    header, sections = fileformat.read_index(path, mmap_mode=bool(mmap))
    if header.get("format") != FORMAT:
        raise QamaError(f"{name}: not a qama-rs factory index (format {header.get('format')!r})")
    if header["format_version"] == 1:
        header, sections = legacy.upgrade(header, sections, name)
    try:
        index = cls(int(header["dims"]), header["spec"], head=head)
        restore(index, header, sections, name)
    except QamaError:
        raise
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
        raise QamaError(f"{name}: corrupt qama-rs index ({type(err).__name__}: {err})") from None
    index.metadata = dict(header.get("metadata") or {})
    index._mapped = bool(mmap)
    index._header, index._sections = header, sections
    return index


def restore(index: Index, header: dict[str, Any], sections: dict[str, np.ndarray], name: str) -> None:
    """Fills a fresh ``index`` of the stored spec with the stored stages, rows and ids."""
    pipe = index._pipe
    if len(header["transforms"]) != len(pipe.transforms) or len(header["codecs"]) != len(index._codecs()):
        raise QamaError(f"{name}: the stored stages do not match the spec {header['spec']!r}")
    for i, (t, meta) in enumerate(zip(pipe.transforms, header["transforms"], strict=True)):
        t.restore(meta, prefixed(sections, f"t{i}."))
    learned = index._learned_transform()
    if learned is not None:
        learned.learned_quantizer()  # the head must be loadable for queries
    n = int(header["ntotal"])
    if index._partition is not None:
        if not header.get("ivf"):
            raise QamaError(f"{name}: corrupt qama-rs index (a partitioned spec without its partition)")
        index._partition.restore(header["ivf"], prefixed(sections, "ivf."), name)
        stored = header["ivf"].get("nprobe")
        index.nprobe = None if stored is None else int(stored)
    index.k_factor = None if header.get("k_factor") is None else float(header["k_factor"])
    index._stores = []
    for role, codec, meta in zip(("codec", "refine"), index._codecs(), header["codecs"], strict=False):
        codec.restore(meta, prefixed(sections, f"{role}."))
        store = index._new_store(codec, role == "codec")
        rows = prefixed(sections, f"{role}.rows.")
        if header.get("legacy_row_major", {}).get(role) and codec.block_rows > 1 and n:
            # A 0.1 file kept these rows row-major; this codec scans them in blocks.
            rows["data"] = _core.to_blocks(rows["data"].reshape(n, codec.row_units))
        store.restore(rows, name)
        if store.rows != n:
            raise QamaError(f"{name}: corrupt qama-rs index ({store.rows} stored rows, ntotal = {n})")
        index._stores.append(store)
    index._ids = IdMap.restore(sections, n, int(header["next_id"]), bool(header.get("ids_identity")), name)


def prefixed(sections: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in sections.items() if k.startswith(prefix)}
