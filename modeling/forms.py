"""The "train a new version" form: the main hyperparameters, checked before anything is queued."""

from __future__ import annotations

from typing import Any

from django import forms

from modeling.ml.config import TrainConfig

DEFAULTS = TrainConfig()


class TrainForm(forms.Form):
    epochs = forms.IntegerField(
        min_value=1, max_value=50, initial=DEFAULTS.epochs, help_text="Passes over the training split."
    )
    lr = forms.FloatField(
        label="Learning rate",
        min_value=1e-7,
        max_value=1e-2,
        initial=DEFAULTS.lr,
        help_text="Peak AdamW learning rate after warm-up; 1e-5 to 5e-5 suits most encoders.",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    batch_size = forms.IntegerField(
        min_value=1, max_value=512, initial=DEFAULTS.batch_size, help_text="Texts per optimizer step."
    )
    max_length = forms.IntegerField(
        label="Max length",
        min_value=8,
        max_value=4096,
        initial=DEFAULTS.max_length,
        help_text="Tokens per text; longer ones are cut as the truncation setting says.",
    )
    truncation = forms.ChoiceField(
        choices=[("head", "Head (keep the start)"), ("head_tail", "Head + tail (start and end)")],
        initial=DEFAULTS.truncation,
    )
    freeze_word_embeddings = forms.BooleanField(
        required=False,
        initial=DEFAULTS.freeze_word_embeddings,
        help_text="Keep the word embeddings fixed: fewer trainable weights, steadier on small data sets.",
    )
    early_stopping_patience = forms.IntegerField(
        label="Early-stopping patience",
        required=False,
        min_value=1,
        max_value=50,
        initial=DEFAULTS.early_stopping_patience,
        help_text="Evaluations without a macro-F1 gain before training stops; leave empty to never stop early.",
    )

    def overrides(self) -> dict[str, Any]:
        """Return the validated values as `TrainConfig` overrides for the training service."""
        cleaned = self.cleaned_data
        return {
            "epochs": cleaned["epochs"],
            "lr": cleaned["lr"],
            "batch_size": cleaned["batch_size"],
            "max_length": cleaned["max_length"],
            "truncation": cleaned["truncation"],
            "freeze_word_embeddings": bool(cleaned.get("freeze_word_embeddings")),
            "early_stopping_patience": cleaned.get("early_stopping_patience"),
        }

    @classmethod
    def initial_from(cls, train_config: dict[str, Any]) -> dict[str, Any]:
        """Return initial values from a previous version's config (the defaults where it has none)."""
        return {name: train_config[name] for name in cls.base_fields if name in train_config}
