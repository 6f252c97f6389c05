"""Row-numbered import errors: every problem is counted, the first 50 are kept for the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from webapp.errors import ApplicationError, ValidationFailed

MAX_REPORTED_ERRORS = 50


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one row, numbered as a person sees it (CSV line, JSONL line, JSON element)."""

    row: int | None
    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ErrorReport:
    """Collect row errors: count them all, keep the first ``limit``."""

    def __init__(self, limit: int = MAX_REPORTED_ERRORS) -> None:
        self.limit = limit
        self.errors: list[RowError] = []
        self.count = 0

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.errors) < self.limit:
            self.errors.append(error)

    def details(self) -> dict[str, Any]:
        return {"errors": [error.as_dict() for error in self.errors], "error_count": self.count}

    def raise_if_any(self) -> None:
        """Raise ``ValidationFailed`` with the report if any error was found."""
        if not self.count:
            return
        if self.count == 1:
            message = f"{_where(self.errors[0])}{self.errors[0].message} Nothing was imported."
        else:
            shown = min(self.count, self.limit)
            message = f"The import has {self.count} errors (first {shown} shown); nothing was imported."
        raise ValidationFailed(message, details=self.details())


def _where(error: RowError) -> str:
    return f"Row {error.row}: " if error.row is not None else ""


def fail(error: RowError, exc_class: type[ApplicationError] = ValidationFailed, *, code: str | None = None) -> NoReturn:
    """Raise ``exc_class`` for a single file-level error, in the same report format."""
    details = {"errors": [error.as_dict()], "error_count": 1}
    raise exc_class(f"{_where(error)}{error.message}", details=details, code=code)
