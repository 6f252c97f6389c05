"""Shared by the drift tests: a real tiny XLM-R artifact, a project whose eval split it is referenced on,
and production traffic served by the real model-server runner and written by the real log sink.

No tests here; the modules that need these import them. Texts come from two generators: ``stable``
draws from the same distribution as the eval split (short product reviews in English and Spanish);
``shifted`` from another (long, travel-themed and with other words), so a correct detector stays quiet
on the first and fires on the second.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from labeling.models import Item, Label, Project
from modeling.models import Alias, ModelVersion
from tests.modeling.serving.harness import set_policy

LABELS = ["negative", "positive"]
_WORDS = {
    "en": {
        "subjects": ["The phone", "This cafe", "The train", "My laptop", "The hotel", "Our order"],
        "verbs": ["was", "seemed", "felt", "is"],
        "good": ["great", "lovely", "fast", "excellent", "clean"],
        "bad": ["awful", "slow", "broken", "dirty", "terrible"],
        "tails": ["today.", "again.", "this week.", "as usual.", "for once."],
    },
    "es": {
        "subjects": ["El teléfono", "Este café", "El tren", "Mi portátil", "El hotel", "Nuestro pedido"],
        "verbs": ["fue", "parecía", "estaba", "es"],
        "good": ["genial", "bonito", "rápido", "excelente", "limpio"],
        "bad": ["horrible", "lento", "roto", "sucio", "terrible"],
        "tails": ["hoy.", "otra vez.", "esta semana.", "como siempre.", "por fin."],
    },
}
_SHIFTED = {
    "en": ["mountain", "glacier", "itinerary", "passport", "volcano", "ferry", "visa", "hostel", "trail", "summit"],
    "es": ["montaña", "glaciar", "itinerario", "pasaporte", "volcán", "ferri", "visado", "albergue", "sendero"],
}


def stable_text(rng: random.Random, language: str) -> str:
    words = _WORDS[language]
    mood = rng.choice(["good", "bad"])
    return " ".join(
        [rng.choice(words["subjects"]), rng.choice(words["verbs"]), rng.choice(words[mood]), rng.choice(words["tails"])]
    )


def shifted_text(rng: random.Random, language: str) -> str:
    """A long travel story: other words, three to five times the length."""
    return " ".join(rng.choice(_SHIFTED[language]) for _ in range(rng.randint(14, 22))) + "."


def texts(kind: str, n: int, language: str, seed: int) -> list[str]:
    rng = random.Random(f"{kind}-{language}-{seed}")
    make = stable_text if kind == "stable" else shifted_text
    return [make(rng, language) for _ in range(n)]


@dataclass(frozen=True)
class DriftArtifact:
    path: Path
    manifest_sha256: str


@pytest.fixture(scope="session")
def drift_artifact_source(tmp_path_factory: pytest.TempPathFactory) -> DriftArtifact:
    """A real tiny XLM-R artifact (random weights, LABELS head), saved once per session."""
    from modeling.ml.artifacts import DataSnapshot, ManifestFields, save_artifact
    from modeling.ml.checkpoints import load_checkpoint
    from modeling.ml.config import TrainConfig
    from modeling.ml.tiny import build_tiny_xlmr

    root = tmp_path_factory.mktemp("drift")
    base = build_tiny_xlmr(root / "tiny-xlmr")
    checkpoint = load_checkpoint(str(base), labels=LABELS, offline=True, seed=3)
    fields = ManifestFields(
        base_checkpoint="tiny-xlmr",
        train_config=TrainConfig(max_length=48),
        data_snapshot=DataSnapshot(hash="0" * 64, n_train=0, n_eval=0),
        temperature=1.0,
    )
    saved = save_artifact(checkpoint.model, checkpoint.tokenizer, root / "v1", fields)
    return DriftArtifact(saved.path, saved.manifest_sha256)


@pytest.fixture
def drift_artifact(drift_artifact_source: DriftArtifact, tmp_path: Path) -> DriftArtifact:
    """A private copy: the reference job writes its projection file beside it."""
    path = tmp_path / "artifacts" / "v1"
    shutil.copytree(drift_artifact_source.path, path)
    return DriftArtifact(path, drift_artifact_source.manifest_sha256)


def add_eval_items(project: Project, per_language: int = 60, languages: tuple[str, ...] = ("en", "es")) -> None:
    """Add ``per_language`` distinct stable texts per language as gold eval items."""
    labels = {label.name: label for label in Label.objects.filter(project=project)}
    rows = []
    for language in languages:
        rng = random.Random(f"eval-{language}")
        chosen: dict[str, None] = {}
        while len(chosen) < per_language:
            chosen[stable_text(rng, language)] = None
        for n, text in enumerate(chosen):
            rows.append(
                Item(
                    project=project,
                    text=text,
                    content_hash=hashlib.sha256(text.encode()).hexdigest(),
                    language=language,
                    split=Item.Split.EVAL,
                    status=Item.Status.GOLD,
                    gold_label=labels[LABELS[n % 2]],
                )
            )
    Item.objects.bulk_create(rows)


def deploy(project: Project, artifact: DriftArtifact, *, number: int = 1, production: bool = True) -> ModelVersion:
    version = ModelVersion.objects.create(
        project=project,
        number=number,
        status=ModelVersion.Status.PRODUCTION if production else ModelVersion.Status.APPROVED,
        base_checkpoint="tiny-xlmr",
        artifact_path=str(artifact.path),
        manifest_sha256=artifact.manifest_sha256,
        train_config={"max_length": 48},
    )
    if production:
        Alias.objects.update_or_create(project=project, name=Alias.Name.PRODUCTION, defaults={"version": version})
    return version


def drift_project(project: Project, artifact: DriftArtifact, *, log_texts: bool = True) -> ModelVersion:
    """Give ``project`` LABELS, a bilingual eval split, a policy and ``artifact`` in production."""
    Label.objects.filter(project=project).delete()
    for i, name in enumerate(LABELS):
        Label.objects.create(project=project, name=name, hotkey=str(i + 1), order=i)
    add_eval_items(project)
    set_policy(project, audit_share=0.0, log_texts=log_texts)
    return deploy(project, artifact)


def build_reference(version: ModelVersion):
    """Queue and run the reference job in this process (the real task body); return the job."""
    from monitoring.services.reference import reference_enqueue
    from monitoring.tasks.drift import build_drift_reference
    from webapp.models import Job

    job = reference_enqueue(version=version)
    build_drift_reference(str(job.pk))
    return Job.objects.get(pk=job.pk)


def serve(
    project: Project,
    artifact: DriftArtifact,
    batches: dict[str, list[str]],
    *,
    at: datetime | None = None,
    log_text: bool = True,
) -> list[dict]:
    """Predict ``batches`` ({language: texts}) with the real runner and write the log with the real sink.

    ``at``: the time the rows are logged at (a past window); their ids, labels and outputs are the real ones.
    """
    from modeling.ml.batching import BatchPolicy
    from modeling.services.serving import prediction_log_write
    from modeling.serving.logbuffer import LogBuffer
    from modeling.serving.server import ModelServer, ModelSpec

    rows: list[dict] = []
    server = ModelServer(policy=BatchPolicy(max_wait_ms=1), log=LogBuffer(rows.extend, interval=0.02), threads=1)
    spec = ModelSpec(
        key=f"{project.pk}:production",
        path=str(artifact.path),
        version=1,
        manifest_sha256=artifact.manifest_sha256,
        max_length=48,
        device="cpu",
    )
    try:
        server.load(spec)
        for language, batch in batches.items():
            meta = {"project": project.pk, "route": "production", "language": language, "log_text": log_text}
            for start in range(0, len(batch), 32):
                server.predict(spec.key, batch[start : start + 32], meta)
        assert server.flush()
    finally:
        server.close()
    stamp = at.timestamp() if at is not None else time.time()
    for row in rows:
        row["created_at"] = stamp
    prediction_log_write(rows)
    return rows
