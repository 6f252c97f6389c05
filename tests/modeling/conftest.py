"""Tiny checkpoints built once per session by the management command, and a project with gold data to train on."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command

from labeling.models import Item, Label, Project
from tests.factories import ProjectFactory

LABELS = ["negative", "positive"]
_CUES = {"negative": ["hate", "awful", "terrible", "bad", "sad"], "positive": ["love", "great", "excellent", "happy"]}
_FILLER = ["the", "phone", "train", "cafe", "report", "park", "today", "again"]

# Hyperparameters under which the tiny checkpoints learn the cue words in a few dozen steps, in seconds.
TINY_OVERRIDES = {
    "lr": 5e-3,
    "epochs": 3,
    "batch_size": 16,
    "max_length": 32,
    "eval_every": 3,
    "num_threads": 1,
    "warmup_ratio": 0.1,
    "early_stopping_patience": None,
}


@dataclass(frozen=True)
class TinyCheckpoints:
    roberta: Path
    xlmr: Path


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> TinyCheckpoints:
    """Build both tiny checkpoints once per session with ``manage.py build_tiny_checkpoints``."""
    out = tmp_path_factory.mktemp("tiny-checkpoints")
    call_command("build_tiny_checkpoints", str(out))
    return TinyCheckpoints(roberta=out / "tiny-roberta", xlmr=out / "tiny-xlmr")


@pytest.fixture
def artifact_root(settings, tmp_path: Path) -> Path:
    """A private ARTIFACT_ROOT (the worker harness passes settings.ARTIFACT_ROOT to worker processes)."""
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return settings.ARTIFACT_ROOT


@dataclass(frozen=True)
class PoolSizes:
    train: int = 48
    eval: int = 16
    unlabeled: int = 24
    queued: int = 6
    labeled_pool: int = 4


def _text(rng: random.Random, label: str, n: int) -> str:
    words = rng.sample(_CUES[label], 2) + rng.sample(_FILLER, 3)
    rng.shuffle(words)
    return " ".join(words) + f" #{n}"


def fill_project(project: Project, sizes: PoolSizes = PoolSizes(), seed: int = 0) -> None:
    """Add gold train/eval items, an unlabeled and queued pool, and labeled pool items scoring must skip."""
    rng = random.Random(seed)
    labels = {label.name: label for label in Label.objects.filter(project=project)}
    rows: list[Item] = []

    def add(split: str, status: str, gold: bool, count: int, language: str = "en") -> None:
        for _ in range(count):
            name = LABELS[len(rows) % 2]
            text = _text(rng, name, len(rows))
            rows.append(
                Item(
                    project=project,
                    text=text,
                    content_hash=hashlib.sha256(text.encode()).hexdigest(),
                    language=language if len(rows) % 3 else "es",
                    split=split,
                    status=status,
                    gold_label=labels[name] if gold else None,
                )
            )

    add(Item.Split.TRAIN, Item.Status.GOLD, True, sizes.train)
    add(Item.Split.EVAL, Item.Status.GOLD, True, sizes.eval)
    add(Item.Split.POOL, Item.Status.UNLABELED, False, sizes.unlabeled)
    add(Item.Split.POOL, Item.Status.QUEUED, False, sizes.queued)
    add(Item.Split.POOL, Item.Status.LABELED, False, sizes.labeled_pool)
    Item.objects.bulk_create(rows)


def make_project(slug: str, checkpoint: Path, sizes: PoolSizes = PoolSizes()) -> Project:
    project = ProjectFactory(slug=slug, base_checkpoint=str(checkpoint), labels=LABELS)
    fill_project(project, sizes)
    return project


@pytest.fixture
def roberta_project(db, tiny_checkpoints: TinyCheckpoints, project) -> Project:
    """The shared ``project`` fixture, pointed at tiny RoBERTa and filled with gold and pool items."""
    Label.objects.filter(project=project).delete()
    for i, name in enumerate(LABELS):
        Label.objects.create(project=project, name=name, hotkey=str(i + 1), order=i)
    project.base_checkpoint = str(tiny_checkpoints.roberta)
    project.save(update_fields=["base_checkpoint"])
    fill_project(project)
    return project


# --- the prediction API's tests: one real model server per test module ----------------------------


@pytest.fixture(scope="module")
def model_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """``manage.py model_server`` for the module, with an hour-long log interval: rows reach the database
    only when a test (or the feedback endpoint) asks for a flush. A module may define its own."""
    from tests.modeling.serving.harness import running_model_server

    env = {"PREDICTION_LOG_FLUSH_MS": "3600000", "MODEL_SERVER_MAX_WAIT_MS": "1"}
    with django_db_blocker.unblock(), running_model_server(tmp_path_factory.mktemp("ms"), env=env) as server:
        yield server


@pytest.fixture
def fresh_serving_state(settings, tmp_path):
    """Policies and aliases change within a test: read them every request; own rate-limit counters."""
    settings.API_SERVING_STATE_TTL_MS = 0
    settings.API_AUTH_CACHE_MS = 0
    settings.API_RATE_LIMIT_STORE = f"file://{tmp_path / 'ratelimit'}"
