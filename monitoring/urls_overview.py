"""Monitoring pages: overview and canary/shadow agreement (mounted under /projects/<slug>/monitoring/ by
monitoring/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from monitoring import views_canary, views_overview

urlpatterns: list[URLPattern] = [
    path("", views_overview.overview, name="overview"),
    path("canary/", views_canary.canary, name="canary"),
]
