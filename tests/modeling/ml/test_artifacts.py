"""Artifacts: train, calibrate, save, reload with hash checks, predict the same; refuse tampering."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from modeling.ml.artifacts import (
    DataSnapshot,
    ManifestFields,
    SavedArtifact,
    load_artifact,
    manifest_checksum,
    save_artifact,
    snapshot_hash,
)
from modeling.ml.config import InferenceConfig, TrainConfig
from modeling.ml.errors import ArtifactError
from modeling.ml.inference import predict
from tests.modeling.ml.conftest import FAST, LABELS, Dataset, Trained

ONE_THREAD = InferenceConfig(num_threads=1, max_length=64)


def _fields(trained: Trained, train_data: Dataset, eval_data: Dataset) -> ManifestFields:
    assert trained.result.evaluation is not None
    counts = Counter(LABELS[y] for y in train_data.labels)
    return ManifestFields(
        base_checkpoint="tiny-roberta",
        train_config=FAST,
        data_snapshot=DataSnapshot(
            hash=snapshot_hash(train_data.texts, train_data.labels),
            n_train=len(train_data.texts),
            n_eval=len(eval_data.texts),
            label_counts=dict(counts),
        ),
        metrics=trained.result.evaluation.to_dict(),
        temperature=trained.result.temperature,
    )


@pytest.fixture
def saved(tmp_path: Path, trained_roberta: Trained, train_data: Dataset, eval_data: Dataset) -> SavedArtifact:
    checkpoint = trained_roberta.checkpoint
    fields = _fields(trained_roberta, train_data, eval_data)
    return save_artifact(checkpoint.model, checkpoint.tokenizer, tmp_path / "versions" / "v1", fields)


def test_reloaded_artifact_predicts_the_same_calibrated_probabilities(
    saved: SavedArtifact, trained_roberta: Trained, eval_data: Dataset
) -> None:
    classifier = load_artifact(saved.path, expected_manifest_sha256=saved.manifest_sha256)
    checkpoint = trained_roberta.checkpoint
    before = predict(
        checkpoint.model, checkpoint.tokenizer, eval_data.texts, ONE_THREAD, temperature=classifier.temperature
    )
    after = classifier.predict(eval_data.texts, ONE_THREAD)
    np.testing.assert_allclose(after.probabilities, before.probabilities, atol=1e-6)
    assert classifier.labels == LABELS
    assert classifier.temperature != 1.0  # the fitted temperature travelled with the artifact


def test_manifest_records_provenance_hashes_config_data_and_versions(saved: SavedArtifact, train_data: Dataset) -> None:
    manifest = json.loads((saved.path / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert manifest["labels"] == LABELS
    assert set(manifest["files"]["model"]) == {"config.json", "model.safetensors"}
    assert "tokenizer.json" in manifest["files"]["tokenizer"]
    assert all(len(digest) == 64 for group in manifest["files"].values() for digest in group.values())
    assert TrainConfig.from_dict(manifest["train_config"]) == FAST
    assert manifest["data_snapshot"]["hash"] == snapshot_hash(train_data.texts, train_data.labels)
    assert manifest["data_snapshot"]["n_train"] == 128
    assert set(manifest["versions"]) == {"torch", "transformers", "tokenizers", "python"}
    assert manifest["metrics"]["per_language"]["es"]["n"] > 0
    assert manifest["checksum"] == manifest_checksum(manifest)


def test_tampered_weights_are_refused(saved: SavedArtifact) -> None:
    weights = saved.path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.safetensors does not match its sha256"):
        load_artifact(saved.path)


def test_tampered_tokenizer_file_is_refused(saved: SavedArtifact) -> None:
    path = saved.path / "tokenizer.json"
    path.write_text(path.read_text().replace('"<unk>"', '"<UNK>"'))
    with pytest.raises(ArtifactError, match=r"tokenizer\.json does not match"):
        load_artifact(saved.path)


def test_edited_manifest_is_refused(saved: SavedArtifact) -> None:
    path = saved.path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["temperature"] = 0.5
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(saved.path)


def test_a_rewritten_manifest_with_a_fresh_checksum_fails_the_pinned_hash(saved: SavedArtifact) -> None:
    path = saved.path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["temperature"] = 0.5
    manifest["checksum"] = manifest_checksum(manifest)
    path.write_text(json.dumps(manifest))
    load_artifact(saved.path)  # self-consistent, so only the pinned hash can tell
    with pytest.raises(ArtifactError, match="not the manifest that was saved"):
        load_artifact(saved.path, expected_manifest_sha256=saved.manifest_sha256)


def test_label_map_that_disagrees_with_the_config_is_refused(saved: SavedArtifact) -> None:
    path = saved.path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["labels"] = list(reversed(LABELS))
    manifest["checksum"] = manifest_checksum(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="label map mismatch"):
        load_artifact(saved.path)


def test_an_unlisted_file_beside_the_weights_is_refused(saved: SavedArtifact) -> None:
    (saved.path / "pytorch_model.bin").write_bytes(b"not listed")
    with pytest.raises(ArtifactError, match="not covered by the manifest"):
        load_artifact(saved.path)


def test_an_existing_version_is_never_overwritten(
    saved: SavedArtifact, trained_roberta: Trained, train_data: Dataset, eval_data: Dataset
) -> None:
    before = (saved.path / "manifest.json").read_bytes()
    checkpoint = trained_roberta.checkpoint
    with pytest.raises(ArtifactError, match="already exists"):
        save_artifact(
            checkpoint.model, checkpoint.tokenizer, saved.path, _fields(trained_roberta, train_data, eval_data)
        )
    assert (saved.path / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in saved.path.parent.iterdir()) == ["v1"]  # no staging directory left behind


def test_snapshot_hash_ignores_order_but_not_content() -> None:
    base = snapshot_hash(["a", "b", "c"], [0, 1, 0])
    assert snapshot_hash(["c", "a", "b"], [0, 0, 1]) == base
    assert snapshot_hash(["a", "b", "c"], [0, 1, 1]) != base
    assert snapshot_hash(["ab", "c"], [0, 0]) != snapshot_hash(["a", "bc"], [0, 0])
