"""Monitoring API: traffic (mounted under /api/v1/ by monitoring/api/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
