"""Reading qama-rs 0.1 factory-index files (format version 1): their codec tables sat in the JSON header
and their rows in per-codec sections; :func:`upgrade` maps them onto version 2's names, so an old file
loads (and saves as version 2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from qama_rs.errors import QamaError

__all__ = ["upgrade"]


def _rows(arrays: dict[str, np.ndarray], meta: dict[str, Any], name: str) -> tuple[np.ndarray, bool]:
    """``(data, row_major)``: a codec's stored rows as version 2 keeps them, and whether they are still
    row-major (per-dimension codes of at most 4 bits were saved in the block layout already)."""
    if "vectors" in arrays:  # Flat / Flat16
        vectors = arrays["vectors"]
        data = vectors.view(np.uint16) if vectors.dtype == np.float16 else vectors
        return np.ascontiguousarray(data).reshape(-1), True
    if "blocks" in arrays:  # per-dimension codes, block layout
        return arrays["blocks"], False
    if "codes" in arrays:  # thermometer words, per-dimension rows, byte-LUT rows
        return np.ascontiguousarray(arrays["codes"]).reshape(-1), True
    raise QamaError(f"{name}: corrupt qama-rs 0.1 index (a codec without stored rows: {sorted(arrays)})")


def upgrade(header: dict[str, Any], sections: dict[str, np.ndarray], name: str) -> tuple[dict, dict]:
    """Version 1 ``(header, sections)`` as version 2's."""
    n = int(header["ntotal"])
    out = {k: v for k, v in sections.items() if not k.startswith(("codec.", "refine."))}
    row_major: dict[str, bool] = {}
    for role, meta in zip(("codec", "refine"), header["codecs"], strict=False):
        arrays = {k[len(role) + 1 :]: v for k, v in sections.items() if k.startswith(role + ".")}
        data, row_major[role] = _rows(arrays, meta, name)
        out[f"{role}.rows.data"] = data
        out[f"{role}.rows.lists"] = np.array([[0, n]], dtype=np.int64)
        if "row_scale" in arrays:
            out[f"{role}.rows.scale"] = arrays["row_scale"]
        for key in ("recon", "shift"):
            if key in arrays:
                out[f"{role}.{key}"] = arrays[key]
    ids = sections["ids"]
    header = {
        **header,
        "format_version": 2,
        "ids_identity": bool(np.array_equal(ids, np.arange(n))),
        "legacy_row_major": row_major,
    }
    return header, out
