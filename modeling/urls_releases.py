"""Release pages (comparison, approval, history), mounted under /projects/<slug>/models/."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
