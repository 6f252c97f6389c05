"""Monitoring API: traffic and quality (mounted under /api/v1/ by monitoring/api/urls.py)."""

from __future__ import annotations

from django.urls import path

from monitoring.api import traffic as views

urlpatterns = [
    path("projects/<slug:slug>/monitoring/traffic", views.TrafficView.as_view(), name="api-monitoring-traffic"),
    path("projects/<slug:slug>/monitoring/quality", views.QualityView.as_view(), name="api-monitoring-quality"),
]
