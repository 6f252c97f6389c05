"""Permission-matrix rows for the labeling page URLs (see tests/test_permission_matrix.py)."""

from __future__ import annotations

from tests.permissions import SLUG, Row, api, member

ROWS: list[Row] = [
    # Every member labels; the page itself leases nothing, so it answers 200 on the empty world too.
    Row("labeling:label", member(200), kwargs=SLUG),
    # "<annotation>" is the requesting user's latest label of the world's item: its author may undo it.
    Row(
        "api-annotation-undo",
        api(member(200)),
        "post",
        {**SLUG, "annotation_id": "<annotation>"},
        is_api=True,
    ),
]
