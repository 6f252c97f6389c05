"""Truncation, sliding windows and batching of token id sequences."""

from __future__ import annotations

import numpy as np

from modeling.ml.encoding import length_grouped_batches, pad_batch, sorted_batches, truncate_ids, window_ids


def test_head_truncation_keeps_the_first_tokens() -> None:
    assert truncate_ids(list(range(10)), 4, "head") == [0, 1, 2, 3]


def test_head_tail_truncation_keeps_first_k_and_last_m_tokens() -> None:
    assert truncate_ids(list(range(10)), 5, "head_tail", head_tokens=2) == [0, 1, 7, 8, 9]
    # Default: a quarter of the budget from the head.
    assert truncate_ids(list(range(100)), 8, "head_tail") == [0, 1, 94, 95, 96, 97, 98, 99]


def test_short_sequences_are_not_truncated() -> None:
    assert truncate_ids([1, 2, 3], 5, "head_tail") == [1, 2, 3]


def test_sliding_windows_cover_every_token_with_the_given_stride() -> None:
    windows = window_ids(list(range(10)), 4, stride=3)
    assert windows == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert sorted({token for window in window_ids(list(range(23)), 5, stride=4) for token in window}) == list(range(23))


def test_a_text_shorter_than_a_window_is_one_window() -> None:
    assert window_ids([1, 2], 4) == [[1, 2]]


def test_pad_batch_pads_right_and_masks_padding() -> None:
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=1)
    assert ids.tolist() == [[5, 6, 7], [8, 1, 1]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_sorted_batches_run_longest_first_and_cover_every_index_once() -> None:
    batches = sorted_batches([3, 9, 1, 7, 5], 2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]


def test_length_grouped_batches_cover_every_index_once_with_similar_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1000).tolist()
    batches = length_grouped_batches(lengths, 10, np.random.default_rng(1), group_factor=50)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(np.asarray(lengths)[b]) for b in batches])
    assert spread < 20  # random batches of 10 would span ~160 tokens


def test_length_grouped_batches_shuffle_differently_per_draw() -> None:
    lengths = list(range(100))
    rng = np.random.default_rng(0)
    first = [b.tolist() for b in length_grouped_batches(lengths, 8, rng, group_factor=2)]
    second = [b.tolist() for b in length_grouped_batches(lengths, 8, rng, group_factor=2)]
    assert first != second
