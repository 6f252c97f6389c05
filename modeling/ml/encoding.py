"""Turn texts into token id sequences and padded batches: truncation, sliding windows, length-aware batching."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from transformers import PreTrainedTokenizerBase

from modeling.ml.errors import ConfigError

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SpecialTemplate:
    """The special tokens a tokenizer puts around one sequence (e.g. <s> … </s>, [CLS] … [SEP])."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]

    def budget(self, max_length: int) -> int:
        """Return how many content tokens fit in `max_length` once the special tokens are added."""
        room = max_length - len(self.prefix) - len(self.suffix)
        if room < 1:
            raise ConfigError(f"max_length={max_length} leaves no room for text after the special tokens")
        return room

    def wrap(self, ids: Sequence[int]) -> list[int]:
        """Return `ids` with the special tokens around them."""
        return [*self.prefix, *ids, *self.suffix]


def special_template(tokenizer: PreTrainedTokenizerBase) -> SpecialTemplate:
    """Return the tokenizer's single-sequence special tokens, read from its own post-processor.

    Probing with a real encoding works for any fast tokenizer, including generic ones whose Python
    class does not implement `build_inputs_with_special_tokens`. The probe is two tokenizer calls, paid
    once per tokenizer object (remembered weakly; the model server encodes every batch and the probe
    was ~2% of its time). Special tokens are fixed once a tokenizer is loaded.
    """
    try:
        return _templates[tokenizer]
    except (KeyError, TypeError):  # TypeError: an object that cannot be weakly referenced is probed each time
        pass
    template = _probe_template(tokenizer)
    with contextlib.suppress(TypeError):
        _templates[tokenizer] = template
    return template


_templates: weakref.WeakKeyDictionary[PreTrainedTokenizerBase, SpecialTemplate] = weakref.WeakKeyDictionary()


def _probe_template(tokenizer: PreTrainedTokenizerBase) -> SpecialTemplate:
    """Locate a probe text inside its encoding with special tokens: what comes before and after it."""
    plain = list(tokenizer("hello", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("hello", add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return SpecialTemplate(tuple(full[:start]), tuple(full[start + len(plain) :]))
    raise ConfigError("cannot locate the text inside the tokenizer's special-token template")


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Return the content token ids of each text, without special tokens and without truncation."""
    if not texts:
        return []
    # verbose=False: long texts are expected here; truncation happens afterwards, by our own rules.
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)
    return [list(ids) for ids in encoded["input_ids"]]


def truncate_ids(ids: Sequence[int], budget: int, mode: str, head_tokens: int | None = None) -> list[int]:
    """Return at most `budget` ids: the first ones ('head') or the first k and last budget-k ('head_tail')."""
    if len(ids) <= budget:
        return list(ids)
    if mode == "head":
        return list(ids[:budget])
    if mode != "head_tail":
        raise ConfigError(f"truncation must be head|head_tail, got {mode!r}")
    head = budget // 4 if head_tokens is None else min(head_tokens, budget)
    tail = budget - head
    return [*ids[:head], *ids[len(ids) - tail :]] if tail else list(ids[:head])


def window_ids(ids: Sequence[int], budget: int, stride: int | None = None) -> list[list[int]]:
    """Return overlapping windows of at most `budget` ids whose starts are `stride` apart, covering every id."""
    step = stride if stride is not None else max(1, budget // 2)
    if step < 1:
        raise ConfigError(f"stride must be >= 1, got {step}")
    if len(ids) <= budget:
        return [list(ids)]
    starts = list(range(0, len(ids) - budget, step))
    # The last window ends exactly at the end of the text so the tail is never dropped.
    starts.append(len(ids) - budget)
    return [list(ids[start : start + budget]) for start in starts]


def encode_texts(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    truncation: str = "head",
    head_tokens: int | None = None,
) -> list[list[int]]:
    """Return one model-ready id sequence per text (special tokens included), truncated to `max_length`."""
    return encode_content(tokenizer, tokenize(tokenizer, texts), max_length, truncation, head_tokens)


def encode_content(
    tokenizer: PreTrainedTokenizerBase,
    content: Sequence[Sequence[int]],
    max_length: int,
    truncation: str = "head",
    head_tokens: int | None = None,
) -> list[list[int]]:
    """`encode_texts` from content ids already computed by `tokenize` (tokenize once, use them twice)."""
    template = special_template(tokenizer)
    budget = template.budget(max_length)
    return [template.wrap(truncate_ids(ids, budget, truncation, head_tokens)) for ids in content]


def encode_windows(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, stride: int | None
) -> tuple[list[list[int]], IntArray]:
    """Return every window of every text (special tokens included) and, per window, its text's index."""
    return encode_content_windows(tokenizer, tokenize(tokenizer, texts), max_length, stride)


def encode_content_windows(
    tokenizer: PreTrainedTokenizerBase, content: Sequence[Sequence[int]], max_length: int, stride: int | None
) -> tuple[list[list[int]], IntArray]:
    """`encode_windows` from content ids already computed by `tokenize`."""
    template = special_template(tokenizer)
    budget = template.budget(max_length)
    sequences: list[list[int]] = []
    owners: list[int] = []
    for index, ids in enumerate(content):
        for window in window_ids(ids, budget, stride):
            sequences.append(template.wrap(window))
            owners.append(index)
    return sequences, np.asarray(owners, dtype=np.int64)


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[IntArray, IntArray]:
    """Return (input_ids, attention_mask) padded on the right to the longest sequence of this batch."""
    width = max(len(seq) for seq in sequences)
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[IntArray]:
    """Return index batches in decreasing length, so each batch pads little and the largest runs first."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def padding_aware_batches(lengths: Sequence[int], batch_size: int, overhead_tokens: float) -> list[IntArray]:
    """Return index batches (longest first) that minimise the padded tokens plus a fixed cost per batch.

    A batch of sequences costs about ``overhead_tokens + size x its longest length`` tokens of work: on a
    CPU, where a forward pass costs the same per token whatever the batch (no batching economy), a
    fixed-size chunk pays for every pad token, while a batch per sequence pays the fixed cost each time.
    The lengths are sorted longest first and cut into contiguous batches of at most ``batch_size`` by
    dynamic programming on that cost (exact for it, O(n x batch_size)).
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    ranked = [int(lengths[i]) for i in order]
    n = len(ranked)
    best = [0.0] + [float("inf")] * n  # best[j]: the least cost of the first j sequences
    cut = [0] * (n + 1)  # where the last batch of the best split of the first j starts
    for end in range(1, n + 1):
        for start in range(max(0, end - batch_size), end):
            # The batch ranked[start:end] pads to its first (longest) sequence.
            cost = best[start] + overhead_tokens + (end - start) * ranked[start]
            if cost < best[end]:
                best[end], cut[end] = cost, start
    batches: list[IntArray] = []
    end = n
    while end > 0:
        batches.append(order[cut[end] : end])
        end = cut[end]
    return batches[::-1]


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator, group_factor: int = 50
) -> list[IntArray]:
    """Return shuffled training batches of similar-length examples.

    Shuffle, cut into groups of `group_factor` batches, sort each group by length, split it into
    batches and shuffle the batch order: padding stays small while every epoch still sees a random
    order and random batch compositions.
    """
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    order = rng.permutation(len(lengths_arr))
    group = batch_size * group_factor
    batches: list[IntArray] = []
    for start in range(0, len(order), group):
        chunk = order[start : start + group]
        chunk = chunk[np.argsort(-lengths_arr[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    permutation = rng.permutation(len(batches))
    return [batches[i] for i in permutation]
