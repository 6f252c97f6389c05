"""Serializers of the model-version endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from labeling.api.serializers import StrictSerializer
from modeling.models import ModelVersion
from webapp.api import JobSerializer


class ModelVersionSerializer(serializers.ModelSerializer):
    """A version as listed: status, lineage, configuration, headline scores and its training job."""

    parent = serializers.SlugRelatedField(slug_field="number", read_only=True, help_text="The parent's number.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    job = JobSerializer(read_only=True, allow_null=True)
    accuracy = serializers.SerializerMethodField(help_text="Eval accuracy (calibration does not change it).")
    macro_f1 = serializers.SerializerMethodField(help_text="Eval macro-F1.")

    class Meta:
        model = ModelVersion
        fields = [
            "number",
            "status",
            "parent",
            "base_checkpoint",
            "train_config",
            "temperature",
            "accuracy",
            "macro_f1",
            "data",
            "error",
            "job",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_accuracy(self, version: ModelVersion) -> float | None:
        return _eval_value(version, "accuracy")

    def get_macro_f1(self, version: ModelVersion) -> float | None:
        return _eval_value(version, "macro_f1")


def _eval_value(version: ModelVersion, key: str) -> float | None:
    value = (version.metrics or {}).get("eval", {}).get(key)
    return float(value) if value is not None else None


class ModelVersionDetailSerializer(ModelVersionSerializer):
    """One version in full: metrics (see modeling.services.training), training history and artifact."""

    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "metrics", "history", "artifact_path", "manifest_sha256"]
        read_only_fields = fields


class TrainingRequestSerializer(StrictSerializer):
    overrides = serializers.DictField(
        required=False,
        default=dict,
        help_text='TrainConfig fields to change, e.g. {"lr": 2e-5, "epochs": 4}; the rest keep their defaults.',
    )

    def validated_overrides(self) -> dict[str, Any]:
        return dict(self.validated_data.get("overrides") or {})
