"""Monitoring pages: drift (mounted under /projects/<slug>/monitoring/ by monitoring/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
