"""Symmetric qama-rs codes in Milvus: one collection of binary codes, searched by Hamming distance,
with optional rescoring of the returned candidates back in qama-rs (compact codes scored
asymmetrically, or float32 vectors).

Install with ``pip install "qama-rs[milvus]"`` (pymilvus 2.5.x and milvus-lite 2.5.1: milvus-lite 3.x
rejects binary vectors; milvus-lite imports ``pkg_resources``, hence ``setuptools<81``).

Every symmetric qama-rs code is a binary vector whose Hamming distance is the engine's distance:
1-bit, thermometer 1.5/2-bit, hybrid and learned QAMA codes (a :class:`qama_rs.Quantizer`, or a
:class:`qama_rs.Index` over ``Sign``, ``Thermo*``, ``Hybrid``, ``ThermoLloydMax{b}`` after any transform),
and the training-free ``binary`` / ``binary_median`` / ``gray_2bit`` methods (:mod:`.codec`). A
collection holds

* ``id`` — ``INT64`` primary key (the ids of the in-process index);
* ``code`` — ``BINARY_VECTOR`` of ``8 * ceil(bits / 8)`` dimensions (Milvus needs a multiple of 8;
  the padding bits are zero in documents and queries alike, so distances are unchanged), metric
  ``HAMMING``;
* ``rescore`` — optional ``VARCHAR``: the document's compact code for rescoring (the packed rows of a
  one-codec index such as ``LloydMax2``, base64), for rescoring from Milvus alone.

Usage::

    from qama_rs import Quantizer, index_factory
    from qama_rs.integrations.milvus import MilvusIndex

    q = Quantizer.fit(docs, "2bit")
    rescorer = index_factory(384, "LloydMax2")              # or "Flat"; Index.load(path, mmap=True)
    rescorer.train(docs)
    rescorer.add(docs, ids)                                 # the same ids as the collection
    with MilvusIndex(q, "codes.db", "scifact") as store:    # milvus-lite file; or "http://host:19530"
        store.add(docs, ids)                                # batched columnar upserts, tqdm bar
        D, I = store.search(queries, 10)                    # Hamming (int32 D, int64 I), like faiss
        D, I = store.search(queries, 10, k_prime=100, rescorer=rescorer)  # two-stage, higher is better

Loading is idempotent and resumable (:mod:`.checkpoint`): rows are *upserted* by id in batches, so
re-running a load never duplicates an id, and a journal (a small JSON file, beside a milvus-lite database
by default) records the batches already committed, so a re-run after a failure sends only the rest.
The journal names the collection's creation token (kept in the collection description) and a SHA-256
of the data being loaded; a dropped collection or different data starts from batch 0.

Search is exact with ``BIN_FLAT`` (the only binary index milvus-lite offers), and equals the in-process
Hamming top-k (:func:`qama_rs.search`, or a ``Thermo*`` :class:`qama_rs.Index` with ``D = -distance``)
including ties: Milvus breaks ties arbitrarily, so each query asks for more hits than ``k`` until the last
one is farther than the ``k``-th (at most 16,384, Milvus's top-k limit), then orders hits by (distance,
id). That is the in-process order whenever ids ascend in insertion order (the default ids). Rescoring
(:mod:`.rescore`) searches a :class:`qama_rs.Index` holding the same ids among each query's candidates
(``Index.search(q, k, allowed=candidates)``).

Scaling out (Milvus standalone or cluster; the same code, another ``uri``)
-----------------------------------------------------------------------------
* Start a standalone server (Milvus 2.5, one machine): the Milvus guide "Run Milvus in Docker"
  ships ``standalone_embed.sh``; ``bash standalone_embed.sh start`` runs one container
  (``milvusdb/milvus:v2.5.x``, embedded etcd, local storage) listening on port 19530. With etcd
  and MinIO as separate services use its docker-compose file; a cluster is deployed with Milvus
  Operator or the Helm chart. Then ``MilvusIndex(q, "http://host:19530", token="root:Milvus")``:
  the same code as with a ``.db`` file (tested here against milvus-lite only).
* Index types for large collections: ``BIN_FLAT`` (exact; every query reads every code) and
  ``BIN_IVF_FLAT`` (``index_type="BIN_IVF_FLAT", index_params={"nlist": 4 * sqrt(n)}``, searched
  with ``search_params={"nprobe": 16...128}``: approximate, recall set by ``nprobe``; rescoring
  ``k_prime`` candidates in qama-rs recovers part of what the coarse step loses, and the exact tie
  order no longer applies). Milvus 2.5 lists only these two for ``BINARY_VECTOR`` — its ``HNSW``
  takes float vectors — so a graph index over binary codes needs a Milvus version that lists one
  for binary vectors (check the server's index documentation before relying on it). milvus-lite
  accepts ``BIN_FLAT`` only. For 100M+ codes: ``BIN_IVF_FLAT``, several shards, several query
  nodes.
* Memory (query nodes hold loaded segments in RAM; estimates from the stored field sizes, not
  measured on a cluster): per vector the code, plus 8 B id, plus 16 B of Milvus's own per-row
  fields (row id and timestamp), plus ``4 * ceil(b / 3)`` B for an optional ``rescore`` field of
  ``b`` bytes. ``BIN_IVF_FLAT`` holds the codes in its inverted lists (plus ``nlist`` centroids)
  and serves them from there; leave headroom (~1.5x) for growing segments and compaction.

  ============================ ===== ======= ============ ==========
  code (384-d embeddings)      code  + 24 B  100M vectors 1B vectors
  ============================ ===== ======= ============ ==========
  1-bit                        48 B  72 B    7.2 GB       72 GB
  hybrid (624 bits)            78 B  102 B   10.2 GB      102 GB
  2-bit thermometer            144 B 168 B   16.8 GB      168 GB
  ============================ ===== ======= ============ ==========

  A 2-bit ``LloydMax2`` ``rescore`` field (96 B, 128 B as base64) adds 12.8 GB per 100M; rescoring
  from an in-process index (``LloydMax2`` codes in memory, or a ``Flat`` index loaded with
  ``mmap=True``, read in place from the page cache) keeps it out of Milvus.

Errors are :class:`qama_rs.QamaError` (a ``ValueError``; wrong types and dtypes are its
``QamaTypeError``, also a ``TypeError``): an unreachable server, a collection whose code dimension (or
bit count, quantizer or transforms) differs from the codec's, a codec with no binary form, bad ids or
codes, a candidate the rescorer does not hold. A missing pymilvus / milvus-lite is an ``ImportError``
naming the extra.

Modules: :mod:`.codec` (vectors and queries to binary codes), :mod:`.store` (the collection:
schema, batched idempotent upserts, search), :mod:`.rescore` (the qama-rs second stage),
:mod:`.checkpoint` (the resumable-load journal).
"""

from qama_rs.integrations.milvus.codec import BinaryCodec, binary_codec
from qama_rs.integrations.milvus.store import MAX_TOP_K, MilvusIndex

__all__ = ["MAX_TOP_K", "BinaryCodec", "MilvusIndex", "binary_codec"]
