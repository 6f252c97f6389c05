"""Permission-matrix rows for the monitoring traffic URLs (see tests/test_permission_matrix.py)."""

from __future__ import annotations

from tests.permissions import Row

ROWS: list[Row] = []
