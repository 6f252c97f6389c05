"""The queue's counters: per-status counts (``ProjectCounts``) and the new-gold counter, kept by deltas.

Every service that changes items collects the counter deltas its changes imply in a ``Tally``; the
per-reviewer services add them after their transaction commits (``_writing``), so no reviewer holds the
counters' one row locked while the others wait; bulk writers that run seldom add them inside their own
transaction (``counter_deltas_apply``). The new-gold counter stays the transaction's last statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from labeling.models import Project, ProjectCounts


def _sum(changes: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for change in changes:
        for key, delta in change.items():
            total[key] = total.get(key, 0) + delta
    return total


def _add_new_gold(project_id: int, gold: int) -> None:
    if gold:
        Project.objects.filter(pk=project_id).update(
            labels_since_training=Greatest(F("labels_since_training") + gold, 0)
        )


def counter_deltas_apply(project_id: int, *changes: dict[str, int]) -> None:
    """Apply summed counter deltas inside the caller's transaction, counters first, then the new-gold counter.

    For bulk writers that run seldom (``queue_set_priorities``, ``queue_batches``); the per-reviewer
    services use ``_writing``, which adds to the counters after their commit.
    """
    total = _sum(list(changes))
    gold = total.pop("_gold", 0)
    ProjectCounts(project_id=project_id).add(total)
    _add_new_gold(project_id, gold)


@dataclass
class Tally:
    """The counter deltas one service's writes imply, collected while it runs."""

    changes: list[dict[str, int]] = field(default_factory=list)

    def add(self, change: dict[str, int]) -> None:
        self.changes.append(change)


@contextmanager
def _writing(project_id: int) -> Iterator[Tally]:
    """Run the block in a transaction that ends with the new-gold counter; add its counter deltas after commit.

    The counters' one row is updated in a statement of its own once the items' changes committed, so no
    reviewer's transaction holds that row's lock while its process runs Python (or waits for a core).
    A crash between the commit and that statement leaves the counters short of it: ``project_recount``
    repairs that, as any drift. Called inside an outer transaction (a test, a caller's ``atomic``), the
    counters are updated inside it too, so they still commit together with the items.
    """
    tally = Tally()
    with transaction.atomic():
        yield tally
        total = _sum(tally.changes)
        _add_new_gold(project_id, total.pop("_gold", 0))  # last: modeling's training snapshot waits on it
    ProjectCounts(project_id=project_id).add({key: delta for key, delta in total.items() if delta})
