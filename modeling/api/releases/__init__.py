"""Release endpoints: the release policy, comparisons, approve/reject/promote/rollback, the canary and
shadow aliases, and the release history. Every member reads; owners and admins act.

The package, by what each part does: ``common`` (the shared OpenAPI responses and the version
lookup), ``serializers`` (request and response shapes), ``policy``, ``comparisons``, ``decisions``
(approve, reject, promote, roll back), ``aliases`` and ``history`` (the views). Everything public is
re-exported here: ``modeling.api.urls_releases`` reads the views from ``modeling.api.releases``.
"""

from __future__ import annotations

from modeling.api.releases.aliases import AliasView
from modeling.api.releases.common import BAD_COMMENT, NOT_A_MEMBER, OWNERS
from modeling.api.releases.comparisons import ComparisonStartView, ComparisonView, SendToReviewView
from modeling.api.releases.decisions import ApproveView, PromoteView, RejectView, RollbackView
from modeling.api.releases.history import MAX_EVENTS, HistoryView
from modeling.api.releases.policy import ReleasePolicyView
from modeling.api.releases.serializers import (
    AliasOutSerializer,
    AliasSerializer,
    ApprovalOutcomeSerializer,
    ApprovalSerializer,
    ApproveSerializer,
    CommentSerializer,
    ComparisonSerializer,
    EventSerializer,
    GateSerializer,
    HistorySerializer,
    PeriodSerializer,
    ReleasePolicyPatchSerializer,
    ReleasePolicySerializer,
    ReleaseStateSerializer,
    ReviewBatchSerializer,
    VersionStatusSerializer,
)

__all__ = [
    "BAD_COMMENT",
    "MAX_EVENTS",
    "NOT_A_MEMBER",
    "OWNERS",
    "AliasOutSerializer",
    "AliasSerializer",
    "AliasView",
    "ApprovalOutcomeSerializer",
    "ApprovalSerializer",
    "ApproveSerializer",
    "ApproveView",
    "CommentSerializer",
    "ComparisonSerializer",
    "ComparisonStartView",
    "ComparisonView",
    "EventSerializer",
    "GateSerializer",
    "HistorySerializer",
    "HistoryView",
    "PeriodSerializer",
    "PromoteView",
    "RejectView",
    "ReleasePolicyPatchSerializer",
    "ReleasePolicySerializer",
    "ReleasePolicyView",
    "ReleaseStateSerializer",
    "ReviewBatchSerializer",
    "RollbackView",
    "SendToReviewView",
    "VersionStatusSerializer",
]
