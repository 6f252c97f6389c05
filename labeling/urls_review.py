"""Review and agreement pages, mounted under /projects/ in the ``labeling`` namespace."""

from django.urls import path

from labeling.views import review

urlpatterns = [
    path("<slug:slug>/review/", review.review_page, name="review"),
    path("<slug:slug>/agreement/", review.agreement_page, name="agreement"),
]
