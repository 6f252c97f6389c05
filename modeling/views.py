"""Model version pages: the list (with "Retrain now"), one version's metrics and live training curves, the
train form, and the learning curve with its stopping signal."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.text import capfirst
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling.models import Item, Project, Role
from labeling.selectors import project_for_user
from modeling import charts
from modeling.api.serializers import learning_curve_data
from modeling.charts import figure_json
from modeling.forms import TrainForm
from modeling.models import ModelVersion
from modeling.selectors import learning_curve as learning_curve_of
from modeling.selectors import retraining_state
from webapp.errors import ApplicationError, NotFound

# While a version is in one of these states its page polls the progress endpoint.
LIVE_STATUSES = (ModelVersion.Status.QUEUED, ModelVersion.Status.TRAINING)
MANAGER_ROLES = (Role.OWNER, Role.ADMIN)


def _version(project: Project, number: int) -> ModelVersion:
    version = (
        ModelVersion.objects.filter(project=project, number=number)
        .select_related("job", "created_by", "parent", "retraining")
        .first()
    )
    if version is None:
        raise NotFound(f"Model version v{number} does not exist in this project.")
    return version


def _summary(version: ModelVersion) -> dict[str, Any]:
    """Return the headline figures of a version for the list (None where it has no metrics yet)."""
    evaluation = version.metrics.get("eval") or {}
    calibration = version.metrics.get("calibration") or {}
    ece_after = calibration.get("ece_after", (evaluation.get("calibration_after") or {}).get("ece"))
    return {
        "version": version,
        "macro_f1": evaluation.get("macro_f1"),
        "macro_f1_ci": evaluation.get("macro_f1_ci"),
        "accuracy": evaluation.get("accuracy"),
        "ece_after": ece_after,
        "train_n": version.data.get("train"),
        "eval_n": version.data.get("eval"),
    }


def _config_rows(train_config: dict[str, Any]) -> list[tuple[str, Any]]:
    """Return the hyperparameters with the train form's labels where it has one."""
    fields = TrainForm.base_fields
    return [
        (capfirst(fields[key].label or key.replace("_", " ")) if key in fields else key, value)
        for key, value in train_config.items()
    ]


def _curves(history: list[dict[str, Any]]) -> dict[str, Any]:
    return {"loss": figure_json(charts.loss_curve(history)), "eval": figure_json(charts.eval_curve(history))}


def _result_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """Return the figures of a finished version's evaluation (only those its metrics support)."""
    figures: dict[str, Any] = {}
    evaluation = metrics.get("eval") or {}
    calibration = metrics.get("calibration") or {}
    if evaluation.get("confusion"):
        names = [c["label"] for c in evaluation.get("per_class", [])]
        figures["confusion"] = figure_json(charts.confusion_heatmap(evaluation["confusion"], names))
    if evaluation.get("per_class"):
        figures["per_class"] = figure_json(charts.per_class_bars(evaluation["per_class"]))
    if calibration.get("reliability_before") or calibration.get("reliability_after"):
        figures["reliability"] = figure_json(
            charts.reliability_diagram(
                calibration.get("reliability_before") or [], calibration.get("reliability_after") or []
            )
        )
    return figures


def _progress(version: ModelVersion) -> dict[str, Any]:
    """Return what the version page polls: state, job progress, and the history drawn so far."""
    job = version.job
    return {
        "status": version.status,
        "status_display": version.get_status_display(),
        "live": version.status in LIVE_STATUSES,
        "job": (
            {"status": job.status, "progress": job.progress, "message": job.message, "finished": job.is_finished}
            if job
            else None
        ),
        "history": version.history,
        "figures": _curves(version.history),
    }


@login_required
@require_GET
def version_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug)
    versions = (
        ModelVersion.objects.filter(project=project)
        .select_related("created_by", "job", "retraining")
        .prefetch_related("aliases")
    )
    context = {
        "project": project,
        "rows": [_summary(v) for v in versions],
        "may_train": project.user_role in MANAGER_ROLES,  # type: ignore[attr-defined]
        "retraining": retraining_state(project=project),
    }
    return render(request, "modeling/version_list.html", context)


@login_required
@require_POST
def retrain(request: HttpRequest, slug: str) -> HttpResponse:
    """The "Retrain now" button: start a retraining chain or join the follow-up of the one running."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    # Imported here, like the train view's service: the web process loads it only when it is used.
    from modeling.services.retraining import retraining_request

    try:
        outcome = retraining_request(project=project, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, outcome.message)
    return redirect("modeling:version-list", slug=project.slug)


@login_required
@require_GET
def learning_curve(request: HttpRequest, slug: str) -> HttpResponse:
    """Eval macro-F1 by gold labels per version, and whether successive versions' predictions stabilised."""
    project = project_for_user(user=request.user, slug=slug)
    data = learning_curve_data(learning_curve_of(project=project))
    stopping = data["stopping"]
    figures = {}
    if data["points"]:
        figures["curve"] = figure_json(charts.learning_curve(data["points"]))
    if stopping["pairs"]:
        figures["stability"] = figure_json(
            charts.stability_curve(stopping["pairs"], threshold=stopping["threshold"], window=stopping["window"])
        )
    context = {"project": project, "curve": data, "stopping": stopping, "figures": figures}
    return render(request, "modeling/learning_curve.html", context)


@login_required
@require_GET
def version_detail(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug)
    version = _version(project, number)
    metrics = version.metrics or {}
    figures = {**_curves(version.history), **_result_figures(metrics)}
    context = {
        "project": project,
        "version": version,
        "summary": _summary(version),
        "live": version.status in LIVE_STATUSES,
        "evaluation": metrics.get("eval") or {},
        "calibration": metrics.get("calibration") or {},
        "training": metrics.get("training") or {},
        "quantization": metrics.get("quantization") or {},
        "figures": figures,
        "config_rows": _config_rows(version.train_config),
        "may_train": project.user_role in MANAGER_ROLES,  # type: ignore[attr-defined]
    }
    return render(request, "modeling/version_detail.html", context)


@login_required
@require_GET
def version_progress(request: HttpRequest, slug: str, number: int) -> JsonResponse:
    """JSON the version page polls every 1.5 s while the version is queued or training."""
    project = project_for_user(user=request.user, slug=slug)
    version = _version(project, number)
    return JsonResponse(_progress(version))


def _gold_counts(project: Project) -> dict[str, int]:
    rows = (
        Item.objects.filter(project=project, gold_label__isnull=False)
        .values("split")
        .annotate(n=Count("id"))
        .values_list("split", "n")
    )
    return dict(rows)


@login_required
@require_http_methods(["GET", "POST"])
def train(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    latest = ModelVersion.objects.filter(project=project).first()
    status = 200
    if request.method == "GET":
        form = TrainForm(initial=TrainForm.initial_from(latest.train_config if latest else {}))
    else:
        form = TrainForm(request.POST)
        status = 400
        if form.is_valid():
            # Imported here: the web process loads the training service only when a run is started.
            from modeling.services.training import training_start

            try:
                version = training_start(project=project, user=request.user, overrides=form.overrides())
            except ApplicationError as exc:
                messages.error(request, exc.message)
                status = exc.status_code
            else:
                messages.success(request, f"Version v{version.number} queued for training.")
                return redirect("modeling:version-detail", slug=project.slug, number=version.number)
        else:
            messages.error(request, "Please fix the problems below.")
    context = {"project": project, "form": form, "latest": latest, "gold": _gold_counts(project)}
    return render(request, "modeling/train.html", context, status=status)
