"""Permission-matrix rows for the serving URLs (see tests/test_permission_matrix.py).

Any member may predict and send feedback. An empty body lets members through to the 400 (no texts,
no prediction id) before the model server is asked anything, and writes nothing.
"""

from __future__ import annotations

from tests.permissions import SLUG, Row, api, member

ROWS: list[Row] = [
    Row("api-predict", api(member(400)), "post", SLUG, {}, is_api=True),
    Row("api-feedback", api(member(400)), "post", SLUG, {}, is_api=True),
]
