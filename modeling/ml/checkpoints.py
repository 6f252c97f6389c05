"""Load sequence-classification checkpoints (local dir or hub id) and validate tokenizer/model pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerBase as Tokenizer

from modeling.ml.errors import CheckpointError

# Architectures whose position ids start at pad_token_id + 1 (fairseq heritage), so a
# max_position_embeddings of 514 holds only 512 tokens.
PADDING_OFFSET_MODEL_TYPES = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text"})
# Embedding matrices are often padded to a multiple of 64 or 128 rows for fast matmuls; a larger
# gap between tokenizer and embedding sizes means the tokenizer belongs to another model.
EMBEDDING_ROW_PADDING = 128


@dataclass
class LoadedCheckpoint:
    """A classification model and its tokenizer, ready to train or score."""

    model: PreTrainedModel
    tokenizer: Tokenizer
    labels: list[str]


def load_checkpoint(
    name_or_path: str | Path,
    *,
    labels: Sequence[str] | None = None,
    offline: bool = False,
    max_length: int | None = None,
    seed: int | None = None,
) -> LoadedCheckpoint:
    """Load model and tokenizer; a new label set gets a freshly initialised classification head.

    `offline` maps to local_files_only (the caller derives it from HF_HUB_OFFLINE). `seed` fixes the
    random init of a new head without touching the caller's RNG. The pair is validated before return.
    """
    source = str(name_or_path)
    tokenizer = _load_tokenizer(source, offline)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = _load_model(source, labels, offline)
    validate_pair(model, tokenizer, max_length=max_length)
    return LoadedCheckpoint(model=model, tokenizer=tokenizer, labels=label_names(model))


def label_names(model: PreTrainedModel) -> list[str]:
    """Return the model's labels ordered by class id."""
    id2label = model.config.id2label or {}
    return [str(id2label[i]) for i in range(model.config.num_labels)]


def _load_tokenizer(source: str, offline: bool) -> Tokenizer:
    """Load the fast tokenizer of a checkpoint, or raise CheckpointError."""
    try:
        tokenizer: Tokenizer = AutoTokenizer.from_pretrained(  # type: ignore[no-untyped-call]
            source, local_files_only=offline, use_fast=True
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load a tokenizer from {source!r}: {exc}") from exc
    if not tokenizer.is_fast:
        raise CheckpointError(f"{source!r} has no fast (Rust) tokenizer; batching and truncation rely on one")
    return tokenizer


def _load_model(source: str, labels: Sequence[str] | None, offline: bool) -> PreTrainedModel:
    """Load the classification model, replacing the head when `labels` differ from the checkpoint's."""
    try:
        if labels is None:
            loaded: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=offline
            )
            return loaded
        _check_labels(labels)
        same_head = _checkpoint_labels(source, offline) == list(labels)
        model: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(
            source,
            local_files_only=offline,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            # A head trained for another label set has the wrong shape: drop it instead of failing.
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load a classification model from {source!r}: {exc}") from exc
    if not same_head:
        _reset_head(model)
    return model


def _check_labels(labels: Sequence[str]) -> None:
    """Refuse label sets a classifier cannot represent."""
    if len(labels) < 2:
        raise CheckpointError(f"a classifier needs at least two labels, got {list(labels)}")
    if len(set(labels)) != len(labels):
        raise CheckpointError(f"labels must be unique, got {list(labels)}")


def _checkpoint_labels(source: str, offline: bool) -> list[str] | None:
    """Return the labels a checkpoint's config names, or None when it names none of its own."""
    config = AutoConfig.from_pretrained(source, local_files_only=offline)
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    # HF fills unnamed heads with LABEL_0, LABEL_1, …: those are placeholders, not a label set.
    return None if all(name == f"LABEL_{i}" for i, name in enumerate(names)) else names


def _reset_head(model: PreTrainedModel) -> None:
    """Re-initialise the classification head, so a same-sized head for other labels is not reused."""
    head = getattr(model, "classifier", None) or getattr(model, "score", None)
    if isinstance(head, torch.nn.Module):
        # _init_weights is the model's own initialiser: the same init a missing head would get.
        head.apply(model._init_weights)


def word_embeddings(model: PreTrainedModel) -> torch.nn.Parameter:
    """Return the model's input word-embedding matrix."""
    weight = model.get_input_embeddings().weight
    if not isinstance(weight, torch.nn.Parameter):
        raise CheckpointError(f"{type(model).__name__} has no word-embedding matrix")
    return weight


def validate_pair(model: PreTrainedModel, tokenizer: Tokenizer, *, max_length: int | None = None) -> None:
    """Raise CheckpointError naming every way the tokenizer and model do not belong together."""
    problems = [
        *_vocab_problems(model, tokenizer),
        *_special_token_problems(model, tokenizer),
        *_length_problems(model, max_length),
    ]
    if problems:
        raise CheckpointError("tokenizer/model mismatch: " + "; ".join(problems))


def _vocab_problems(model: PreTrainedModel, tokenizer: Tokenizer) -> list[str]:
    """Compare the tokenizer's vocabulary with the model's embedding matrix."""
    rows = int(word_embeddings(model).shape[0])
    size = len(tokenizer)
    if size > rows:
        return [f"tokenizer vocab size {size} exceeds the model's {rows} embedding rows"]
    padded = -(-size // EMBEDDING_ROW_PADDING) * EMBEDDING_ROW_PADDING
    if rows > padded:
        return [f"model has {rows} embedding rows but the tokenizer only {size} tokens (a different tokenizer?)"]
    return []


def _special_token_problems(model: PreTrainedModel, tokenizer: Tokenizer) -> list[str]:
    """Check that special token ids exist in the embedding matrix and agree with the model config."""
    rows = int(word_embeddings(model).shape[0])
    problems = []
    for name in ("pad", "bos", "eos", "cls", "sep", "unk", "mask"):
        token_id = getattr(tokenizer, f"{name}_token_id", None)
        if token_id is not None and not 0 <= token_id < rows:
            problems.append(f"{name}_token_id {token_id} is outside the {rows} embedding rows")
    if tokenizer.pad_token_id is None:
        problems.append("tokenizer has no pad token, so batches cannot be padded")
    for name in ("pad", "bos", "eos"):
        stated = getattr(model.config, f"{name}_token_id", None)
        actual = getattr(tokenizer, f"{name}_token_id", None)
        if stated is not None and actual is not None and stated != actual:
            problems.append(f"{name}_token_id is {actual} in the tokenizer but {stated} in the model config")
    return problems


def usable_positions(model: PreTrainedModel) -> int | None:
    """Return how many tokens the model's position embeddings hold (None if the config does not say)."""
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is None:
        return None
    if model.config.model_type in PADDING_OFFSET_MODEL_TYPES:
        return int(positions) - int(model.config.pad_token_id or 0) - 1
    return int(positions)


def _length_problems(model: PreTrainedModel, max_length: int | None) -> list[str]:
    """Check the requested max_length against the model's position embeddings."""
    usable = usable_positions(model)
    if max_length is None or usable is None or max_length <= usable:
        return []
    return [f"max_length {max_length} exceeds the {usable} positions the model supports"]
