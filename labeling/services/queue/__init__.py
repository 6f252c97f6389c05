"""The labeling queue: leases, append-only annotations, skips, undo, the gold rules and queue priorities.

Every write locks the item row first; a lease row is only ever written under its item's lock, so the
item lock covers it. The next-item query locks its candidates with ``SKIP LOCKED`` on PostgreSQL:
concurrent reviewers walk past each other's rows instead of queueing behind them, and never receive
the same item.

An item's status, gold label and gold source are always *derived* (``gold._derive``) from its effective
annotations (label rows not retracted) and its active leases; each service appends rows, then applies
the derivation and the counter deltas it implies. That single rule keeps submit, undo, skip and
expiry consistent with each other and with a full recount. The two hot paths (a lease of a queued
item, a submit on an overlap-1 item) know the derivation's answer from the locked row itself and skip
its three reads: a queued item has no effective annotation and no active lease, and an overlap-1 item
without an adjudication has no effective annotation but the one being submitted.

Counters (``ProjectCounts``, one row per project that every status change touches) are added to in
one statement *after* the service's transaction commits (``counters._writing``): inside it, that row's lock
would be held until the commit by every reviewer's transaction in turn, and 32 busy reviewers queued
behind it. The new-gold counter (``Project.labels_since_training``) stays the transaction's last
statement: modeling's training snapshot relies on it (``training_rows_consume``).

The package, by what each part does: ``leasing`` (the next-item query, held leases, heartbeats, skips,
expiry), ``annotations`` (submit, undo, adjudication), ``priorities`` (the ranked queue and overlap
targets), and what they share: ``gold`` (the gold rules), ``lease_checks`` (the locked item and its
lease) and ``counters`` (the counter deltas). Everything public is re-exported here: import it from
``labeling.services.queue``.
"""

from __future__ import annotations

from labeling.services.queue.annotations import (
    MAX_SECONDS_SPENT,
    Suggestion,
    annotation_resolve,
    annotation_submit,
    annotation_undo,
)
from labeling.services.queue.counters import Tally, counter_deltas_apply
from labeling.services.queue.gold import Derived
from labeling.services.queue.leasing import (
    CANDIDATES,
    LAZY_EXPIRY_LIMIT,
    LEASED,
    MAX_HELD,
    OPEN_STATUSES,
    lease_expire_sweep,
    lease_heartbeat,
    queue_hold,
    queue_next,
    queue_skip,
)
from labeling.services.queue.priorities import overlap_target_for, queue_set_priorities

__all__ = [
    "CANDIDATES",
    "LAZY_EXPIRY_LIMIT",
    "LEASED",
    "MAX_HELD",
    "MAX_SECONDS_SPENT",
    "OPEN_STATUSES",
    "Derived",
    "Suggestion",
    "Tally",
    "annotation_resolve",
    "annotation_submit",
    "annotation_undo",
    "counter_deltas_apply",
    "lease_expire_sweep",
    "lease_heartbeat",
    "overlap_target_for",
    "queue_hold",
    "queue_next",
    "queue_set_priorities",
    "queue_skip",
]
