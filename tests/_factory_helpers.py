"""Shared pieces of the ``index_factory`` tests: the width of the generated vectors, the seeded sample
the ``data`` fixtures return, an index built over documents, the mmap under a mapped array, and the
NumPy references of the engine's asymmetric and Hamming searches."""

from __future__ import annotations

import numpy as np

import _reference
from qama_rs.index import index_factory

DIMS = 72


def unit_rows(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sample_data():
    """600 documents and 9 queries: seeded random unit vectors of ``DIMS`` dimensions."""
    rng = np.random.default_rng(11)
    return unit_rows(rng, 600, DIMS), unit_rows(rng, 9, DIMS)


def built(spec, docs, dims=DIMS, ids=None):
    index = index_factory(dims, spec)
    if not index.is_trained:
        index.train(docs)
    index.add(docs, ids=ids)
    return index


def mapped_base(array):
    """The object at the bottom of an array's chain of bases (an mmap for a mapped section)."""
    while isinstance(array, np.ndarray | memoryview):
        array = array.base if isinstance(array, np.ndarray) else array.obj
    return array


def asym_reference(quantizer, queries, docs, k):
    """The NumPy reference of the engine's asymmetric search of a fitted per-dimension quantizer (protocol A):
    its prepared queries against its codes, packed, scored through its reconstruction values."""
    recon = np.asarray(quantizer.reconstruction_values, dtype=np.float32)
    bits = {2: 1, 4: 2, 16: 4, 256: 8}[recon.shape[1]]
    packed = _reference.asym_pack(quantizer.encode(docs), bits)
    return _reference.asym_search(quantizer.prepare_query(queries), recon, packed, k), packed


def hamming_reference(quantizer, queries, docs, k, dims=None):
    """The NumPy reference of a symmetric Hamming search with ``quantizer``'s codes (``dims``: the Matryoshka
    prefix), as an index reports it: ``(-distance float32, rows)``."""
    nbits = None if dims is None else quantizer.prefix_bits(dims)
    distances, rows = _reference.search(quantizer.encode(queries), quantizer.encode(docs), k, nbits)
    return -distances.astype(np.float32), rows
