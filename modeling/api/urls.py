"""Modeling REST endpoints, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import path

from modeling.api import views
from modeling.api.urls_releases import urlpatterns as release_urlpatterns

urlpatterns = [
    path("projects/<slug:slug>/model-versions", views.ModelVersionListView.as_view(), name="api-model-version-list"),
    path(
        "projects/<slug:slug>/model-versions/<int:number>",
        views.ModelVersionDetailView.as_view(),
        name="api-model-version-detail",
    ),
    path("projects/<slug:slug>/retrain", views.RetrainView.as_view(), name="api-retrain"),
    path("projects/<slug:slug>/learning-curve", views.LearningCurveView.as_view(), name="api-learning-curve"),
]

urlpatterns += release_urlpatterns  # the serving endpoints are mounted first, in webapp.urls
