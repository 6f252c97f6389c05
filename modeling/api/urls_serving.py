"""Serving endpoints, mounted under /api/v1/."""

from django.urls import URLPattern, path

from modeling.api import predict

urlpatterns: list[URLPattern] = [
    path("projects/<slug:slug>/predict", predict.PredictView.as_view(), name="api-predict"),
    path("projects/<slug:slug>/feedback", predict.FeedbackView.as_view(), name="api-feedback"),
]
