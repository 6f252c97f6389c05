"""Two real (tiny, untrained) RoBERTa artifacts with different heads: enough to tell versions apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from modeling.ml.artifacts import DataSnapshot, ManifestFields, save_artifact
from modeling.ml.checkpoints import load_checkpoint
from modeling.ml.config import TrainConfig
from modeling.ml.tiny import build_tiny_roberta
from modeling.serving.server import ModelSpec

LABELS = ["negative", "neutral", "positive"]


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest_sha256: str

    def spec(self, key: str, version: int) -> ModelSpec:
        return ModelSpec(
            key=key, path=str(self.path), version=version, manifest_sha256=self.manifest_sha256, max_length=64
        )


def _artifact(base: Path, dest: Path, seed: int) -> Artifact:
    checkpoint = load_checkpoint(str(base), labels=LABELS, offline=True, seed=seed)
    fields = ManifestFields(
        base_checkpoint="tiny-roberta",
        train_config=TrainConfig(max_length=64),
        data_snapshot=DataSnapshot(hash="0" * 64, n_train=0, n_eval=0),
        temperature=1.5,
    )
    saved = save_artifact(checkpoint.model, checkpoint.tokenizer, dest, fields)
    return Artifact(saved.path, saved.manifest_sha256)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Artifact, Artifact]:
    root = tmp_path_factory.mktemp("serving")
    base = build_tiny_roberta(root / "tiny-roberta")
    return _artifact(base, root / "v1", seed=1), _artifact(base, root / "v2", seed=2)
