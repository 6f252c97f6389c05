"""Drift descriptors in the prediction log: the projection beside the artifact, unknown-token rates,
scripts, and the audit sample the sink draws."""

from __future__ import annotations

import shutil
import uuid

import numpy as np
import pytest

from modeling.ml.artifacts import load_artifact
from modeling.ml.batching import BatchPolicy
from modeling.ml.config import InferenceConfig
from modeling.models import PredictionLog
from modeling.services.serving import audit_sampled, prediction_log_write
from modeling.serving import projection as projection_module
from modeling.serving.logbuffer import LogBuffer
from modeling.serving.projection import (
    Projection,
    ProjectionWatch,
    decode,
    projection_path,
    projection_read,
    projection_write,
)
from modeling.serving.server import ModelServer
from tests.modeling.serving.harness import Artifact, set_policy

TEXTS = ["the hotel was lovely", "الفندق كان جميلا", "awful food, never again", "12345"]


def _projection(dims: int, hidden: int, manifest: str, seed: int = 0) -> Projection:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(hidden, dims)))
    return Projection(
        mean=rng.normal(size=hidden).astype(np.float32), components=q.T.astype(np.float32), manifest_sha256=manifest
    )


@pytest.fixture
def artifact_copy(artifacts, tmp_path) -> Artifact:
    """A private copy of a served artifact, so a projection written beside it touches no other test."""
    path = tmp_path / "v1"
    shutil.copytree(artifacts[0].path, path)
    return Artifact(path, artifacts[0].manifest_sha256)


@pytest.fixture
def server_and_rows(artifact_copy, monkeypatch):
    monkeypatch.setattr(projection_module, "RECHECK_SECONDS", 0.0)  # look for the file on every batch
    rows: list[dict] = []
    server = ModelServer(policy=BatchPolicy(max_wait_ms=1), log=LogBuffer(rows.extend, interval=0.02), threads=1)
    server.load(artifact_copy.spec("acme:production", 1))
    yield server, rows
    server.close()


def _embeddings(artifact: Artifact, texts: list[str]) -> np.ndarray:
    classifier = load_artifact(artifact.path)
    config = InferenceConfig(max_length=64, device="cpu", num_threads=1)
    return classifier.predict(texts, config, return_embeddings=True).embeddings


def test_projection_lives_beside_the_artifact_and_round_trips(artifact_copy):
    expected = _projection(8, 32, artifact_copy.manifest_sha256)
    written = projection_write(artifact_copy.path, expected)
    assert written == projection_path(artifact_copy.path) == artifact_copy.path.parent / "v1.drift.npz"
    assert not (artifact_copy.path / "v1.drift.npz").exists()  # the manifest-checked directory is untouched
    loaded = projection_read(artifact_copy.path, manifest_sha256=artifact_copy.manifest_sha256)
    assert loaded is not None and loaded.dims == 8
    np.testing.assert_array_equal(loaded.components, expected.components)
    assert projection_read(artifact_copy.path, manifest_sha256="f" * 64) is None  # made for another artifact


def test_a_corrupt_projection_file_is_ignored(artifact_copy):
    projection_path(artifact_copy.path).write_bytes(b"not an npz")
    assert projection_read(artifact_copy.path, manifest_sha256=None) is None


def test_server_logs_unk_rates_and_no_embedding_until_a_projection_appears(server_and_rows, artifact_copy):
    server, rows = server_and_rows
    server.predict("acme:production", TEXTS, {"project": 1})
    assert server.flush()
    assert [row["embedding"] for row in rows] == [None] * len(TEXTS)
    # Byte-level BPE never emits its unknown token, whatever the script.
    assert [row["unk_rate"] for row in rows] == [0.0] * len(TEXTS)

    projection = _projection(8, 32, artifact_copy.manifest_sha256)
    projection_write(artifact_copy.path, projection)
    reply = server.predict("acme:production", TEXTS, {"project": 1})
    assert server.flush()
    logged = {row["id"]: row for row in rows[len(TEXTS) :]}
    assert list(logged) == reply["ids"]
    expected = projection.project(_embeddings(artifact_copy, TEXTS))
    for index, prediction_id in enumerate(reply["ids"]):
        raw = logged[prediction_id]["embedding"]
        assert isinstance(raw, bytes) and len(raw) == 8 * 2  # 8 float16 values
        np.testing.assert_allclose(decode(raw), expected[index], rtol=2e-3, atol=2e-3)


