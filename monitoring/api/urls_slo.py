"""Monitoring API: slo (mounted under /api/v1/ by monitoring/api/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from monitoring.api import slo as views

PROJECT = "projects/<slug:slug>"

urlpatterns: list[URLPattern] = [
    path(f"{PROJECT}/alerts", views.AlertListView.as_view(), name="api-alerts"),
    path(f"{PROJECT}/slo", views.SloView.as_view(), name="api-slo"),
    path(f"{PROJECT}/alert-channels", views.ChannelListView.as_view(), name="api-alert-channels"),
    path(f"{PROJECT}/alert-channels/<int:channel_id>", views.ChannelView.as_view(), name="api-alert-channel"),
    path(
        f"{PROJECT}/alert-channels/<int:channel_id>/test",
        views.ChannelTestView.as_view(),
        name="api-alert-channel-test",
    ),
]
