"""Permission-matrix rows for the monitoring drift URLs (see tests/test_permission_matrix.py).

The matrix's world has no production version and no drift run: running the tests now lets owners and
admins through to a refusal that changes nothing (409: no production version); run 999 is a 400 naming
the id (reviewers get 403 first on the actions, outsiders the project's 404).
"""

from __future__ import annotations

from tests.permissions import SLUG, Row, api, member, owner_up

RUN = {**SLUG, "run_id": "999"}

ROWS: list[Row] = [
    # --- pages ---
    Row("monitoring:drift", member(200), kwargs=SLUG),
    Row("monitoring:drift-run", owner_up(409), "post", SLUG, {"hours": "24"}),
    Row("monitoring:drift-send", owner_up(400), "post", RUN, {"limit": "10"}),
    # --- API ---
    Row("api-drift-runs", api(member(200)), kwargs=SLUG, is_api=True),
    Row("api-drift-runs", api(owner_up(409)), "post", SLUG, {"hours": 24}, is_api=True),
    Row("api-drift-run", api(member(400)), kwargs=RUN, is_api=True),
    Row("api-drift-send", api(owner_up(400)), "post", RUN, {"limit": 10}, is_api=True),
]