def test_a_projection_for_another_manifest_is_never_used(server_and_rows, artifact_copy):
    server, rows = server_and_rows
    projection_write(artifact_copy.path, _projection(8, 32, "0" * 64))
    server.predict("acme:production", TEXTS[:2], {"project": 1})
    assert server.flush()
    assert [row["embedding"] for row in rows] == [None, None]


def test_watch_reads_the_file_at_most_once_per_recheck_interval(artifact_copy):
    watch = ProjectionWatch(str(artifact_copy.path), artifact_copy.manifest_sha256, recheck_seconds=3600)
    assert watch.current(32) is None
    projection_write(artifact_copy.path, _projection(4, 32, artifact_copy.manifest_sha256))
    assert watch.current(32) is None  # not looked for again yet
    fresh = ProjectionWatch(str(artifact_copy.path), artifact_copy.manifest_sha256, recheck_seconds=3600)
    assert fresh.current(32) is not None
    other_width = ProjectionWatch(str(artifact_copy.path), artifact_copy.manifest_sha256, recheck_seconds=0)
    assert other_width.current(64) is None  # fitted on 32-dim embeddings, refused for a 64-dim model


# --- the sink ------------------------------------------------------------------------------------


def _row(project_id: int, text: str, *, route: str = "production", log_text: bool = False, **extra) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "version": 1,
        "created_at": 1_700_000_000.0,
        "latency_ms": 3.0,
        "label": "positive",
        "confidence": 0.9,
        "probs": {"negative": 0.1, "positive": 0.9},
        "input_chars": len(text),
        "text_sha256": "0" * 64,
        "text": text,
        "meta": {"project": project_id, "route": route, "log_text": log_text},
        **extra,
    }


@pytest.mark.django_db(transaction=True)  # the sink closes a connection left in a transaction
def test_sink_stores_script_unk_rate_and_embedding(project):
    set_policy(project, audit_share=0.0)
    raw = np.arange(4, dtype="<f2").tobytes()
    rows = [
        _row(project.pk, "שלום עולם, call +1 555 123 4567", unk_rate=0.25, embedding=raw),
        _row(project.pk, "plain text"),
    ]
    assert prediction_log_write(rows) == 2
    first, second = (PredictionLog.objects.get(id=row["id"]) for row in rows)
    assert (first.script, first.unk_rate, bytes(first.embedding), first.audit, first.text) == (
        "Hebrew",
        0.25,
        raw,
        False,
        None,
    )
    assert (second.script, second.unk_rate, second.embedding) == ("Latin", None, None)


@pytest.mark.django_db(transaction=True)  # the sink closes a connection left in a transaction
def test_sink_detects_each_texts_language_among_a_multilingual_projects_languages(project):
    set_policy(project, audit_share=0.0)
    texts = {
        "Das Zimmer war schmutzig und laut": "de",
        "The room was dirty and noisy": "en",
        "La chambre était sale": "fr",
    }
    rows = [_row(project.pk, text) for text in texts]
    for row in rows:
        row["meta"]["languages"] = ["en", "de", "fr"]
    rows.append(_row(project.pk, "Das Zimmer war schmutzig"))
    rows[-1]["meta"]["language"] = "en"  # a single-language project's code is taken as given
    prediction_log_write(rows)
    assert [PredictionLog.objects.get(id=row["id"]).language for row in rows] == [*texts.values(), "en"]


