"""Shared by the release and comparison tests: real tiny artifacts trained once per session, versions
pointing at them, and comparisons computed by the real statistics on chosen predictions.

No tests here; the modules that need these import them (``from tests.modeling.test_releases_fixtures import …``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labeling.models import Item, Project
from modeling.ml.config import TrainConfig
from modeling.models import Comparison, ModelVersion
from modeling.services.comparison import Scored, comparison_results, eval_rows
from modeling.services.releases import comparison_gates, gate_dict, policy_for, production_version
from tests.modeling.conftest import LABELS, TINY_OVERRIDES, TinyCheckpoints

_CUES = {"negative": ["hate", "awful", "terrible", "bad", "sad"], "positive": ["love", "great", "excellent", "happy"]}
_FILLER = ["the", "phone", "train", "cafe", "report", "park", "today", "again"]


@dataclass(frozen=True)
class TinyArtifact:
    path: Path
    manifest_sha256: str
    train_config: dict[str, Any]
    metrics: dict[str, Any]
    temperature: float


@dataclass(frozen=True)
class ReleaseArtifacts:
    """A well-trained and a barely-trained tiny RoBERTa over LABELS (the cue words decide the label)."""

    strong: TinyArtifact
    weak: TinyArtifact


def _texts(n: int, seed: int) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = rng.sample(_CUES[LABELS[label]], 2) + rng.sample(_FILLER, 3)
        rng.shuffle(words)
        texts.append(" ".join(words) + f" #{seed}-{i}")
        labels.append(label)
    return texts, labels


def _train(checkpoint: Path, dest: Path, config: TrainConfig) -> TinyArtifact:
    from modeling.ml.artifacts import DataSnapshot, ManifestFields, save_artifact, snapshot_hash
    from modeling.ml.checkpoints import load_checkpoint
    from modeling.ml.train import train

    texts, labels = _texts(48, seed=11)
    eval_texts, eval_labels = _texts(16, seed=12)
    loaded = load_checkpoint(checkpoint, labels=LABELS, max_length=config.max_length, seed=config.seed)
    result = train(
        loaded.model, loaded.tokenizer, texts, labels, config, eval_texts=eval_texts, eval_labels=eval_labels
    )
    assert result.evaluation is not None
    metrics = {"eval": result.evaluation.to_dict()}
    fields = ManifestFields(
        base_checkpoint=str(checkpoint),
        train_config=config,
        data_snapshot=DataSnapshot(snapshot_hash(texts, labels), len(texts), len(eval_texts), {}),
        metrics=metrics,
        temperature=result.temperature,
    )
    saved = save_artifact(result.model, loaded.tokenizer, dest, fields)
    return TinyArtifact(saved.path, saved.manifest_sha256, config.to_dict(), metrics, result.temperature)


@pytest.fixture(scope="session")
def release_artifacts(tiny_checkpoints: TinyCheckpoints, tmp_path_factory: pytest.TempPathFactory) -> ReleaseArtifacts:
    """Train the two tiny versions once per session (a few seconds on one thread)."""
    root = tmp_path_factory.mktemp("release-artifacts")
    strong = TrainConfig(**{**TINY_OVERRIDES, "epochs": 8})
    weak = TrainConfig(**{**TINY_OVERRIDES, "lr": 1e-9, "epochs": 1})
    return ReleaseArtifacts(
        strong=_train(tiny_checkpoints.roberta, root / "strong", strong),
        weak=_train(tiny_checkpoints.roberta, root / "weak", weak),
    )


def make_version(
    project: Project,
    number: int,
    artifact: TinyArtifact | None = None,
    *,
    status: str = ModelVersion.Status.CANDIDATE,
    created_by: Any = None,
) -> ModelVersion:
    """A trained version row; with an artifact, it points at it (so a comparison job can load it)."""
    return ModelVersion.objects.create(
        project=project,
        number=number,
        status=status,
        base_checkpoint="tiny-roberta",
        artifact_path=str(artifact.path) if artifact else f"/nonexistent/v{number}",
        manifest_sha256=artifact.manifest_sha256 if artifact else "0" * 64,
        train_config=artifact.train_config if artifact else {"max_length": 32},
        metrics=artifact.metrics if artifact else {},
        temperature=artifact.temperature if artifact else 1.0,
        created_by=created_by,
    )


def eval_items(project: Project, n: int = 40) -> list[Item]:
    """Add ``n`` gold eval items alternating LABELS, two in three English and the rest Spanish."""
    import hashlib

    labels = {label.name: label for label in project.labels.all()}
    rows = []
    for i in range(n):
        text = f"eval item {i} of {project.slug}"
        rows.append(
            Item(
                project=project,
                text=text,
                content_hash=hashlib.sha256(text.encode()).hexdigest(),
                language="en" if i % 3 else "es",
                split=Item.Split.EVAL,
                status=Item.Status.GOLD,
                gold_label=labels[LABELS[i % 2]],
            )
        )
    return Item.objects.bulk_create(rows)


def _scored(version: ModelVersion, predicted: list[int], confidence: float = 0.9) -> Scored:
    k = len(LABELS)
    probs = np.full((len(predicted), k), (1 - confidence) / (k - 1))
    probs[np.arange(len(predicted)), predicted] = confidence
    return Scored(
        version=version.number,
        probabilities=probs,
        labels=np.asarray(predicted, dtype=np.int64),
        size={"parameters": 1000, "bytes": 4000, "weights_bytes": 3900},
        latency={
            "batch_size": 32,
            "runs": 5,
            "median_ms": 2.0,
            "min_ms": 1.5,
            "max_ms": 3.0,
            "per_text_ms": 0.0625,
            "device": "cpu",
        },
    )


def stored_comparison(
    candidate: ModelVersion, candidate_correct: float, production_correct: float | None = None, *, user: Any = None
) -> Comparison:
    """A succeeded comparison of ``candidate`` with the current production version, computed by the real
    statistics from predictions right on the first ``correct`` share of the eval items (wrong on the rest)."""
    project = candidate.project
    production = production_version(project=project)
    rows = eval_rows(project)
    gold = [LABELS.index(name) for name in rows.gold]

    def predicted(share: float) -> list[int]:
        right = round(share * len(gold))
        return [g if i < right else 1 - g for i, g in enumerate(gold)]

    prod_scored = None
    if production is not None:
        prod_scored = _scored(production, predicted(production_correct if production_correct is not None else 1.0))
    results = comparison_results(
        rows=rows,
        y_true=gold,
        labels=LABELS,
        candidate=_scored(candidate, predicted(candidate_correct)),
        production=prod_scored,
    )
    results["device"] = "cpu"
    comparison = Comparison(
        project=project, candidate=candidate, production=production, status=Comparison.Status.SUCCEEDED, created_by=user
    )
    comparison.results = results
    results["gates"] = [
        gate_dict(g) for g in comparison_gates(comparison=comparison, policy=policy_for(project=project))
    ]
    comparison.save()
    return comparison
