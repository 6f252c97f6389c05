"""Releases endpoints, mounted under /api/v1/."""

from django.urls import URLPattern, path

from modeling.api import releases as views

VERSION = "projects/<slug:slug>/model-versions/<int:number>"

urlpatterns: list[URLPattern] = [
    path("projects/<slug:slug>/release-policy", views.ReleasePolicyView.as_view(), name="api-release-policy"),
    path("projects/<slug:slug>/releases", views.HistoryView.as_view(), name="api-release-history"),
    path("projects/<slug:slug>/rollback", views.RollbackView.as_view(), name="api-release-rollback"),
    path("projects/<slug:slug>/aliases/<str:name>", views.AliasView.as_view(), name="api-alias"),
    path(f"{VERSION}/compare", views.ComparisonStartView.as_view(), name="api-comparison-start"),
    path(f"{VERSION}/comparison", views.ComparisonView.as_view(), name="api-comparison"),
    path(
        f"{VERSION}/comparison/send-to-review",
        views.SendToReviewView.as_view(),
        name="api-comparison-send-to-review",
    ),
    path(f"{VERSION}/approve", views.ApproveView.as_view(), name="api-release-approve"),
    path(f"{VERSION}/reject", views.RejectView.as_view(), name="api-release-reject"),
    path(f"{VERSION}/promote", views.PromoteView.as_view(), name="api-release-promote"),
]
