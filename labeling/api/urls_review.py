"""Review and agreement endpoints, mounted under /api/v1/."""

from django.urls import path

from labeling.api import review

urlpatterns = [
    path("projects/<slug:slug>/agreement", review.AgreementView.as_view(), name="api-agreement"),
    path("projects/<slug:slug>/review", review.ReviewListView.as_view(), name="api-review-list"),
    path("projects/<slug:slug>/review/<int:item_id>/resolve", review.ResolveView.as_view(), name="api-review-resolve"),
]
