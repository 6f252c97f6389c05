"""Monitoring API: drift (mounted under /api/v1/ by monitoring/api/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from monitoring.api import drift as views

PROJECT = "projects/<slug:slug>"

urlpatterns: list[URLPattern] = [
    path(f"{PROJECT}/drift/runs", views.DriftRunListView.as_view(), name="api-drift-runs"),
    path(f"{PROJECT}/drift/runs/<int:run_id>", views.DriftRunView.as_view(), name="api-drift-run"),
    path(f"{PROJECT}/drift/runs/<int:run_id>/send-to-labeling", views.DriftSendView.as_view(), name="api-drift-send"),
]
