"""Scoring one version on the eval texts inside the job: its verified artifact, scored as it was
evaluated at training time (its max length and truncation), its size on disk, and, when the policy
serves int8, the paired delta of the int8 copy against fp32 on CPU. torch and the model code are
imported here, inside the functions, never at import time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modeling.ml.compare import quantization_compare
from modeling.models import ModelVersion
from modeling.services.comparison.results import N_RESAMPLES, EvalRows, Scored
from webapp.errors import ApplicationError

if TYPE_CHECKING:
    from modeling.ml.artifacts import Classifier
    from modeling.ml.config import InferenceConfig


SCORING_BATCH = 64


def _label_ids(rows: EvalRows, labels: list[str], version: ModelVersion) -> list[int]:
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted({name for name in rows.gold if name not in index})
    if unknown:
        raise ApplicationError(
            f"Eval items carry labels v{version.number} does not predict: {unknown}. Train a new version.",
            code="labels_changed",
        )
    return [index[name] for name in rows.gold]


def _load(version: ModelVersion) -> Classifier:
    """Load a version's artifact, refusing one whose files or manifest changed since it was saved."""
    from modeling.ml.artifacts import load_artifact
    from modeling.ml.errors import ArtifactError

    if not version.artifact_path or not version.manifest_sha256:
        raise ApplicationError(f"v{version.number} has no saved artifact to score with.", code="artifact_missing")
    try:
        return load_artifact(version.artifact_path, expected_manifest_sha256=version.manifest_sha256)
    except ArtifactError as exc:
        raise ApplicationError(
            f"The artifact of v{version.number} failed verification and was not used: {exc}", code=exc.code
        ) from exc


def _inference_config(version: ModelVersion) -> InferenceConfig:
    """Score as the version was evaluated at training time: its max length and truncation."""
    from modeling.ml.config import InferenceConfig

    config = version.train_config or {}
    truncation = config.get("truncation") if config.get("truncation") in ("head", "head_tail") else "head"
    return InferenceConfig(
        batch_size=SCORING_BATCH,
        max_length=int(config.get("max_length", 256)),
        truncation=truncation,
        head_tokens=config.get("head_tokens"),
        device="auto",
    )


@dataclass
class Loaded:
    """A loaded version, its outputs on the eval items, and the config it is timed with.

    ``int8_config`` is set when the policy serves int8: the int8 copy is timed beside the fp32 model.
    """

    classifier: Classifier
    config: InferenceConfig
    labels: list[str]
    scored: Scored
    int8_config: InferenceConfig | None = None


def _score(version: ModelVersion, rows: EvalRows, *, int8: bool) -> Loaded:
    """Load the version, score the eval texts and measure its size (and the int8 delta when asked)."""
    classifier = _load(version)
    config = _inference_config(version)
    predictions = classifier.predict(rows.texts, config)
    scored = Scored(
        version=version.number,
        probabilities=np.asarray(predictions.probabilities, dtype=np.float64),
        labels=np.asarray(predictions.labels, dtype=np.int64),
        size=_size(classifier, Path(version.artifact_path)),
        latency={},
    )
    loaded = Loaded(classifier, config, list(classifier.labels), scored)
    if int8:
        _score_int8(loaded, rows, version)
    return loaded


def _score_int8(loaded: Loaded, rows: EvalRows, version: ModelVersion) -> None:
    """Score the eval texts with the int8 copy the model server would serve; store the paired delta.

    The model server quantizes on CPU from fp32 weights, so fp32 on CPU is the reference: the
    version's own outputs when this job scored on CPU, otherwise a second fp32 pass on CPU (a GPU's
    bf16/fp16 outputs would mix a precision change into the quantization delta).
    """
    classifier, scored = loaded.classifier, loaded.scored
    cpu = dataclasses.replace(loaded.config, device="cpu", precision="fp32")
    if _device(classifier) == "cpu":
        fp32 = scored.probabilities
    else:
        fp32 = np.asarray(classifier.predict(rows.texts, cpu).probabilities, dtype=np.float64)
    loaded.int8_config = dataclasses.replace(cpu, quantize_int8=True)
    int8 = np.asarray(classifier.predict(rows.texts, loaded.int8_config).probabilities, dtype=np.float64)
    gold = _label_ids(rows, classifier.labels, version)
    delta = quantization_compare(gold, fp32, int8, len(classifier.labels), n_resamples=N_RESAMPLES)
    scored.int8 = {**dataclasses.asdict(delta), "latency": None}


def _device(classifier: Classifier) -> str:
    return next(classifier.model.parameters()).device.type


def _size(classifier: Classifier, path: Path) -> dict[str, Any]:
    files = [f for f in path.iterdir() if f.is_file()]
    return {
        "parameters": int(sum(p.numel() for p in classifier.model.parameters())),
        "bytes": int(sum(f.stat().st_size for f in files)),
        "weights_bytes": int(sum(f.stat().st_size for f in files if f.suffix == ".safetensors")),
    }
