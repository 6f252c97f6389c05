"""Monitoring API routes, mounted under /api/v1/ (one module per feature)."""

from __future__ import annotations

from monitoring.api import urls_drift, urls_overview, urls_slo, urls_traffic

urlpatterns = [
    *urls_overview.urlpatterns,
    *urls_traffic.urlpatterns,
    *urls_slo.urlpatterns,
    *urls_drift.urlpatterns,
]
