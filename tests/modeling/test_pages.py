"""Model version pages: who sees what, a finished version's metrics, live progress, the train form."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from django.urls import reverse

from modeling.ml.metrics import evaluate, softmax
from modeling.models import ModelVersion
from tests.factories import ItemFactory, JobFactory, ProjectFactory

pytestmark = pytest.mark.django_db

LABELS = ["negative", "neutral", "إيجابي"]  # one right-to-left name
SLUG = "acme-sentiment"


def _bins(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> list[dict]:
    """Reliability bins the way the backend stores them (equal width, right-closed, empty ones blank)."""
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == y)
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    bins = []
    for i in range(n_bins):
        mask = index == i
        n = int(mask.sum())
        bins.append(
            {
                "lower": i / n_bins,
                "upper": (i + 1) / n_bins,
                "confidence": float(confidence[mask].mean()) if n else None,
                "accuracy": float(correct[mask].mean()) if n else None,
                "count": n,
            }
        )
    return bins


def realistic_metrics() -> dict:
    """Metrics JSON shaped like the training task's, from a real `evaluate` on noisy logits."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, size=120)
    logits = rng.normal(size=(120, 3)) * 1.5
    logits[np.arange(120), y] += 2.0
    languages = ["en"] * 70 + ["ar"] * 50
    temperature = 1.7
    evaluation = evaluate(logits, y, LABELS, languages=languages, temperature=temperature, n_resamples=200)
    before, after = softmax(logits), softmax(logits, temperature)
    return {
        "eval": evaluation.to_dict(),
        "calibration": {
            "temperature": temperature,
            "ece_before": evaluation.calibration_before.ece,
            "ece_after": evaluation.calibration_after.ece,
            "brier_before": evaluation.calibration_before.brier,
            "brier_after": evaluation.calibration_after.brier,
            "reliability_before": _bins(before, y),
            "reliability_after": _bins(after, y),
        },
        "training": {
            "seconds": 83.4,
            "samples_per_s": 41.2,
            "tokens_per_s": 5120.0,
            "best_step": 60,
            "total_steps": 90,
            "device": "cpu",
            "precision": "fp32",
        },
    }


HISTORY = [
    {"step": 10, "epoch": 0.33, "loss": 1.09, "lr": 2e-5, "eval": None, "t": 3.1},
    {"step": 20, "epoch": 0.67, "loss": 0.87, "lr": 3e-5, "eval": None, "t": 6.0},
    {"step": 30, "epoch": 1.0, "loss": 0.71, "lr": 2.8e-5, "eval": {"accuracy": 0.74, "macro_f1": 0.7}, "t": 9.2},
]


@pytest.fixture
def project(db):
    """The conftest project, with a right-to-left label name (overrides conftest's `project`)."""
    return ProjectFactory(slug=SLUG, name="Acme sentiment", labels=LABELS)


@pytest.fixture
def finished(project, owner):
    return ModelVersion.objects.create(
        project=project,
        number=3,
        status=ModelVersion.Status.CANDIDATE,
        base_checkpoint="tiny-roberta",
        metrics=realistic_metrics(),
        history=HISTORY,
        temperature=1.7,
        artifact_path="/var/artifacts/acme-sentiment/v3",
        manifest_sha256="ab" * 32,
        data={"train": 480, "eval": 120, "snapshot": "cd" * 32},
        train_config={"epochs": 2, "lr": 4e-5, "batch_size": 8, "max_length": 128, "truncation": "head_tail"},
        created_by=owner,
    )


@pytest.fixture
def training(project, owner):
    job = JobFactory(project=project, kind="train", status="running", progress=0.4, message="epoch 1/3")
    return ModelVersion.objects.create(
        project=project,
        number=4,
        status=ModelVersion.Status.TRAINING,
        base_checkpoint="tiny-roberta",
        history=HISTORY[:2],
        job=job,
        created_by=owner,
    )


def _url(name: str, **kwargs) -> str:
    return reverse(f"modeling:{name}", kwargs={"slug": SLUG, **kwargs})


