"""index_factory and ``Index`` errors: bad specs are one clear error, bad arguments name themselves,
corrupt, truncated and foreign files are refused (a mapped load at ``verify``), a failed save leaves
the old file, and ``parse_spec`` keeps nested stages."""

from __future__ import annotations

import numpy as np
import pytest

import qama_rs
from _factory_helpers import DIMS, built, sample_data
from qama_rs import Index, QamaError
from qama_rs.index import index_factory, parse_spec


@pytest.fixture(scope="module")
def data():
    return sample_data()


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("Nope", "unknown codec 'Nope'"),
        ("Flat,Flat", "after the codec"),
        ("Hadamard", "names no codec"),
        ("Rescore(Flat,10)", "refines a codec"),
        ("Sign,Rescore(LloydMax2)", "Rescore\\(codec,k'\\)"),
        ("Sign,Rescore(LloydMax2,0)", "k' = 0"),
        ("Sign,RFlat(x)", "must be an integer"),
        ("Sign,RFlat(10),Flat", "nothing may follow"),
        ("Flat(3)", "takes no arguments"),
        ("LloydMax9", "bits = 9"),
        ("Prefix99,Flat", "prefix of 99"),
        ("Flat,,Sign", "empty stage"),
        ("Thermo2(", "missing '\\)'"),
        ("Thermo2)", "unbalanced"),
        ("Hadamard(1,2),Flat", "at most one argument"),
        ("LloydMax2,Hadamard", "transform"),
    ],
)
def test_bad_specs_are_one_clear_error(spec, message):
    with pytest.raises(QamaError, match=message):
        index_factory(DIMS, spec)


def test_bad_arguments_name_themselves(data):
    docs, queries = data
    index = built("LloydMax2", docs)
    cases = [
        (lambda: index.search(queries.astype(np.int32), 3), qama_rs.QamaTypeError, "xq must be a floating-point"),
        (lambda: index.search(queries[:, :5], 3), QamaError, "xq has 5 columns"),
        (lambda: index.search(queries[0], 3), QamaError, "xq must be 2-D"),
        (lambda: index.search(np.where(np.arange(DIMS) == 2, np.nan, queries), 3), QamaError, "xq has a non-finite"),
        (lambda: index.search(queries, 0), QamaError, "k = 0"),
        (lambda: index.search(queries, 2.5), TypeError, "k must be an int"),
        (lambda: index.search(queries, True), TypeError, "k must be an int"),
        (lambda: index.search(queries, 2**31), QamaError, "k = 2147483648"),
        (lambda: index.search(queries, 2**30), QamaError, "at most"),
        (lambda: index.search(queries, 3, dims=0), QamaError, "dims = 0"),
        (lambda: index.add(np.full((2, DIMS), np.inf, np.float32)), QamaError, "x has a non-finite"),
        (lambda: index.add(docs, ids=np.arange(3)), QamaError, "ids must have shape"),
        (lambda: index.add(docs[:2], ids=[1.5, 2.5]), TypeError, "ids must be integers"),
        (lambda: index.add(docs[:2], ids=[-1, 4]), QamaError, "non-negative"),
        (lambda: index_factory(0, "Flat"), QamaError, "dims = 0"),
        (lambda: index_factory(DIMS, 7), QamaError, "spec must be a string"),
        (lambda: index_factory(DIMS, "Thermo2").add(docs), QamaError, "not trained"),
        (lambda: index_factory(DIMS, "Thermo2").train(docs[:0]), QamaError, "x has no rows"),
        (lambda: index.train(docs), QamaError, "already holds vectors"),
        (lambda: built("Hadamard,LloydMax2", docs).search(queries, 3, dims=8), QamaError, "no Matryoshka prefix"),
        (lambda: index.add_codes(np.zeros((2, 3), np.int8)), QamaError, "codes must be a uint8"),
        (lambda: index.verify(), QamaError, "loaded from a file"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    assert issubclass(QamaError, ValueError) and issubclass(qama_rs.QamaTypeError, TypeError)


def test_corrupt_truncated_and_foreign_files(data, tmp_path):
    docs, _ = data
    path = tmp_path / "c.qidx"
    built("LloydMax2", docs).save(path)
    good = path.read_bytes()
    from qama_rs.index import fileformat

    header, _ = fileformat.read_index(path, mmap_mode=True)
    flipped = bytearray(good)
    flipped[header["sections"]["codec.rows.data"]["offset"] + 5] ^= 0xFF
    (tmp_path / "flip.qidx").write_bytes(bytes(flipped))
    with pytest.raises(QamaError, match="checksum"):
        Index.load(tmp_path / "flip.qidx")
    mapped = Index.load(tmp_path / "flip.qidx", mmap=True)  # a mapped load reads no codes ...
    with pytest.raises(QamaError, match="section 'codec.rows.data' checksum"):
        mapped.verify()  # ... until asked to
    header = bytearray(good)
    header[100] ^= 0x01
    (tmp_path / "head.qidx").write_bytes(bytes(header))
    for use_mmap in (False, True):
        with pytest.raises(QamaError, match="header checksum"):
            Index.load(tmp_path / "head.qidx", mmap=use_mmap)
    (tmp_path / "short.qidx").write_bytes(good[:-100])
    (tmp_path / "tiny.qidx").write_bytes(good[:20])
    (tmp_path / "foreign.qidx").write_bytes(b"PK\x03\x04" + good[4:])
    (tmp_path / "empty.qidx").write_bytes(b"")
    newer = bytearray(good)
    newer[8] = 9
    (tmp_path / "newer.qidx").write_bytes(bytes(newer))
    for name, message in (("short", "truncated"), ("tiny", "truncated"), ("foreign", "bad magic"), ("empty", "empty|truncated"),
                          ("newer", "version 9"), ("missing", "no such index file")):
        for use_mmap in (False, True):
            with pytest.raises(QamaError, match=message):
                Index.load(tmp_path / f"{name}.qidx", mmap=use_mmap)


def test_failed_save_leaves_the_old_file(data, tmp_path, monkeypatch):
    from qama_rs.index import fileformat

    docs, _ = data
    path = tmp_path / "keep.qidx"
    built("Thermo1", docs).save(path)
    before = path.read_bytes()
    real_chunks = fileformat._chunks

    def failing_chunks(*args):
        chunks = real_chunks(*args)
        yield next(chunks)
        yield next(chunks)
        raise OSError("disk full")

    monkeypatch.setattr(fileformat, "_chunks", failing_chunks)
    with pytest.raises(OSError, match="disk full"):
        built("Sign", docs).save(path)  # fails half-way through writing the sections
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.qidx"]


def test_parse_spec_keeps_nested_stages():
    stages = parse_spec(" Hadamard(7) , Sign,Rescore( LloydMax2 , 100 )")
    assert [s.name for s in stages] == ["Hadamard", "Sign", "Rescore"]
    assert stages[0].args == ("7",) and stages[2].args == ("LloydMax2", "100")
