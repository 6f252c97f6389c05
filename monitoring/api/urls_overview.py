"""Monitoring API: overview and canary/shadow agreement (mounted under /api/v1/ by monitoring/api/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from monitoring.api import canary, overview

urlpatterns: list[URLPattern] = [
    path("projects/<slug:slug>/monitoring/overview", overview.OverviewView.as_view(), name="api-monitoring-overview"),
    path("projects/<slug:slug>/monitoring/canary", canary.CanaryView.as_view(), name="api-monitoring-canary"),
]
