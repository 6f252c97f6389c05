"""Permission-matrix rows for the releases URLs (see tests/test_permission_matrix.py).

The matrix's world has version 1 queued (never trained), no comparison and no production version:
every release action lets owners and admins through to a refusal that changes nothing (409: the
version is not a candidate, nothing to roll back or send), reviewers get 403 first, outsiders 404.
Reads are open to every member. Removing an alias that does not exist is no change (204); a PATCH of
the policy and a bad policy form (400) are the only rows that reach the policy itself.
"""

from __future__ import annotations

from tests.permissions import SLUG, VERSION, Row, api, member, owner_up

CANARY = {**SLUG, "name": "canary"}

ROWS: list[Row] = [
    # --- pages ---
    Row("modeling:comparison", member(200), kwargs=VERSION),
    Row("modeling:comparison-run", owner_up(409), "post", VERSION),
    Row("modeling:comparison-send-to-review", owner_up(409), "post", VERSION),
    Row("modeling:release-approve", owner_up(409), "post", VERSION, {"comment": "looks good"}),
    Row("modeling:release-reject", owner_up(409), "post", VERSION),
    Row("modeling:release-promote", owner_up(409), "post", VERSION),
    Row("modeling:release-alias", owner_up(409), "post", VERSION, {"name": "canary", "action": "set"}),
    Row("modeling:release-history", member(200), kwargs=SLUG),
    Row("modeling:release-rollback", owner_up(409), "post", SLUG),
    Row("modeling:release-policy", owner_up(200), kwargs=SLUG),
    Row("modeling:release-policy", owner_up(400), "post", SLUG, {"required_approvals": "9"}),
    # --- API ---
    Row("api-release-policy", api(member(200)), kwargs=SLUG, is_api=True),
    Row("api-release-policy", api(owner_up(200)), "patch", SLUG, {"max_ece": 0.2}, is_api=True),
    Row("api-release-history", api(member(200)), kwargs=SLUG, is_api=True),
    Row("api-release-rollback", api(owner_up(409)), "post", SLUG, {}, is_api=True),
    Row("api-alias", api(owner_up(409)), "put", CANARY, {"version": 1}, is_api=True),
    Row("api-alias", api(owner_up(204)), "delete", CANARY, is_api=True),
    Row("api-comparison-start", api(owner_up(409)), "post", VERSION, is_api=True),
    Row("api-comparison", api(member(200)), kwargs=VERSION, is_api=True),
    Row("api-comparison-send-to-review", api(owner_up(409)), "post", VERSION, is_api=True),
    Row("api-release-approve", api(owner_up(409)), "post", VERSION, {}, is_api=True),
    Row("api-release-reject", api(owner_up(409)), "post", VERSION, {}, is_api=True),
    Row("api-release-promote", api(owner_up(409)), "post", VERSION, {}, is_api=True),
]
