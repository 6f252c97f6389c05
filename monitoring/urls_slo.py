"""Monitoring pages: slo (mounted under /projects/<slug>/monitoring/ by monitoring/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from monitoring import views_slo as views

urlpatterns: list[URLPattern] = [
    path("slo/", views.slo, name="slo"),
    path("slo/settings/", views.slo_settings, name="slo-settings"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/channels/", views.channel_add, name="channel-add"),
    path("alerts/channels/<int:channel_id>/remove/", views.channel_remove, name="channel-remove"),
    path("alerts/channels/<int:channel_id>/test/", views.channel_test, name="channel-test"),
]
