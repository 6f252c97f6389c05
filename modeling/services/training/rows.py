"""A project's gold data in the shape ``modeling.ml`` takes: the training items (the imported train
split and every pool item labeled through the queue), the frozen eval split, and reading them while
taking the labels they include off the project's new-label counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from labeling.models import Item, Label, Project
from modeling.models import ModelVersion

# Gold items a version learns from: the imported train split and every pool item labeled through the queue.
# The eval split stays frozen for evaluation.
TRAINING_SPLITS = (Item.Split.TRAIN, Item.Split.POOL)


@dataclass
class TrainingRows:
    """A project's gold data in the shape modeling.ml takes: texts, label ids in Label order, languages."""

    labels: list[str]
    train_texts: list[str]
    train_labels: list[int]
    eval_texts: list[str]
    eval_labels: list[int]
    eval_languages: list[str]

    def label_counts(self) -> dict[str, int]:
        """Return the number of train examples per label name."""
        counts = dict.fromkeys(self.labels, 0)
        for label in self.train_labels:
            counts[self.labels[label]] += 1
        return counts


def training_rows(project: Project) -> TrainingRows:
    """Load the gold training items (train split and labeled pool) and the eval split, ordered by id."""
    labels = list(Label.objects.filter(project=project).order_by("order", "id").values_list("id", "name"))
    index = {label_id: i for i, (label_id, _) in enumerate(labels)}
    gold = Item.objects.filter(project=project, gold_label__isnull=False).order_by("id")
    train = list(gold.filter(split__in=TRAINING_SPLITS).values_list("text", "gold_label_id"))
    evals = list(gold.filter(split=Item.Split.EVAL).values_list("text", "gold_label_id", "language"))
    return TrainingRows(
        labels=[name for _, name in labels],
        train_texts=[text for text, _ in train],
        train_labels=[index[label] for _, label in train],
        eval_texts=[text for text, _, _ in evals],
        eval_labels=[index[label] for _, label, _ in evals],
        eval_languages=[language or "und" for _, _, language in evals],
    )


@transaction.atomic
def training_rows_consume(version: ModelVersion) -> TrainingRows:
    """Read the version's training rows and take the labels they include off the project's new-label counter.

    The project row lock makes the snapshot exact: labeling adds to ``labels_since_training`` last in
    the transaction that makes an item gold, so that increment waits here; the item is then either in
    the rows read and in the snapshot, or in neither and counted toward the next retraining. The counter
    is decreased by the snapshot (F(), never overwritten) and the amount is kept in ``data["new_labels"]``
    (added up over reruns), which also tells automatic retraining that this version consumed its labels.
    """
    project = Project.objects.select_for_update().get(pk=version.project_id)
    consumed = project.labels_since_training
    rows = training_rows(project)
    Project.objects.filter(pk=project.pk).update(
        labels_since_training=Greatest(F("labels_since_training") - consumed, 0)
    )
    version.data = {**version.data, "new_labels": int(version.data.get("new_labels", 0)) + consumed}
    version.save(update_fields=["data", "updated_at"])
    return rows
