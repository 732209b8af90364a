"""The resumable-load journal: which batches of a load Milvus has already committed.

A load upserts rows in batches of ``batch_size``; after each batch is committed, a small JSON file is
rewritten atomically with the number of batches done. A re-run of the same load reads it and sends only
the rest; since rows are upserted by id, re-sending a batch (after a crash between the commit and the
journal write) never duplicates an id. The journal names

* the collection and its creation token (kept in the collection description): a dropped and re-created
  collection starts from batch 0;
* a SHA-256 of the data (ids, codes, rescoring codes, batch size): a different load starts from batch 0.

An unreadable or foreign journal is ignored (the load starts over), never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from qama_rs.engine import atomic_write

__all__ = ["LoadJournal", "data_fingerprint", "journal_path"]

FORMAT = "qama-rs/milvus/load"


def journal_path(checkpoint: Any, uri: str, collection: str, local: bool) -> Path | None:
    """Where the journal of a load lives: ``checkpoint`` itself, None for no journal, or for ``"auto"``
    beside a milvus-lite database (``<db>.<collection>.load.json``; none for a server)."""
    if checkpoint is None:
        return None
    if isinstance(checkpoint, str) and checkpoint == "auto":
        if not local:
            return None
        db = Path(uri)
        return db.with_name(f"{db.name}.{collection}.load.json")
    return Path(os.fspath(checkpoint))


def data_fingerprint(ids: np.ndarray, codes: np.ndarray, packed: np.ndarray | None, batch_size: int) -> str:
    """SHA-256 of what a load sends, batching included (another batch size makes other batches)."""
    digest = hashlib.sha256(f"{batch_size}:{codes.shape}".encode())
    digest.update(ids.tobytes())
    digest.update(codes.tobytes())
    if packed is not None:
        digest.update(packed.tobytes())
    return digest.hexdigest()


class LoadJournal:
    """The journal of one load into ``collection`` (creation ``token``) of data ``fingerprint``; with
    ``path`` None it records nothing and every load starts at batch 0."""

    def __init__(self, path: Path | None, collection: str, token: str | None, fingerprint: str) -> None:
        self.path = path
        self._key = {"collection": collection, "token": token, "fingerprint": fingerprint}

    def committed(self) -> int:
        """Batches of this load already committed (0 without a matching journal)."""
        if self.path is None or not self.path.exists():
            return 0
        try:
            state = json.loads(self.path.read_text())
            if state.get("format") != FORMAT or any(state.get(k) != v for k, v in self._key.items()):
                return 0
            return max(0, int(state.get("batches_committed", 0)))
        except (OSError, ValueError, TypeError, AttributeError):
            return 0

    def record(self, committed: int, batches: int) -> None:
        """Notes that the first ``committed`` of ``batches`` batches are in Milvus."""
        if self.path is None:
            return
        state = {"format": FORMAT, **self._key, "batches_committed": committed, "batches": batches}
        atomic_write(self.path, lambda f: f.write(json.dumps(state).encode()))
