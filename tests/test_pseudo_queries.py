import numpy as np
import pytest

from qama_rs.qama.pseudo_queries import crop_queries


def test_crops_a_sentence_of_the_right_length_from_each_document():
    texts = [
        "Short one. This sentence has exactly six words. Tiny.",
        "no sentence ends here but there are many words in this long run of text without any stop at all",
        "too few",
    ]
    queries, rows = crop_queries(texts, seed=1, min_words=4, max_words=8)
    assert rows.tolist() == [0, 1]  # the two-word document has nothing to crop
    assert queries[0] == "This sentence has exactly six words."  # the only sentence with 4..8 words
    words = queries[1].split()
    assert len(words) == 8 and queries[1] in texts[1]  # a window of max_words consecutive words


def test_crops_are_deterministic_per_seed_and_differ_across_seeds():
    texts = [" ".join(f"w{i}{j}" for j in range(60)) for i in range(20)]
    a, _ = crop_queries(texts, seed=0)
    assert a == crop_queries(texts, seed=0)[0]
    assert a != crop_queries(texts, seed=1)[0]


def test_bad_arguments():
    with pytest.raises(ValueError):
        crop_queries(["a b c d e"], min_words=5, max_words=4)
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        crop_queries([3])
    queries, rows = crop_queries([])
    assert queries == [] and rows.dtype == np.int64
