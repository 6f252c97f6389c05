"""Feedback: the true label of a served prediction, recorded once (the same label again is no change,
a different one a 409), after asking the model server to flush its write-behind log when the id is
not in the prediction log yet.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from labeling.models import Label, Project
from modeling.models import PredictionFeedback, PredictionLog
from modeling.services.serving.errors import ServingUnavailable
from modeling.services.serving.predicting import serving_client
from modeling.serving.client import ModelServerError
from webapp.errors import Conflict, NotFound, ValidationFailed


def feedback_record(*, project: Project, user: Any, prediction_id: Any, label: Any) -> tuple[PredictionFeedback, bool]:
    """Record the true label of a served prediction; return it and whether it is new.

    The same label again changes nothing (idempotent); a different one is a 409. A prediction answered
    a moment ago may still sit in the model server's write-behind buffer: the server is asked to
    flush before the id is declared unknown.
    """
    parsed_id = _uuid(prediction_id)
    if not isinstance(label, str) or not label:
        raise ValidationFailed("label must be the name of one of the project's labels.", details={"field": "label"})
    found = Label.objects.filter(project=project, name=label).first()
    if found is None:
        names = list(Label.objects.filter(project=project).values_list("name", flat=True))
        raise ValidationFailed(
            f"Unknown label {label!r}; this project's labels are: {', '.join(names)}.",
            details={"field": "label", "labels": names},
        )
    if not _prediction_exists(project, parsed_id):
        raise NotFound("No prediction of this project has that id.")
    return _feedback_store(project, user, parsed_id, found)


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValidationFailed(
        "prediction_id must be the id (a UUID) of a prediction returned by the predict endpoint.",
        details={"field": "prediction_id"},
    )


def _prediction_exists(project: Project, prediction_id: uuid.UUID) -> bool:
    served = PredictionLog.objects.filter(project=project, id=prediction_id).exclude(route=PredictionLog.Route.SHADOW)
    if served.exists():
        return True
    try:
        flushed = serving_client().flush(timeout=10.0)
    except ModelServerError as exc:
        raise ServingUnavailable(
            "Cannot confirm this prediction while the model server is unavailable; retry shortly.", retry_after=2
        ) from exc
    if not flushed:
        raise ServingUnavailable("The prediction log is behind; retry shortly.", retry_after=2)
    return served.exists()


@transaction.atomic
def _feedback_store(
    project: Project, user: Any, prediction_id: uuid.UUID, label: Label
) -> tuple[PredictionFeedback, bool]:
    feedback, created = PredictionFeedback.objects.select_related("label").get_or_create(
        prediction_id=prediction_id,
        defaults={"project": project, "label": label, "user": user if user.is_authenticated else None},
    )
    if not created and feedback.label_id != label.pk:
        raise Conflict(
            f"This prediction already has the feedback label {feedback.label.name!r}.",
            details={"label": feedback.label.name},
        )
    return feedback, created
