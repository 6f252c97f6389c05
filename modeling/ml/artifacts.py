"""Save and load model artifacts: weights + tokenizer + a manifest of hashes, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tokenizers
import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerBase as Tokenizer

from modeling.ml.checkpoints import label_names, validate_pair
from modeling.ml.config import InferenceConfig, TrainConfig
from modeling.ml.errors import ArtifactError, CheckpointError
from modeling.ml.inference import Predictions, ScoringModel, is_quantized, predict, quantize_int8
from modeling.ml.runtime import set_mode, to_device

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataSnapshot:
    """Which training data produced the model: an order-independent hash and the counts."""

    hash: str
    n_train: int
    n_eval: int
    label_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ManifestFields:
    """What the caller knows about a trained model and wants recorded beside it."""

    base_checkpoint: str
    train_config: TrainConfig
    data_snapshot: DataSnapshot
    metrics: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0


@dataclass
class Classifier:
    """A verified, loaded artifact: model, tokenizer, labels, temperature and manifest."""

    model: PreTrainedModel
    tokenizer: Tokenizer
    labels: list[str]
    temperature: float
    manifest: dict[str, Any]
    path: Path
    _quantized: dict[str, ScoringModel] = field(default_factory=dict)  # int8 copies, per backend

    def predict(
        self,
        texts: Sequence[str],
        config: InferenceConfig | None = None,
        *,
        return_embeddings: bool = False,
        return_unk_rates: bool = False,
    ) -> Predictions:
        """Return calibrated predictions for `texts` (int8 copy made once per backend, on first request)."""
        cfg = config or InferenceConfig()
        model: ScoringModel = self.model
        if cfg.quantize_int8:
            if cfg.int8_backend not in self._quantized:
                self._quantized[cfg.int8_backend] = quantize_int8(
                    self.model, backend=cfg.int8_backend, threads=cfg.num_threads
                )
            model = self._quantized[cfg.int8_backend]
        return predict(
            model,
            self.tokenizer,
            texts,
            cfg,
            temperature=self.temperature,
            return_embeddings=return_embeddings,
            return_unk_rates=return_unk_rates,
        )


def snapshot_hash(texts: Sequence[str], labels: Sequence[int | str]) -> str:
    """Return a sha256 identifying the multiset of (text, label) pairs, independent of their order.

    Each pair is hashed on its own (length-prefixed, so no two pairs collide by concatenation) and
    the sorted pair digests are hashed together: the same rows fetched in another order hash alike.
    """
    if len(texts) != len(labels):
        raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
    digests = sorted(_pair_digest(text, str(label)) for text, label in zip(texts, labels, strict=True))
    outer = hashlib.sha256()
    for digest in digests:
        outer.update(digest)
    return outer.hexdigest()


def _pair_digest(text: str, label: str) -> bytes:
    """Return the sha256 digest of one length-prefixed (text, label) pair."""
    inner = hashlib.sha256()
    for part in (text.encode("utf-8"), label.encode("utf-8")):
        inner.update(len(part).to_bytes(8, "big"))
        inner.update(part)
    return inner.digest()


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class SavedArtifact:
    """Where an artifact was written and the sha256 of its manifest file (store it to pin the version)."""

    path: Path
    manifest_sha256: str


def save_artifact(
    model: PreTrainedModel, tokenizer: Tokenizer, dest_dir: str | Path, manifest_fields: ManifestFields
) -> SavedArtifact:
    """Write weights (safetensors), tokenizer and manifest.json to `dest_dir`, all or nothing.

    Everything is written to a temporary sibling directory, then renamed into place, so readers never
    see a half-written version. An existing `dest_dir` is refused, never overwritten.
    """
    dest = Path(dest_dir)
    if dest.exists():
        raise ArtifactError(f"{dest} already exists; artifact versions are immutable")
    if is_quantized(model):
        raise ArtifactError("save the fp32 model; int8 quantization is applied at load time")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        _write(model, tokenizer, staging, manifest_fields)
        _move_into_place(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SavedArtifact(path=dest, manifest_sha256=file_sha256(dest / MANIFEST))


def _write(model: PreTrainedModel, tokenizer: Tokenizer, staging: Path, fields: ManifestFields) -> None:
    """Write model, tokenizer and manifest into the staging directory."""
    model.save_pretrained(staging, safe_serialization=True)
    model_files = _listing(staging)
    tokenizer.save_pretrained(staging)
    tokenizer_files = _listing(staging) - model_files
    manifest = _manifest(model, fields, staging, model_files, tokenizer_files)
    manifest["checksum"] = manifest_checksum(manifest)
    path = staging / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    _fsync_tree(staging)


def _move_into_place(staging: Path, dest: Path) -> None:
    """Rename the staging directory to `dest` (atomic on one filesystem), refusing to replace a version."""
    if dest.exists():
        raise ArtifactError(f"{dest} appeared while saving; artifact versions are immutable")
    try:
        # rename(2) replaces only an *empty* directory, and fails on a non-empty one: no version is lost.
        os.rename(staging, dest)
    except OSError as exc:
        raise ArtifactError(f"cannot move the artifact into {dest}: {exc}") from exc


def _fsync_tree(directory: Path) -> None:
    """Flush every file so the rename never publishes a directory whose data is still in the page cache."""
    for path in directory.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())


def _listing(directory: Path) -> set[str]:
    """Return the names of the plain files directly inside `directory`."""
    return {path.name for path in directory.iterdir() if path.is_file()}


def _manifest(
    model: PreTrainedModel, fields: ManifestFields, root: Path, model_files: set[str], tokenizer_files: set[str]
) -> dict[str, Any]:
    """Return the manifest: provenance, label map, file hashes, config, data, metrics and versions."""
    return {
        "format_version": FORMAT_VERSION,
        "base_checkpoint": fields.base_checkpoint,
        "labels": label_names(model),
        "files": {
            "model": {name: file_sha256(root / name) for name in sorted(model_files)},
            "tokenizer": {name: file_sha256(root / name) for name in sorted(tokenizer_files)},
        },
        "train_config": fields.train_config.to_dict(),
        "data_snapshot": {
            "hash": fields.data_snapshot.hash,
            "n_train": fields.data_snapshot.n_train,
            "n_eval": fields.data_snapshot.n_eval,
            "label_counts": dict(fields.data_snapshot.label_counts),
        },
        "metrics": fields.metrics,
        "temperature": float(fields.temperature),
        "versions": library_versions(),
    }


def library_versions() -> dict[str, str]:
    """Return the versions that determine whether an artifact loads and scores identically."""
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
    }


def manifest_checksum(manifest: dict[str, Any]) -> str:
    """Return the sha256 of the manifest's canonical JSON, excluding its own `checksum` field."""
    body = {key: value for key, value in manifest.items() if key != "checksum"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_manifest(path: str | Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Return the parsed, self-consistent manifest of an artifact directory, or raise ArtifactError.

    The embedded checksum catches edits to any field (temperature, metrics, hashes); only the
    `expected_sha256` recorded at save time also catches a rewrite that recomputed the checksum.
    """
    manifest_path = Path(path) / MANIFEST
    try:
        raw = manifest_path.read_bytes()
        manifest = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {manifest_path}: {exc}") from exc
    if expected_sha256 is not None and hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise ArtifactError(f"{manifest_path} is not the manifest that was saved (sha256 differs)")
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{manifest_path} is not a format-{FORMAT_VERSION} manifest")
    if manifest.get("checksum") != manifest_checksum(manifest):
        raise ArtifactError(f"{manifest_path} was modified after it was written (checksum mismatch)")
    return manifest


def verify_artifact(path: str | Path, expected_manifest_sha256: str | None = None) -> dict[str, Any]:
    """Check the manifest, every hashed file, and that no unlisted file sits beside them; return the manifest."""
    root = Path(path)
    manifest = read_manifest(root, expected_manifest_sha256)
    listed = _listed_hashes(manifest)
    for name, expected in listed.items():
        target = root / name
        if not target.is_file():
            raise ArtifactError(f"{name} is listed in the manifest but missing from {root}")
        if file_sha256(target) != expected:
            raise ArtifactError(f"{name} does not match its sha256 in the manifest: the artifact was modified")
    unexpected = _listing(root) - set(listed) - {MANIFEST}
    if unexpected:
        raise ArtifactError(f"files not covered by the manifest: {sorted(unexpected)}")
    return manifest


def _listed_hashes(manifest: dict[str, Any]) -> dict[str, str]:
    """Return {file name: sha256} over every group in the manifest, refusing a malformed listing."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files.get("model"):
        raise ArtifactError("the manifest lists no model files")
    listed: dict[str, str] = {}
    for group in files.values():
        if not isinstance(group, dict):
            raise ArtifactError("the manifest's file listing is malformed")
        for name, digest in group.items():
            if Path(name).name != name:
                raise ArtifactError(f"manifest file name {name!r} points outside the artifact")
            listed[name] = str(digest)
    return listed


def load_artifact(path: str | Path, device: str = "cpu", *, expected_manifest_sha256: str | None = None) -> Classifier:
    """Verify an artifact's hashes and label map, then load it onto `device` as a Classifier."""
    root = Path(path)
    manifest = verify_artifact(root, expected_manifest_sha256)
    try:
        model: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(root, local_files_only=True)
        tokenizer: Tokenizer = AutoTokenizer.from_pretrained(  # type: ignore[no-untyped-call]
            root, local_files_only=True, use_fast=True
        )
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot load the artifact at {root}: {exc}") from exc
    labels = label_names(model)
    if labels != manifest.get("labels"):
        raise ArtifactError(f"label map mismatch: config has {labels}, manifest has {manifest.get('labels')}")
    try:
        validate_pair(model, tokenizer)
    except CheckpointError as exc:
        raise ArtifactError(f"the artifact at {root} is inconsistent: {exc}") from exc
    temperature = float(manifest.get("temperature", 1.0))
    if not 0 < temperature < float("inf"):
        raise ArtifactError(f"the manifest's temperature {temperature} is not a positive finite number")
    to_device(model, device)
    set_mode(model, training=False)
    return Classifier(model, tokenizer, labels, temperature, manifest, root)
