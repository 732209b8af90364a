"""A process forked after the engine has searched (``multiprocessing`` with the "fork" context,
gunicorn ``--preload``, PyTorch ``DataLoader`` workers) searches too, and gets the parent's answers.

The engine's thread pool belongs to the process that built it (``rust/python/src/pool.rs``): a forked
child inherits the pool's state but not its threads, so a child that used the parent's pool would
wait forever on its first parallel call. Each scenario runs in a fresh interpreter (so
``RAYON_NUM_THREADS`` applies to its pool), with timeouts on the child and on the interpreter: a hang
fails the test instead of stalling the suite.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from _factory_helpers import built
from qama_rs import _core

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method on this platform"
)

CHILD_TIMEOUT_S = 60
TESTS = Path(__file__).resolve().parent


def one_list(rows: np.ndarray, n: int | None = None) -> _core.Store:
    """``rows`` as the store of one list of ``n`` rows (default: all of them) and an empty tail."""
    n = len(rows) if n is None else n
    return _core.Store([rows, np.zeros(0, rows.dtype)], np.array([[0, n, 0, 0]], np.uint64))


def answers_of_a_forked_child(target, args: tuple, timeout: float) -> tuple[bool, object, int | None]:
    """Forks a child that runs ``target(conn, *args)`` and sends its answer over ``conn``: ``(answered,
    the answer or None, the child's exit code)``. A child that does not answer within ``timeout``
    seconds, or answers but does not exit within as long again, is killed."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a threaded process may deadlock: exactly the case under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        process = context.Process(target=target, args=(send, *args))
        process.start()
    send.close()
    answered = receive.poll(timeout)
    got = receive.recv() if answered else None
    process.join(timeout if answered else 0)
    if process.is_alive():  # a hung child: end it (an exit would wait for it)
        process.kill()
        process.join()
    return answered, got, process.exitcode


# The parent searches through an index and through codec objects (every family, parallel paths
# included: a batch of queries over enough rows; a coarse plan and a search of its lists), forks, and
# the child searches the same objects.
SCENARIO = r"""
import sys
sys.path.insert(0, TESTS)
import numpy as np
import qama_rs
from qama_rs import _core
from _factory_helpers import built
from test_fork import answers_of_a_forked_child, one_list

rng = np.random.default_rng(0)
docs = rng.normal(size=(3000, 32)).astype(np.float32)
queries = rng.normal(size=(40, 32)).astype(np.float32)
index = built("LloydMax2", docs, 32)
words = rng.integers(0, 2**63, size=(60_000, 2), dtype=np.uint64)
hamming = _core.HammingCodec(2)
hamming_rows = one_list(words)
recon = rng.normal(size=(32, 4)).astype(np.float32)
packed = _core.pack_codes(rng.integers(0, 4, size=(3000, 32), dtype=np.uint8), 2)
table = _core.TableCodec.recon(recon, "blocks")
table_rows = one_list(_core.to_blocks(packed), 3000)
coarse = _core.Coarse(docs[:8].copy())
eight_lists = np.array([[375 * j, 375, 0, 0] for j in range(8)], np.uint64)
float_lists = _core.Store([docs, np.zeros(0, np.float32)], eight_lists)


def answers():
    out = [*index.search(queries, 10), *hamming.search(words[:64], hamming_rows, 10)]
    out += table.search(queries, table_rows, 10)
    out += _core.FloatCodec(32).search(queries, one_list(docs), 10)
    plan = coarse.plan(queries, 2, 4, True)
    out += [*plan.arrays(), *_core.FloatCodec(32).search_lists(queries, float_lists, 10, plan)]
    # One query alone: the pool's threads may join the caller (rust/core/src/share.rs).
    for q in queries[:3]:
        one = coarse.plan(q[None], 4, 4, True)
        out += _core.FloatCodec(32).search_lists(q[None], float_lists, 10, one)
    out.append(qama_rs.search(words[:8], words, 5)[1])
    out.append(np.array([_core.num_threads()]))
    return out


def child(conn):
    conn.send(answers())
    conn.close()


parent = answers()
answered, got, exitcode = answers_of_a_forked_child(child, (), TIMEOUT)
if not answered:
    print("the forked child did not answer within", TIMEOUT, "s", file=sys.stderr)
    sys.exit(3)
if exitcode != 0:
    print("the child exited with", exitcode, file=sys.stderr)
    sys.exit(4)
same = [np.array_equal(a, b) for a, b in zip(parent, got, strict=True)]
if not all(same):
    print("the child's answers differ from the parent's:", same, file=sys.stderr)
    sys.exit(5)
print("threads", int(parent[-1][0]), int(got[-1][0]))
"""


def run_scenario(threads: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("RAYON_NUM_THREADS", None)
    if threads is not None:
        env["RAYON_NUM_THREADS"] = threads
    script = f"TIMEOUT = {CHILD_TIMEOUT_S}\nTESTS = {str(TESTS)!r}\n" + SCENARIO
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=3 * CHILD_TIMEOUT_S
    )


@pytest.mark.parametrize("threads", [None, "1", "3"])
def test_a_forked_child_searches_and_gets_the_parents_answers(threads):
    result = run_scenario(threads)
    assert result.returncode == 0, result.stderr
    parent_threads, child_threads = map(int, result.stdout.split()[1:3])
    # The child's pool is rebuilt with the same size (RAYON_NUM_THREADS, else one per core).
    assert parent_threads == child_threads
    if threads is not None:
        assert parent_threads == int(threads)


def _child_search(conn, index, queries, codec, store, words):
    conn.send([*index.search(queries, 5), *codec.search(words[:16], store, 5)])
    conn.close()


def test_fork_from_this_process_after_a_search():
    """The same from the test process itself (whose pool already ran searches)."""
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(2000, 16)).astype(np.float32)
    index = built("Thermo2", docs, 16)
    words = rng.integers(0, 2**63, size=(40_000, 1), dtype=np.uint64)
    codec = _core.HammingCodec(1)
    store = one_list(words)
    want = [*index.search(docs[:7], 5), *codec.search(words[:16], store, 5)]
    answered, got, exitcode = answers_of_a_forked_child(
        _child_search, (index, docs[:7], codec, store, words), CHILD_TIMEOUT_S
    )
    assert answered, f"the forked child did not answer within {CHILD_TIMEOUT_S} s"
    assert exitcode == 0
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
