"""Model version pages, mounted under /projects/<slug>/models/."""

from __future__ import annotations

from django.urls import path

from modeling import views
from modeling.urls_releases import urlpatterns as release_urlpatterns

app_name = "modeling"

urlpatterns = [
    path("", views.version_list, name="version-list"),
    path("train/", views.train, name="train"),
    path("retrain/", views.retrain, name="retrain"),
    path("learning-curve/", views.learning_curve, name="learning-curve"),
    path("<int:number>/", views.version_detail, name="version-detail"),
    path("<int:number>/progress/", views.version_progress, name="version-progress"),
]

urlpatterns += release_urlpatterns
