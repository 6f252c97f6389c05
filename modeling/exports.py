"""The modeling columns of an item export: each item's latest prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modeling.models import Prediction
from webapp.extensions import ExportExtension, register_export_extension

COLUMNS = ("prediction", "prediction_score", "prediction_version")


def latest_predictions(project: Any, item_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Return ``{item_id: {prediction, prediction_score, prediction_version}}`` from each item's newest version."""
    rows = (
        Prediction.objects.filter(item_id__in=item_ids, model_version__project=project)
        .order_by("item_id", "-model_version__number")
        .values_list("item_id", "label__name", "confidence", "model_version__number")
    )
    latest: dict[int, dict[str, Any]] = {}
    for item_id, label, confidence, number in rows:
        if item_id not in latest:  # rows come newest version first for each item
            latest[item_id] = {"prediction": label, "prediction_score": confidence, "prediction_version": number}
    return latest


register_export_extension(ExportExtension(COLUMNS, latest_predictions))
