"""The permission matrix's vocabulary: roles, expected outcomes and the ``Row`` that names one check.

Rows live in ``tests/test_permission_matrix.py`` and, per feature, in ``tests/permission_rows/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("anonymous", "outsider", "reviewer", "owner", "admin", "superuser")
ANON_API_STATUS = 401  # see the module docstring
LOGIN = "login"  # a page redirect to the login page
ALLOWED = "allowed"  # permission granted; the status itself belongs to the endpoint's own tests
GHOST_SLUG = "no-such-project"


def member(ok: Any) -> dict[str, Any]:
    """Pages: any member of the project gets ``ok``."""
    return {"anonymous": LOGIN, "outsider": 404, "reviewer": ok, "owner": ok, "admin": ok, "superuser": ok}


def owner_up(ok: Any) -> dict[str, Any]:
    return {**member(ok), "reviewer": 403}


def admin_up(ok: Any) -> dict[str, Any]:
    return {**member(ok), "reviewer": 403, "owner": 403}


def api(expected: dict[str, Any]) -> dict[str, Any]:
    return {**expected, "anonymous": ANON_API_STATUS}


@dataclass(frozen=True)
class Row:
    name: str
    expected: dict[str, Any]
    method: str = "get"
    kwargs: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    is_api: bool = False
    id: str = ""

    @property
    def test_id(self) -> str:
        return self.id or f"{self.method.upper()} {self.name}"


SLUG = {"slug": "acme-sentiment"}
JOB = {"job_id": "<job>"}
VERSION = {**SLUG, "number": "1"}
