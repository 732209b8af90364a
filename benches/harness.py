"""What the side-by-side search benches (``bench_search.py``, ``bench_asym.py``) share: their common options
and quick/full defaults, the thread setting, faiss when it is installed, median timings, the record of the
machine's load, the Markdown table, and their own block of ``benches/RESULTS.md``."""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def parse_common_args(
    p: argparse.ArgumentParser, argv: list[str] | None, **defaults: tuple[int, int]
) -> argparse.Namespace:
    """Adds ``--seed`` and ``--no-write`` to ``p`` and parses ``argv``; each ``name=(quick, full)`` of
    ``defaults`` fills the option ``name`` when it is left unset (``quick`` with ``--quick``)."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args(argv)
    for name, (quick, full) in defaults.items():
        setattr(args, name, getattr(args, name) or (quick if args.quick else full))
    return args


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that reproduces this run, as the table records it."""
    return "python " + shlex.join([f"benches/{script}", *(sys.argv[1:] if argv is None else argv)])


def use_threads(threads: int | None) -> None:
    if threads:
        # Read when rayon builds its pool, i.e. at the engine's first parallel call (not yet made).
        os.environ["RAYON_NUM_THREADS"] = str(threads)


def import_faiss(missing: str):
    """The ``faiss`` module, or None with a notice on stderr that says what the run then lacks."""
    try:
        import faiss
    except ImportError:
        print(f"faiss-cpu is not installed (pip install 'qama-rs[bench]'): {missing}", file=sys.stderr)
        return None
    return faiss


def load_line() -> str:
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"- load average at start (1/5/15 min): {load}"


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def markdown_table(caption: str, head: str, rule: str, rows: Iterable[Sequence[str]]) -> list[str]:
    """``caption``, a blank line, then the table: its ``head`` and ``rule`` lines and one line per row of
    cells."""
    return [caption, "", head, rule, *("| " + " | ".join(cells) + " |" for cells in rows)]


def publish(
    lines: list[str], args: argparse.Namespace, block: str, title: str, command: str, machine: list[str]
) -> None:
    """Prints the table ``lines``; unless ``--no-write``, writes them with the command and the machine as
    the block ``block:quick`` or ``block:full`` of RESULTS.md under the heading ``title``."""
    print("\n".join(lines))
    if not args.no_write:
        mode = "quick" if args.quick else "full"
        heading = f"### {title} ({mode} run, {time.strftime('%Y-%m-%d')})"
        write_results(f"{block}:{mode}", [heading, "", f"`{command}`", "", *machine, "", *lines])
        print(f"wrote {RESULTS}")


def write_results(block_name: str, lines: list[str]) -> None:
    begin, end = f"<!-- {block_name}:begin -->", f"<!-- {block_name}:end -->"
    block = "\n".join([begin, *lines, end])
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, RESULTS)