def _figures(response) -> dict:
    match = re.search(rb'<script id="version-figures" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "the page embeds its figures"
    return json.loads(match.group(1))


# --- who sees what ---------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_login_page(client_for, finished):
    for url in (_url("version-list"), _url("version-detail", number=3), _url("version-progress", number=3)):
        response = client_for(None).get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_outsiders_get_404_on_every_page(client_for, outsider, finished):
    client = client_for(outsider)
    for url in (_url("version-list"), _url("version-detail", number=3), _url("train")):
        assert client.get(url).status_code == 404


def test_reviewer_sees_versions_read_only(client_for, reviewer, finished):
    response = client_for(reviewer).get(_url("version-list"))
    assert response.status_code == 200
    assert b"v3" in response.content
    assert _url("train").encode() not in response.content
    detail = client_for(reviewer).get(_url("version-detail", number=3))
    assert detail.status_code == 200
    assert _url("train").encode() not in detail.content
    assert client_for(reviewer).get(_url("train")).status_code == 403
    assert client_for(reviewer).post(_url("train"), {"epochs": "2"}).status_code == 403


def test_owner_sees_the_train_button(client_for, owner, finished):
    response = client_for(owner).get(_url("version-list"))
    assert response.status_code == 200
    assert f'href="{_url("train")}"'.encode() in response.content
    assert b"Train a new version" in response.content


def test_project_nav_links_to_the_models(client_for, reviewer, project):
    response = client_for(reviewer).get(reverse("labeling:project-detail", kwargs={"slug": SLUG}))
    assert f'href="{_url("version-list")}"'.encode() in response.content


def test_empty_list_invites_owners_to_train_the_first_version(client_for, owner, reviewer, project):
    assert b"Train the first version" in client_for(owner).get(_url("version-list")).content
    assert b"Train the first version" not in client_for(reviewer).get(_url("version-list")).content


def test_a_version_number_that_does_not_exist_is_404(client_for, reviewer, finished):
    assert client_for(reviewer).get(_url("version-detail", number=99)).status_code == 404
    assert client_for(reviewer).get(_url("version-progress", number=99)).status_code == 404


def test_another_projects_version_is_not_reachable_through_this_project(client_for, reviewer, project):
    other = ProjectFactory(slug="elsewhere")
    ModelVersion.objects.create(project=other, number=7, base_checkpoint="x")
    assert client_for(reviewer).get(_url("version-detail", number=7)).status_code == 404


# --- the list ----------------------------------------------------------------------------------


def test_list_shows_headline_scores_with_interval_and_counts(client_for, reviewer, finished):
    ev = finished.metrics["eval"]
    body = client_for(reviewer).get(_url("version-list")).content.decode()
    assert f"{ev['macro_f1']:.3f}" in body
    assert f"[{ev['macro_f1_ci']['low']:.3f}, {ev['macro_f1_ci']['high']:.3f}]" in body
    assert f"{ev['accuracy']:.3f}" in body
    assert f"{finished.metrics['calibration']['ece_after']:.3f}" in body
    assert ">480<" in body and ">120<" in body
    assert 'class="badge badge-candidate">Candidate<' in body


# --- a finished version --------------------------------------------------------------------------


def test_version_page_renders_metrics_tables_and_figures(client_for, reviewer, finished):
    response = client_for(reviewer).get(_url("version-detail", number=3))
    assert response.status_code == 200
    body = response.content.decode()
    ev = finished.metrics["eval"]
    assert f"{ev['macro_f1_ci']['low']:.4f} – {ev['macro_f1_ci']['high']:.4f}" in body
    assert f"{ev['accuracy_ci']['low']:.4f} – {ev['accuracy_ci']['high']:.4f}" in body
    for c in ev["per_class"]:
        assert f'<td dir="auto">{c["label"]}</td>' in body
        assert f"{c['f1']:.3f}" in body
    for code, group in ev["per_language"].items():
        assert f'<td dir="auto">{code}</td><td class="num">{group["n"]}</td>' in body
    assert "/var/artifacts/acme-sentiment/v3" in body
    assert "ab" * 32 in body
    assert "60 of 90" in body  # best step
    assert "83.4 s" in body
    assert "<dt>Learning rate</dt><dd><code>0.00004</code></dd>" in body  # the form's label for `lr`

    figures = _figures(response)
    assert set(figures) == {"loss", "eval", "confusion", "per_class", "reliability"}
    assert figures["confusion"]["data"][0]["text"] == [[str(n) for n in row] for row in ev["confusion"]]
    assert figures["confusion"]["data"][0]["x"] == LABELS
    assert figures["loss"]["data"][0]["y"] == [1.09, 0.87, 0.71]
    names = [trace["name"] for trace in figures["reliability"]["data"]]
    assert names == ["Perfect calibration", "Before calibration", "After calibration"]
    shown = [b for b in finished.metrics["calibration"]["reliability_after"] if b["count"]]
    assert figures["reliability"]["data"][2]["x"] == [b["confidence"] for b in shown]
    assert 'data-live="0"' in body  # a finished version does not poll


def test_version_page_loads_the_vendored_plotly_and_its_script(client_for, reviewer, finished):
    body = client_for(reviewer).get(_url("version-detail", number=3)).content.decode()
    assert 'src="/static/modeling/plotly.min.js"' in body
    assert 'src="/static/modeling/version.js"' in body


def test_label_names_and_errors_are_escaped(client_for, reviewer, project):
    metrics = realistic_metrics()
    metrics["eval"]["per_class"][0]["label"] = "<script>alert(1)</script>"
    ModelVersion.objects.create(
        project=project,
        number=5,
        status=ModelVersion.Status.FAILED,
        base_checkpoint="x",
        metrics=metrics,
        error="CUDA out of memory <b>now</b>",
    )
    body = client_for(reviewer).get(_url("version-detail", number=5)).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "Training failed" in body
    assert "CUDA out of memory &lt;b&gt;now&lt;/b&gt;" in body
    assert 'data-figure="loss"' not in body  # no steps were recorded: no empty training curves


# --- live progress --------------------------------------------------------------------------------


def test_training_version_page_polls_and_shows_the_job_progress(client_for, reviewer, training):
    body = client_for(reviewer).get(_url("version-detail", number=4)).content.decode()
    assert 'data-live="1"' in body
    assert f'data-progress-url="{_url("version-progress", number=4)}"' in body
    assert f'id="job-{training.job.pk}"' in body  # the htmx-polled progress bar
    assert 'aria-valuenow="40"' in body
    assert "epoch 1/3" in body


def test_progress_while_training_returns_the_history_and_growing_curves(client_for, reviewer, training):
    client = client_for(reviewer)
    first = client.get(_url("version-progress", number=4)).json()
    assert first["live"] is True
    assert first["status"] == "training"
    assert first["job"] == {"status": "running", "progress": 0.4, "message": "epoch 1/3", "finished": False}
    assert [p["step"] for p in first["history"]] == [10, 20]
    assert first["figures"]["loss"]["data"][0]["x"] == [10, 20]

    training.history = [*training.history, HISTORY[2]]
    training.save(update_fields=["history"])
    second = client.get(_url("version-progress", number=4)).json()
    assert second["figures"]["loss"]["data"][0]["x"] == [10, 20, 30]
    assert second["figures"]["eval"]["data"][0]["y"] == [0.7]


def test_progress_of_a_finished_version_tells_the_page_to_stop(client_for, reviewer, finished):
    state = client_for(reviewer).get(_url("version-progress", number=3)).json()
    assert state["live"] is False
    assert state["status"] == "candidate"
    assert state["job"] is None
    assert len(state["history"]) == 3


# --- the train form ---------------------------------------------------------------------------------

VALID = {
    "epochs": "3",
    "lr": "3e-5",
    "batch_size": "16",
    "max_length": "256",
    "truncation": "head",
    "early_stopping_patience": "2",
}


def test_train_form_starts_from_the_latest_versions_settings(client_for, owner, finished):
    ItemFactory(project=finished.project, split="train", gold_label=finished.project.labels.first())
    response = client_for(owner).get(_url("train"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="max_length" value="128"' in body  # from v3's config, not the default 256
    assert '<option value="head_tail" selected>' in body
    assert "from v3" in body
    assert "<strong>1</strong> in the train split" in body


def test_train_form_defaults_without_a_previous_version(client_for, owner, project):
    body = client_for(owner).get(_url("train")).content.decode()
    assert 'name="max_length" value="256"' in body
    assert 'name="epochs" value="3"' in body


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", "0", "greater than or equal to 1"),
        ("epochs", "two", "Enter a whole number"),
        ("lr", "0.5", "less than or equal to 0.01"),
        ("lr", "", "This field is required"),
        ("batch_size", "0", "greater than or equal to 1"),
        ("max_length", "4", "greater than or equal to 8"),
        ("truncation", "sliding_window", "Select a valid choice"),
        ("early_stopping_patience", "0", "greater than or equal to 1"),
    ],
)
def test_train_form_rejects_bad_input_with_a_message(client_for, owner, project, field, value, message):
    response = client_for(owner).post(_url("train"), {**VALID, field: value})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Please fix the problems below." in body
    assert message in body
    assert ModelVersion.objects.count() == 0


def test_train_form_overrides_match_the_trainer_config(project):
    from modeling.forms import TrainForm
    from modeling.ml.config import TrainConfig

    form = TrainForm({**VALID, "freeze_word_embeddings": "on", "early_stopping_patience": ""})
    assert form.is_valid(), form.errors
    overrides = form.overrides()
    assert overrides == {
        "epochs": 3,
        "lr": 3e-5,
        "batch_size": 16,
        "max_length": 256,
        "truncation": "head",
        "freeze_word_embeddings": True,
        "early_stopping_patience": None,
    }
    assert TrainConfig(**overrides).early_stopping_patience is None


def test_a_valid_form_starts_training_and_opens_the_new_version(client_for, owner, roberta_project):
    response = client_for(owner).post(_url("train"), {**VALID, "lr": "5e-4", "freeze_word_embeddings": "on"})
    version = ModelVersion.objects.get(project=roberta_project)
    assert response.status_code == 302
    assert response["Location"] == _url("version-detail", number=version.number)
    assert version.status == ModelVersion.Status.QUEUED
    assert version.created_by == owner
    assert version.train_config["lr"] == 5e-4
    assert version.train_config["freeze_word_embeddings"] is True
    assert version.train_config["early_stopping_patience"] == 2
    assert version.job.kind == "train"


def test_a_refusal_from_the_training_service_is_shown_on_the_form(client_for, owner, project):
    response = client_for(owner).post(_url("train"), VALID)  # the project has no gold items at all
    assert response.status_code == 400
    assert "Not enough labelled data to train" in response.content.decode()
    assert ModelVersion.objects.count() == 0


def test_a_second_start_while_one_trains_is_refused_with_conflict(client_for, owner, roberta_project):
    client = client_for(owner)
    assert client.post(_url("train"), VALID).status_code == 302
    response = client.post(_url("train"), VALID)
    assert response.status_code == 409
    assert "is still queued" in response.content.decode()
    assert ModelVersion.objects.count() == 1
