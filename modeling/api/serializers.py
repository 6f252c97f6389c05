"""Serializers of the model-version endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from labeling.api.serializers import StrictSerializer
from modeling.models import ModelVersion, Retraining
from modeling.selectors import LearningCurve, stopping_message
from webapp.api import JobSerializer


class ModelVersionSerializer(serializers.ModelSerializer):
    """A version as listed: status, lineage, configuration, headline scores and its training job."""

    parent = serializers.SlugRelatedField(slug_field="number", read_only=True, help_text="The parent's number.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    job = JobSerializer(read_only=True, allow_null=True)
    accuracy = serializers.SerializerMethodField(help_text="Eval accuracy (calibration does not change it).")
    macro_f1 = serializers.SerializerMethodField(help_text="Eval macro-F1.")
    automatic = serializers.SerializerMethodField(help_text="Started by automatic retraining (created_by is null).")

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
            "automatic",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_accuracy(self, version: ModelVersion) -> float | None:
        return _eval_value(version, "accuracy")

    def get_macro_f1(self, version: ModelVersion) -> float | None:
        return _eval_value(version, "macro_f1")

    def get_automatic(self, version: ModelVersion) -> bool:
        # A version without a Retraining row raises RelatedObjectDoesNotExist, an AttributeError.
        run = getattr(version, "retraining", None)
        return run is not None and run.trigger == Retraining.Trigger.AUTO


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


class RetrainingSerializer(serializers.ModelSerializer):
    """A retraining chain: how it was triggered, its state, its version and how many requests it carries."""

    version = serializers.SlugRelatedField(slug_field="number", read_only=True, help_text="The version it trains.")
    requested_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Null for automatic runs (the system)."
    )

    class Meta:
        model = Retraining
        fields = [
            "id",
            "trigger",
            "status",
            "version",
            "requested_by",
            "requests",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RetrainOutcomeSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["started", "coalesced"],
        help_text="started: a chain was queued now; coalesced: joined the one follow-up of the chain in flight.",
    )
    message = serializers.CharField()
    retraining = RetrainingSerializer(help_text="The chain started, or the follow-up this request joined.")
    running = RetrainingSerializer(allow_null=True, help_text="The chain in flight the follow-up waits for.")


class IntervalSerializer(serializers.Serializer):
    low = serializers.FloatField()
    high = serializers.FloatField()


class CurvePointSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    status = serializers.CharField()
    automatic = serializers.BooleanField(help_text="Started by automatic retraining (the system).")
    gold_labels = serializers.IntegerField(help_text="Gold training labels the version learned from.")
    eval_n = serializers.IntegerField(allow_null=True, help_text="Items in the eval split it was scored on.")
    macro_f1 = serializers.FloatField(help_text="Eval macro-F1.")
    macro_f1_ci = IntervalSerializer(allow_null=True, help_text="95% percentile bootstrap interval.")


class StabilityPairSerializer(serializers.Serializer):
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    kappa = serializers.FloatField(allow_null=True, help_text="Null when undefined (one class everywhere).")
    observed_agreement = serializers.FloatField()
    items = serializers.IntegerField(help_text="Stop-set items both versions predicted.")


class StoppingSerializer(serializers.Serializer):
    stop_set_size = serializers.IntegerField()
    threshold = serializers.FloatField()
    window = serializers.IntegerField(help_text="Successive pairs averaged (3 in Bloodgood & Vijay-Shanker 2009).")
    mean_kappa = serializers.FloatField(allow_null=True)
    stop = serializers.BooleanField()
    message = serializers.CharField()
    pairs = StabilityPairSerializer(many=True)


class LearningCurveSerializer(serializers.Serializer):
    points = CurvePointSerializer(many=True)
    stopping = StoppingSerializer()


def learning_curve_data(curve: LearningCurve) -> dict[str, Any]:
    """Return the learning curve in the shape LearningCurveSerializer documents."""
    decision = curve.decision
    return {
        "points": [
            {
                "version": p.version,
                "status": p.status,
                "automatic": p.automatic,
                "gold_labels": p.gold_labels,
                "eval_n": p.eval_n,
                "macro_f1": p.macro_f1,
                "macro_f1_ci": {"low": p.ci_low, "high": p.ci_high} if p.ci_low is not None else None,
            }
            for p in curve.points
        ],
        "stopping": {
            "stop_set_size": curve.stop_set_size,
            "threshold": decision.threshold,
            "window": decision.window,
            "mean_kappa": decision.mean_kappa,
            "stop": decision.stop,
            "message": stopping_message(decision),
            "pairs": [
                {
                    "from_version": pair.from_version,
                    "to_version": pair.to_version,
                    "kappa": pair.kappa,
                    "observed_agreement": pair.observed,
                    "items": pair.items,
                }
                for pair in curve.pairs
            ],
        },
    }
