"""Celery tasks: alerts (thin: ids in, a service call, the result recorded)."""

from __future__ import annotations
