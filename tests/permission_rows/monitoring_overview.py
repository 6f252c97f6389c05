"""Permission-matrix rows for the monitoring overview URLs (see tests/test_permission_matrix.py).

The overview and the canary/shadow agreement pages and APIs are reads: every member gets them, even with no traffic.
"""

from __future__ import annotations

from tests.permissions import SLUG, Row, api, member

ROWS: list[Row] = [
    Row("monitoring:overview", member(200), kwargs=SLUG),
    Row("api-monitoring-overview", api(member(200)), kwargs=SLUG, is_api=True),
    Row("monitoring:canary", member(200), kwargs=SLUG),
    Row("api-monitoring-canary", api(member(200)), kwargs=SLUG, is_api=True),
]
