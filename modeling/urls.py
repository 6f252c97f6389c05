"""Model version pages, mounted under /projects/<slug>/models/."""

from __future__ import annotations

app_name = "modeling"

urlpatterns: list = []
