"""Loading retrieval benchmarks stored in BEIR layout.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/<split>.tsv`` (header ``query-id  corpus-id  score``). Documents are embedded as ``title + " " + text``,
stripped, exactly as MTEB joins them, so our NDCG@10 matches MTEB's published figures.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BeirDataset",
    "data_root",
    "dataset_files",
    "dataset_fingerprint",
    "load_beir",
    "resolve_dataset",
]

# Repository root = four levels above this file (python/qama_rs/data/beir.py); the shared data sits beside the repo.
_REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class BeirDataset:
    """One split of a BEIR-layout retrieval benchmark.

    ``query_ids``/``query_texts`` hold only the queries that have at least one judgment in ``split``;
    ``qrels[query_id][doc_id]`` is the graded relevance (0 = judged not relevant).
    """

    name: str
    path: Path
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    split: str = "test"
    doc_index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.doc_index:
            self.doc_index = {doc_id: i for i, doc_id in enumerate(self.doc_ids)}

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)


def data_root() -> Path:
    """The data root: ``$QAMA_DATA`` if set, else ``../shared/data`` relative to the repository root."""
    env = os.environ.get("QAMA_DATA")
    if env:
        return Path(env).expanduser()
    return (_REPO_ROOT.parent / "shared" / "data").resolve()


def resolve_dataset(name_or_path: str | os.PathLike[str]) -> Path:
    """Map a dataset name (``"scifact"`` → ``data_root()/beir/scifact``) or a folder path to a BEIR folder.

    Raises ``FileNotFoundError`` naming both places looked at when neither exists.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a str or path, got {type(name_or_path).__name__}")
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return candidate.resolve()
    named = data_root() / "beir" / str(name_or_path)
    if named.is_dir():
        return named.resolve()
    raise FileNotFoundError(
        f"dataset {str(name_or_path)!r} not found: neither a folder at {candidate} nor {named} "
        f"(set QAMA_DATA to the folder holding beir/)"
    )


def dataset_files(path: Path, split: str = "test") -> list[Path]:
    """The three files a split depends on, in a fixed order (used for cache keys)."""
    return [path / "corpus.jsonl", path / "queries.jsonl", path / "qrels" / f"{split}.tsv"]


def dataset_fingerprint(path: Path, split: str = "test") -> str:
    """sha256 over the corpus, queries and qrels files of a split (content, not timestamps)."""
    digest = hashlib.sha256()
    for file in dataset_files(path, split):
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_texts(file: str | os.PathLike[str], what: str = "document") -> tuple[list[str], list[str]]:
    """``(ids, texts)`` of a BEIR-style JSONL file (``_id``, ``text``, optional ``title``; a user's own
    ``corpus.jsonl`` or ``queries.jsonl``), texts joined as MTEB does. ``ValueError`` names the line of a
    malformed row, a duplicate id or an empty file; ``FileNotFoundError`` a missing one."""
    file = Path(file)
    return _joined_texts(_read_jsonl(file, ("_id", "text")), file, what)


def _joined_texts(rows: list[dict], file: Path, what: str) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for row in rows:
        row_id = str(row["_id"])
        if row_id in seen:
            raise ValueError(f"{file}: duplicate {what} id {row_id!r}")
        seen.add(row_id)
        title = row.get("title") or ""
        text = row["text"] or ""
        ids.append(row_id)
        texts.append((title + " " + text).strip() if title else text.strip())
    if not ids:
        raise ValueError(f"{file}: no {what}s in the file")
    return ids, texts


def _read_jsonl(file: Path, required: tuple[str, ...]) -> list[dict]:
    if not file.is_file():
        raise FileNotFoundError(f"missing BEIR file {file}")
    rows = []
    with open(file, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{file}:{line_no}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{file}:{line_no}: expected a JSON object, got {type(row).__name__}")
            missing = [key for key in required if key not in row]
            if missing:
                raise ValueError(f"{file}:{line_no}: missing field(s) {', '.join(missing)}")
            rows.append(row)
    return rows


def _read_qrels(file: Path) -> dict[str, dict[str, int]]:
    if not file.is_file():
        available = sorted(p.stem for p in file.parent.glob("*.tsv")) if file.parent.is_dir() else []
        raise FileNotFoundError(f"missing qrels file {file} (splits available: {available or 'none'})")
    qrels: dict[str, dict[str, int]] = {}
    with open(file, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for line_no, row in enumerate(reader, start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if line_no == 1 and row[0].strip().lower() in ("query-id", "query_id", "qid"):
                continue  # header
            if len(row) < 3:
                raise ValueError(f"{file}:{line_no}: expected 3 tab-separated columns, got {len(row)}")
            query_id, doc_id, score = row[0].strip(), row[1].strip(), row[2].strip()
            try:
                qrels.setdefault(query_id, {})[doc_id] = int(float(score))
            except ValueError:
                raise ValueError(f"{file}:{line_no}: relevance score {score!r} is not a number") from None
    return qrels


def load_beir(path: str | os.PathLike[str], split: str = "test") -> BeirDataset:
    """Load one split of a BEIR folder (or a dataset name understood by :func:`resolve_dataset`).

    Documents become ``(title + " " + text).strip()`` (just ``text.strip()`` without a title), in file order.
    Queries keep file order and are limited to those judged in ``split``. Raises ``FileNotFoundError`` for a
    missing folder/file and ``ValueError`` for malformed lines, duplicate ids or judgments of unknown queries
    (judged documents absent from the corpus only warn).
    """
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string, got {split!r}")
    folder = resolve_dataset(path)
    corpus = _read_jsonl(folder / "corpus.jsonl", ("_id", "text"))
    queries = _read_jsonl(folder / "queries.jsonl", ("_id", "text"))
    qrels = _read_qrels(folder / "qrels" / f"{split}.tsv")

    doc_ids, doc_texts = _joined_texts(corpus, folder / "corpus.jsonl", "document")

    query_text_by_id: dict[str, str] = {}
    for row in queries:
        query_id = str(row["_id"])
        if query_id in query_text_by_id:
            raise ValueError(f"{folder / 'queries.jsonl'}: duplicate query id {query_id!r}")
        query_text_by_id[query_id] = row["text"] or ""

    unknown_queries = sorted(set(qrels) - set(query_text_by_id))
    if unknown_queries:
        raise ValueError(
            f"qrels/{split}.tsv judges {len(unknown_queries)} query id(s) absent from queries.jsonl, "
            f"e.g. {unknown_queries[:3]}"
        )
    # Judged documents missing from the corpus are kept in qrels (they count in the ideal DCG, as in MTEB)
    # but can never be retrieved, so say so.
    unknown_docs = sorted({d for judged in qrels.values() for d in judged} - set(doc_ids))
    if unknown_docs:
        warnings.warn(
            f"{folder}: qrels/{split}.tsv judges {len(unknown_docs)} document id(s) absent from corpus.jsonl, "
            f"e.g. {unknown_docs[:3]}; they stay in the ideal ranking",
            stacklevel=2,
        )

    query_ids = [qid for qid in query_text_by_id if qid in qrels]
    if not query_ids:
        raise ValueError(f"{folder}: no query has judgments in split {split!r}")
    return BeirDataset(
        name=folder.name,
        path=folder,
        doc_ids=doc_ids,
        doc_texts=doc_texts,
        query_ids=query_ids,
        query_texts=[query_text_by_id[qid] for qid in query_ids],
        qrels={qid: qrels[qid] for qid in query_ids},
        split=split,
    )
