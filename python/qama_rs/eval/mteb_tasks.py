"""mteb retrieval tasks over local BEIR folders (no Hub access).

mteb's own tasks download from the Hugging Face Hub. :func:`beir_task` builds an ``AbsTaskRetrieval`` whose
``load_data`` reads ``corpus.jsonl``/``queries.jsonl``/``qrels/<split>.tsv`` from disk through
:func:`qama_rs.data.beir.load_beir`, so mteb's evaluator (and its ``ndcg_at_10``) runs fully offline on
``scifact``, ``dbpedia-5k`` or any user folder. The corpus keeps separate ``title`` and ``text`` columns:
mteb joins them itself, exactly as it does for its published numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from qama_rs.data.beir import dataset_fingerprint, load_beir, resolve_dataset

__all__ = ["beir_task"]


def _titles_and_bodies(path: Path, doc_ids: list[str]) -> tuple[list[str], list[str]]:
    """Raw ``title``/``text`` fields in ``doc_ids`` order (``load_beir`` has already validated the file)."""
    by_id: dict[str, tuple[str, str]] = {}
    with open(path / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                by_id[str(row["_id"])] = (row.get("title") or "", row["text"] or "")
    return [by_id[d][0] for d in doc_ids], [by_id[d][1] for d in doc_ids]


def beir_task(name_or_path: str | os.PathLike[str], split: str = "test"):
    """An mteb retrieval task for a local BEIR folder (or a dataset name under ``$QAMA_DATA/beir``).

    The task evaluates ``split`` only, reports ``ndcg_at_10`` as its main score, and never touches the
    network. Its ``dataset["revision"]`` is the sha256 of the split's files, so mteb result caches keyed on
    it cannot mix two versions of a folder.
    """
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    folder = resolve_dataset(name_or_path)
    loaded = load_beir(folder, split=split)
    metadata = TaskMetadata(
        name=f"qama-local-{folder.name}",
        dataset={"path": str(folder), "revision": dataset_fingerprint(folder, split)},
        description=f"Local BEIR folder {folder.name} ({split} split), loaded from disk by qama_rs.",
        reference=None,
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=[split],
        eval_langs=["eng-Latn"],
        main_score="ndcg_at_10",
        date=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators=None,
        dialect=None,
        sample_creation=None,
        bibtex_citation=None,
    )

    class LocalBeirRetrieval(AbsTaskRetrieval):
        """Retrieval task whose data comes from a local BEIR folder."""

        def load_data(self, num_proc=None, *, timer=None, **kwargs) -> None:
            if self.data_loaded:
                return
            titles, bodies = _titles_and_bodies(folder, loaded.doc_ids)
            corpus = Dataset.from_dict({"id": loaded.doc_ids, "title": titles, "text": bodies})
            queries = Dataset.from_dict({"id": loaded.query_ids, "text": loaded.query_texts})
            self.dataset = {
                "default": {
                    split: {
                        "corpus": corpus,
                        "queries": queries,
                        "relevant_docs": {q: dict(d) for q, d in loaded.qrels.items()},
                        "top_ranked": None,
                    }
                }
            }
            self.data_loaded = True

    LocalBeirRetrieval.metadata = metadata
    LocalBeirRetrieval.__name__ = LocalBeirRetrieval.__qualname__ = f"LocalBeirRetrieval_{folder.name}"
    task = LocalBeirRetrieval()
    task.beir = loaded  # the loaded split, for callers that need ids or texts
    return task
