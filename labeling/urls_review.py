"""Review and agreement pages, mounted under /projects/ in the ``labeling`` namespace."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
