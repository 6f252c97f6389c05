"""Permission-matrix rows for the monitoring traffic URLs (see tests/test_permission_matrix.py).

The Service and Quality pages and their API summaries are reads: any member gets 200 (an empty
project shows "no data"), outsiders the 404 of a project that does not exist.
"""

from __future__ import annotations

from tests.permissions import SLUG, Row, api, member

ROWS: list[Row] = [
    Row("monitoring:service", member(200), kwargs=SLUG),
    Row("monitoring:quality", member(200), kwargs=SLUG),
    Row("api-monitoring-traffic", api(member(200)), kwargs=SLUG, is_api=True),
    Row("api-monitoring-quality", api(member(200)), kwargs=SLUG, is_api=True),
]
