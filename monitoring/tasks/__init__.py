"""Monitoring's Celery tasks, one module per feature (Celery's autodiscovery imports this package)."""

from monitoring.tasks import alerts, drift, overview, rollups

__all__ = ["alerts", "drift", "overview", "rollups"]
