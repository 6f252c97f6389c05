"""Monitoring pages: service and quality (mounted under /projects/<slug>/monitoring/ by monitoring/urls.py)."""

from __future__ import annotations

from django.urls import path

from monitoring import views_traffic

urlpatterns = [
    path("service/", views_traffic.service, name="service"),
    path("quality/", views_traffic.quality, name="quality"),
]