@pytest.mark.django_db(transaction=True)  # the sink closes a connection left in a transaction
def test_audit_rows_keep_their_text_redacted_even_when_texts_are_not_logged(project):
    set_policy(project, audit_share=1.0, log_texts=False)
    rows = [_row(project.pk, "mail me at a@b.example"), _row(project.pk, "shadow copy", route="shadow")]
    prediction_log_write(rows)
    audited, shadow = (PredictionLog.objects.get(id=row["id"]) for row in rows)
    assert audited.audit and audited.text == "mail me at [EMAIL]"
    assert not shadow.audit and shadow.text is None  # the shadow's copy was never answered


@pytest.mark.django_db(transaction=True)  # the sink closes a connection left in a transaction
def test_no_audit_at_share_zero_and_a_project_without_policy_audits_at_the_default(project, other_project):
    set_policy(project, audit_share=0.0)
    rows = [_row(project.pk, f"text {i}") for i in range(50)]
    prediction_log_write(rows)
    assert not PredictionLog.objects.filter(project=project, audit=True).exists()
    # other_project has no ReleasePolicy row: the default share (1%) applies, by the same hash.
    ids = [uuid.uuid4() for _ in range(400)]
    expected = sum(audit_sampled(i, 0.01) for i in ids)
    prediction_log_write([{**_row(other_project.pk, "x"), "id": str(i)} for i in ids])
    assert PredictionLog.objects.filter(project=other_project, audit=True).count() == expected


def test_audit_sample_is_deterministic_and_close_to_its_share():
    ids = [uuid.UUID(int=i * 7919 + 13) for i in range(20_000)]
    drawn = [audit_sampled(i, 0.05) for i in ids]
    assert drawn == [audit_sampled(i, 0.05) for i in ids]
    # Binomial(20000, 0.05): mean 1000, sd ~31; 5 sd either side.
    assert 845 < sum(drawn) < 1155
    assert not any(audit_sampled(i, 0.0) for i in ids[:1000])
    assert all(audit_sampled(i, 1.0) for i in ids[:1000])
    # A larger share keeps every id a smaller share drew (a threshold on one hash).
    assert all(audit_sampled(i, 0.2) for i, d in zip(ids, drawn, strict=True) if d)


@pytest.mark.django_db(transaction=True)  # the sink closes a connection left in a transaction
@pytest.mark.parametrize("writer", ["backend's own", "executemany"])
def test_both_bulk_writers_store_the_same_rows_once(project, writer, monkeypatch):
    """PostgreSQL writes with COPY, every other database with one executemany: same rows, same dedup.

    The executemany writer also runs here on PostgreSQL, so CI (PostgreSQL) and ``make test`` (SQLite)
    each check both of the writers their database can use.
    """
    from django.db import connection

    from modeling.services.serving import prediction_log

    if writer == "executemany":
        monkeypatch.setattr(prediction_log, "_copy_log", prediction_log._insert_log)
    set_policy(project, audit_share=0.0, log_texts=True)
    raw = np.arange(4, dtype="<f2").tobytes()
    rows = [
        _row(project.pk, "Zimmer\x00 +1 555 123 4567", log_text=True, unk_rate=0.5, embedding=raw),
        _row(project.pk, "plain text", route="canary"),
    ]
    rows[1]["meta"]["caller"] = "svc:7"
    assert prediction_log_write(rows) == 2
    assert prediction_log_write([*rows, _row(project.pk, "third")]) == 1  # a retried batch: only the new row
    first, second = (PredictionLog.objects.get(id=row["id"]) for row in rows)
    assert first.text == "Zimmer\ufffd [PHONE]" and bytes(first.embedding) == raw and first.unk_rate == 0.5
    assert first.probs == {"negative": 0.1, "positive": 0.9} and first.confidence == 0.9
    assert first.created_at.timestamp() == 1_700_000_000.0 and first.created_at.utcoffset().total_seconds() == 0
    assert (second.route, second.caller, second.text, second.input_chars) == ("canary", "svc:7", None, 10)
    assert PredictionLog.objects.filter(project=project).count() == 3
    assert connection.vendor in {"postgresql", "sqlite"}
