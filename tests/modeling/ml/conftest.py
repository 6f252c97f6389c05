"""Tiny checkpoints built once per session, a separable synthetic dataset, and one trained model to share."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from modeling.ml.checkpoints import LoadedCheckpoint, load_checkpoint
from modeling.ml.config import TrainConfig
from modeling.ml.tiny import build_tiny_roberta, build_tiny_xlmr
from modeling.ml.train import TrainResult, train

# Other suites share this 2-core machine; one intra-op thread keeps the tiny models fast and fair.
torch.set_num_threads(1)

LABELS = ["positive", "negative"]
_POSITIVE = ["love", "great", "excellent", "wonderful", "happy"]
_NEGATIVE = ["hate", "awful", "terrible", "bad", "sad"]
_FILLER = ["the", "phone", "train", "cafe", "report", "park"]

# Settings under which both tiny checkpoints reliably learn the dataset within ~50 steps.
FAST = TrainConfig(
    lr=5e-3,
    epochs=6,
    batch_size=16,
    warmup_ratio=0.1,
    eval_every=8,
    max_length=64,
    num_threads=1,
    early_stopping_patience=None,
)


@dataclass(frozen=True)
class Dataset:
    """Texts with binary sentiment labels and a language tag per text."""

    texts: list[str]
    labels: list[int]
    languages: list[str]


def make_dataset(n: int, seed: int) -> Dataset:
    """Return `n` texts whose label is decided by which cue words they contain."""
    rng = random.Random(seed)
    texts, labels, languages = [], [], []
    for i in range(n):
        label = i % 2
        words = rng.sample(_POSITIVE if label == 0 else _NEGATIVE, 2) + rng.sample(_FILLER, 3)
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
        languages.append("en" if i % 3 else "es")
    return Dataset(texts, labels, languages)


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture(scope="session")
def tiny_xlmr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"))


@pytest.fixture(scope="session")
def train_data() -> Dataset:
    return make_dataset(128, seed=0)


@pytest.fixture(scope="session")
def eval_data() -> Dataset:
    return make_dataset(40, seed=1)


def load_tiny(path: Path) -> LoadedCheckpoint:
    """Load a tiny checkpoint offline with the test label set and a fixed head init."""
    return load_checkpoint(path, labels=LABELS, offline=True, seed=0)


@dataclass(frozen=True)
class Trained:
    """A trained tiny RoBERTa with its checkpoint (tokenizer) and result."""

    checkpoint: LoadedCheckpoint
    result: TrainResult


@pytest.fixture(scope="session")
def trained_roberta(tiny_roberta_dir: Path, train_data: Dataset, eval_data: Dataset) -> Trained:
    """Train once per session; tests that reuse the model must not modify it."""
    checkpoint = load_tiny(tiny_roberta_dir)
    result = train(
        checkpoint.model,
        checkpoint.tokenizer,
        train_data.texts,
        train_data.labels,
        FAST,
        eval_texts=eval_data.texts,
        eval_labels=eval_data.labels,
        eval_languages=eval_data.languages,
    )
    return Trained(checkpoint, result)
