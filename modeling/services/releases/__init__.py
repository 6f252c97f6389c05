"""The release flow: approval under the project's gates, rejection, promotion and rollback of the
``production`` alias, the ``canary`` and ``shadow`` aliases, and the release policy.

Statuses move ``candidate`` → ``approved`` | ``rejected``; ``approved`` → ``production`` (promote) |
``rejected``; ``production`` → ``retired`` (a later promotion or a rollback). Every status change and
every alias move writes one append-only ``ReleaseEvent`` in the same transaction as the change, so the
audit trail and the state can never disagree.

Lock order, the same in every action: the project row first (one release action per project at a
time: two promotions never interleave), then the alias rows, then the versions. Owners and admins act;
reviewers get 403 and outsiders 404, here as in the views, so a service called from elsewhere is
just as safe.

The package, by what each part does: ``guards`` (the locks, the manager check, the text and alias-name
checks), ``events`` (status changes and alias moves, each recorded), ``policy`` (the release policy and
the gates under it), ``state`` (a version's release state for the pages and the API), ``history`` (what
was in production when, and the rollback stack), ``approval`` (approve, reject, send disagreements to
review), ``promotion`` (promote and roll back) and ``aliases`` (canary and shadow). Everything public is
re-exported here: import it from ``modeling.services.releases``.
"""

from __future__ import annotations

from modeling.services.releases.aliases import ALIASABLE, alias_clear, alias_set
from modeling.services.releases.approval import (
    ApprovalOutcome,
    GatesFailed,
    disagreements_send_to_review,
    release_approve,
    release_reject,
)
from modeling.services.releases.guards import (
    MAX_TEXT,
    SETTABLE_ALIASES,
    check_alias_name,
    lock_project,
    require_manager,
)
from modeling.services.releases.history import (
    PROMOTE,
    ROLLBACK,
    ProductionPeriod,
    ReleaseHistory,
    production_stack,
    release_history,
)
from modeling.services.releases.policy import (
    APPROVAL_FIELDS,
    GATE_FIELDS,
    POLICY_FIELDS,
    SERVING_FIELDS,
    comparison_gates,
    eval_summary,
    gate_dict,
    gate_settings,
    policy_for,
    release_policy_update,
)
from modeling.services.releases.promotion import release_promote, release_rollback
from modeling.services.releases.state import (
    ReleaseState,
    aliases_of,
    latest_comparison,
    production_version,
    release_state,
)

__all__ = [
    "ALIASABLE",
    "APPROVAL_FIELDS",
    "GATE_FIELDS",
    "MAX_TEXT",
    "POLICY_FIELDS",
    "PROMOTE",
    "ROLLBACK",
    "SERVING_FIELDS",
    "SETTABLE_ALIASES",
    "ApprovalOutcome",
    "GatesFailed",
    "ProductionPeriod",
    "ReleaseHistory",
    "ReleaseState",
    "alias_clear",
    "alias_set",
    "aliases_of",
    "check_alias_name",
    "comparison_gates",
    "disagreements_send_to_review",
    "eval_summary",
    "gate_dict",
    "gate_settings",
    "latest_comparison",
    "lock_project",
    "policy_for",
    "production_stack",
    "production_version",
    "release_approve",
    "release_history",
    "release_policy_update",
    "release_promote",
    "release_reject",
    "release_rollback",
    "release_state",
    "require_manager",
]
