"""A project's fixed stop set for the "stabilizing predictions" stopping signal: choosing it, once.

Bloodgood & Vijay-Shanker (2009) compare successive models' predictions on a fixed set of unlabeled
examples (the stop set); when the models stop changing their minds there, labeling more buys little.
The set is chosen from the unlabeled pool at the project's first pool scoring and never changes
afterwards; pool scoring predicts every item of it with each version, labeled or not.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, F, Value
from django.db.models.functions import Mod

from labeling.models import Item
from modeling.models import StopSet, StopSetItem
from modeling.services.scoring import POOL_STATUSES

logger = logging.getLogger(__name__)

# Items in a stop set unless settings.MODELING_STOP_SET_SIZE says otherwise (read when a set is chosen).
STOP_SET_SIZE = 1_000
# Fibonacci hashing (Knuth): id * floor(2^32 / phi) mod 2^32 scatters consecutive ids over the range, so
# ordering by it samples the whole pool, deterministically, instead of taking the first items imported.
# Products stay below 2^63 for ids under 3.4 billion, in SQLite and PostgreSQL bigint alike.
_HASH_MULTIPLIER = 2_654_435_761
_HASH_MODULUS = 2**32


def stop_set_size() -> int:
    """Return how many items a new stop set gets."""
    return int(getattr(settings, "MODELING_STOP_SET_SIZE", STOP_SET_SIZE))


def stop_set_item_ids(*, project_id: int) -> list[int]:
    """Return the ids of the project's stop-set items in id order (empty before the set is chosen)."""
    rows = StopSetItem.objects.filter(stop_set_id=project_id).order_by("item_id")
    return list(rows.values_list("item_id", flat=True))


def stop_set_ensure(*, project_id: int) -> list[int]:
    """Return the project's stop-set item ids, choosing them from the unlabeled pool if none were chosen yet.

    A pool with no unlabeled item chooses nothing (and a later call tries again). Two concurrent first
    calls cannot both choose: the second one's insert of the StopSet row waits on the first one's and
    then fails on the primary key, and it reads the set the first one chose.
    """
    if StopSet.objects.filter(pk=project_id).exists():
        return stop_set_item_ids(project_id=project_id)
    try:
        with transaction.atomic():
            _choose(project_id)
    except IntegrityError:
        logger.info("stop set chosen concurrently", extra={"project_id": project_id})
    return stop_set_item_ids(project_id=project_id)


def _choose(project_id: int) -> None:
    """Create the StopSet row and its items (inside the caller's transaction), or nothing for an empty pool."""
    stop_set = StopSet.objects.create(project_id=project_id)
    spread = Mod(F("id") * Value(_HASH_MULTIPLIER), Value(_HASH_MODULUS), output_field=BigIntegerField())
    chosen = list(
        Item.objects.filter(project_id=project_id, split=Item.Split.POOL, status__in=POOL_STATUSES)
        .annotate(spread=spread)
        .order_by("spread", "id")
        .values_list("id", flat=True)[: stop_set_size()]
    )
    if not chosen:
        # Undo the StopSet row too, so the first scoring of a filled pool still chooses.
        transaction.set_rollback(True)
        return
    StopSetItem.objects.bulk_create([StopSetItem(stop_set=stop_set, item_id=item_id) for item_id in chosen])
    logger.info("stop set chosen", extra={"project_id": project_id, "items": len(chosen)})
