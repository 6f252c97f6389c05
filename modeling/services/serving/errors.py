"""The two ways serving refuses a request for now rather than for good: 503 (no production model,
the model server down, overloaded or still loading a model) and 429 (the caller's requests for this
minute are used up), each with the seconds after which to retry.
"""

from __future__ import annotations

import math
from typing import Any

from rest_framework import status

from webapp.errors import ApplicationError, ServiceUnavailable

NO_MODEL_RETRY_AFTER = 5


class ServingUnavailable(ServiceUnavailable):
    """503: no production model, the model server is down or overloaded; retry after ``retry_after`` s."""

    def __init__(self, message: str, *, retry_after: float, code: str = "unavailable", details: Any = None) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = max(1, math.ceil(retry_after))


class RateLimited(ApplicationError):
    """429: this caller used up its requests for the current minute."""

    code = "rate_limited"
    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after
