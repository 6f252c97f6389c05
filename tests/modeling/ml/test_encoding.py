"""Truncation, sliding windows and batching of token id sequences."""

from __future__ import annotations

import numpy as np

from modeling.ml.encoding import (
    length_grouped_batches,
    pad_batch,
    padding_aware_batches,
    sorted_batches,
    truncate_ids,
    window_ids,
)


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


def test_padding_aware_batches_cut_where_padding_costs_more_than_a_pass() -> None:
    # One chunk of [64, 10, 10, 10] costs 5 + 4 x 64 = 261 tokens; [64] + [10, 10, 10] costs 69 + 35 = 104;
    # three or four batches pay the fixed 5 more often for no padding saved (109, 114).
    assert [b.tolist() for b in padding_aware_batches([10, 64, 10, 10], 8, 5.0)] == [[1], [0, 2, 3]]
    # [32, 31, 30, 29]: one chunk 5 + 128 = 133; [32, 31] + [30, 29] 69 + 65 = 134; so one chunk.
    assert [b.tolist() for b in padding_aware_batches([29, 30, 31, 32], 8, 5.0)] == [[3, 2, 1, 0]]
    # With no fixed cost every distinct length runs alone (no padding at all); equal lengths share a pass.
    assert [b.tolist() for b in padding_aware_batches([3, 9, 9, 1], 8, 0.0)] == [[1, 2], [0], [3]]
    # A huge fixed cost makes as few batches as batch_size allows ([9], [7, 5], [3, 1] pads 29 tokens, as the
    # fixed chunks [9, 7], [5, 3], [1] do), never one above batch_size.
    assert [b.tolist() for b in padding_aware_batches([3, 9, 1, 7, 5], 2, 1e9)] == [[1], [3, 4], [0, 2]]
    assert padding_aware_batches([], 8, 5.0) == []


def test_padding_aware_batches_cover_every_index_once_and_never_cost_more_than_fixed_chunks() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(1, 65, size=int(rng.integers(1, 40))).tolist()

        def cost(batches: list[np.ndarray], lengths: list[int] = lengths) -> float:
            return sum(4.5 + len(b) * max(lengths[i] for i in b) for b in batches)

        batches = padding_aware_batches(lengths, 8, 4.5)
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
        assert all(1 <= len(b) <= 8 for b in batches)
        assert cost(batches) <= cost(sorted_batches(lengths, 8))


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


def test_the_special_template_is_probed_once_per_tokenizer(tiny_roberta_dir, tiny_xlmr_dir) -> None:
    from transformers import AutoTokenizer

    from modeling.ml.encoding import special_template

    roberta = AutoTokenizer.from_pretrained(str(tiny_roberta_dir))
    xlmr = AutoTokenizer.from_pretrained(str(tiny_xlmr_dir))
    first = special_template(roberta)
    assert (first.prefix, first.suffix) == ((roberta.bos_token_id,), (roberta.eos_token_id,))
    calls = []
    original = type(roberta).__call__

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    type(roberta).__call__ = counting
    try:
        assert special_template(roberta) is first  # remembered: no probe
        assert calls == []
        fresh = AutoTokenizer.from_pretrained(str(tiny_roberta_dir))
        assert special_template(fresh) == first and calls  # another tokenizer object is probed on its own
        other = special_template(xlmr)
        assert (other.prefix, other.suffix) == ((xlmr.cls_token_id,), (xlmr.sep_token_id,))
    finally:
        type(roberta).__call__ = original
