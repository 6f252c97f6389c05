"""Permission-matrix rows for the retraining URLs (see tests/test_permission_matrix.py).

The matrix's world has no gold data: "Retrain now" lets owners and admins through and is refused for
the missing data (400 from the API; the page redirects back to the models page with the message).
The learning curve is open to every member; with version 1 unevaluated it shows "no data" (200).
"""

from __future__ import annotations

from tests.permissions import SLUG, Row, api, member, owner_up

ROWS: list[Row] = [
    Row("modeling:retrain", owner_up(302), "post", SLUG),
    Row("modeling:learning-curve", member(200), kwargs=SLUG),
    Row("api-retrain", api(owner_up(400)), "post", SLUG, is_api=True),
    Row("api-learning-curve", api(member(200)), kwargs=SLUG, is_api=True),
]
