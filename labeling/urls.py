"""Labeling pages, mounted under /projects/."""

from django.urls import path

from labeling.views import projects

app_name = "labeling"

urlpatterns = [
    path("", projects.project_list, name="project-list"),
    path("<slug:slug>/", projects.project_detail, name="project-detail"),
]
