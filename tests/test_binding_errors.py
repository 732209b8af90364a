"""Hand-written cases of the error contract of the Rust binding ``qama_rs._core``: a ``store``,
``plan`` or ``filter`` of the wrong type is a ``QamaTypeError`` naming it, non-finite tables and
queries, non-contiguous and NaN inputs name the argument, a huge ``k`` returns every row, and the
error classes are both ``TypeError`` / ``ValueError`` where they should be, pickle, and live in
``qama_rs.errors``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from qama_rs import _core
from qama_rs.errors import QamaError, QamaTypeError

H_QUERIES = np.zeros((1, 1), np.uint64)
H_ROWS = _core.Store([np.zeros((3, 1), np.uint64)], np.array([[0, 3]], np.uint64))
LUTS = np.zeros((1, 1, 256), np.float32)
T_ROWS = _core.Store([np.zeros((3, 1), np.uint8)], np.array([[0, 3]], np.uint64))
ONE_LIST = _core.Plan(np.zeros((1, 1), np.int64), 1)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: _core.HammingCodec(1).search(H_QUERIES, np.zeros((3, 1), np.uint64), 1), "store"),
        (lambda: _core.TableCodec.given(1).score(LUTS, None, np.zeros(1, np.int64)), "store"),
        (
            lambda: _core.FloatCodec(1).rescore(np.zeros((1, 1), np.float32), [], np.zeros(1, np.int64), 1),
            "store",
        ),
        (
            lambda: _core.HammingCodec(1).search_lists(H_QUERIES, H_ROWS, 1, np.zeros((1, 1), np.int64)),
            "plan",
        ),
        (lambda: _core.TableCodec.given(1).search_lists(LUTS, T_ROWS, 1, None), "plan"),
        (lambda: _core.TableCodec.given(1).search_lists(LUTS, T_ROWS, 1, ONE_LIST, ONE_LIST), "filter"),
        (lambda: _core.HammingCodec(1).search(H_QUERIES, H_ROWS, 1, np.zeros(1, np.uint64)), "filter"),
        (lambda: _core.HammingCodec(1).rescore(H_QUERIES, H_ROWS, np.zeros(1, np.int64), 1, "x"), "filter"),
        (lambda: _core.HammingCodec(1).search(H_QUERIES, H_ROWS, 1, filter=H_ROWS), "filter"),
    ],
)
def test_object_arguments_of_the_wrong_type_are_qama_type_errors(call, argument):
    """A ``store``, ``plan`` or ``filter`` that is not the object it names is a ``QamaTypeError`` (also
    a ``TypeError``) naming the argument and the class it must be."""
    with pytest.raises(QamaTypeError, match=rf"^{argument} must be a qama_rs\._core\.\w+, got \w+"):
        call()


def test_table_queries_errors_name_queries():
    luts = np.zeros((1, 2, 256), np.float32)
    luts[0, 1, 5] = np.inf
    rows = _core.Store(
        [np.zeros((3, 2), np.uint8), np.zeros(0, np.uint8)], np.array([[0, 3, 0, 0]], np.uint64)
    )
    with pytest.raises(QamaError, match=r"^queries\[0, 1, 5\] = inf is not finite"):
        _core.TableCodec.given(2, "rows").search(luts, rows, 1)


def test_type_errors_are_qama_type_errors_and_type_errors():
    words = np.zeros((1, 1), np.uint64)
    rows = _core.Store([words, np.zeros(0, np.uint64)], np.array([[0, 1, 0, 0]], np.uint64))
    for call in (
        lambda: _core.HammingCodec(1).search(np.zeros((1, 1)), rows, 1),
        lambda: _core.HammingCodec(1).search(words, rows, 1.5),
        lambda: _core.HammingCodec(1, isa=3),
        lambda: _core.TableCodec.recon(np.zeros((2, 2), np.float32), layout=3),
        lambda: _core.Store([np.zeros((2, 4), np.uint64)[:, ::2]], np.zeros((1, 2), np.uint64)),
        lambda: _core.pack_bits(np.zeros((4, 4), np.uint8)[:, ::2]),
    ):
        with pytest.raises(QamaTypeError) as info:
            call()
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_huge_k_returns_every_row():
    db = np.arange(6, dtype=np.uint64).reshape(3, 2)
    rows = _core.Store([db, np.zeros(0, np.uint64)], np.array([[0, 3, 0, 0]], np.uint64))
    codec = _core.HammingCodec(2)
    for k in (2**31, 2**31 + 1, 2**63 - 1, 2**64, 2**100, np.uint64(2**64 - 1)):
        s, i = codec.search(db, rows, k)
        assert s.shape == (3, 3) and sorted(i[0].tolist()) == [0, 1, 2]
        s, i = codec.rescore(db, rows, np.array([2, 0], np.int64), k)
        assert s.shape == (3, 2) and sorted(i[0].tolist()) == [0, 2]
    with pytest.raises(QamaError, match="k = "):
        codec.search(db, rows, -(2**80))


def test_non_contiguous_and_nan_inputs_name_the_argument():
    q = np.zeros((2, 8), dtype=np.float32)
    recon = np.zeros((8, 4), dtype=np.float32)
    codes = np.zeros((5, 2), dtype=np.uint8)
    rows = _core.Store([codes, np.zeros(0, np.uint8)], np.array([[0, 5, 0, 0]], np.uint64))
    codec = _core.TableCodec.recon(recon, "rows")
    with pytest.raises(QamaTypeError, match=r"segments\[0\] must be C-contiguous"):
        _core.Store(
            [np.zeros((5, 4), np.uint8)[:, ::2], np.zeros(0, np.uint8)], np.array([[0, 5, 0, 0]], np.uint64)
        )
    with pytest.raises(QamaTypeError, match="queries must be C-contiguous"):
        codec.search(np.zeros((2, 16), np.float32)[:, ::2], rows, 1)
    with pytest.raises(QamaError, match=r"queries\[1, 3\] = NaN"):
        bad = q.copy()
        bad[1, 3] = np.nan
        codec.search(bad, rows, 1)
    with pytest.raises(QamaError, match=r"x\[0, 1\] = inf"):
        _core.encode(
            np.array([[0, np.inf]], np.float32), np.zeros(2, np.float32), np.array([2, 2], np.uint16)
        )


def test_error_classes_pickle_and_live_in_qama_rs_errors():
    for cls in (QamaError, QamaTypeError):
        assert cls.__module__ == "qama_rs.errors"
        again = pickle.loads(pickle.dumps(cls("k = 0; must be positive")))
        assert type(again) is cls and str(again) == "k = 0; must be positive"
    assert issubclass(QamaTypeError, QamaError) and issubclass(QamaTypeError, TypeError)
    assert issubclass(QamaError, ValueError) and not issubclass(QamaError, TypeError)
    assert _core.QamaError is QamaError and _core.QamaTypeError is QamaTypeError
