"""Monitoring pages: drift (mounted under /projects/<slug>/monitoring/ by monitoring/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from monitoring import views_drift as views

urlpatterns: list[URLPattern] = [
    path("drift/", views.drift, name="drift"),
    path("drift/run/", views.drift_run_now, name="drift-run"),
    path("drift/runs/<int:run_id>/send/", views.drift_send, name="drift-send"),
]
