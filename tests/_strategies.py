"""Hypothesis strategies shared by the engine's property tests: the sizes of a generated case with the
seed of its random data, and the sizes of a store's lists."""

from __future__ import annotations

from hypothesis import strategies as st

SEEDS = st.integers(0, 2**32 - 1)


def sizes_and_seed(**bounds: int | tuple[int, int]) -> dict[str, st.SearchStrategy[int]]:
    """Keyword strategies for ``@given``: ``name=high`` draws ``name`` from 1 to ``high``,
    ``name=(low, high)`` from ``low`` to ``high``; and ``seed`` from :data:`SEEDS`."""
    drawn = {name: st.integers(*(b if isinstance(b, tuple) else (1, b))) for name, b in bounds.items()}
    return {**drawn, "seed": SEEDS}


def list_sizes(largest: int, most: int) -> st.SearchStrategy[list[int]]:
    """The sizes of 1 to ``most`` lists, each of 0 to ``largest`` rows, at least one row in all."""
    return st.lists(st.integers(0, largest), min_size=1, max_size=most).filter(lambda s: sum(s) > 0)
