"""Monitoring pages, mounted under /projects/<slug>/monitoring/ (one module per feature)."""

from __future__ import annotations

from monitoring import urls_drift, urls_overview, urls_slo, urls_traffic

app_name = "monitoring"

urlpatterns = [
    *urls_overview.urlpatterns,
    *urls_traffic.urlpatterns,
    *urls_slo.urlpatterns,
    *urls_drift.urlpatterns,
]
