"""Release pages (comparison, approval, history, policy), mounted under /projects/<slug>/models/."""

from django.urls import URLPattern, path

from modeling import views_releases as views

urlpatterns: list[URLPattern] = [
    path("releases/", views.history, name="release-history"),
    path("releases/rollback/", views.rollback, name="release-rollback"),
    path("releases/policy/", views.policy, name="release-policy"),
    path("<int:number>/compare/", views.comparison, name="comparison"),
    path("<int:number>/compare/run/", views.comparison_run, name="comparison-run"),
    path("<int:number>/compare/send-to-review/", views.send_to_review, name="comparison-send-to-review"),
    path("<int:number>/approve/", views.approve, name="release-approve"),
    path("<int:number>/reject/", views.reject, name="release-reject"),
    path("<int:number>/promote/", views.promote, name="release-promote"),
    path("<int:number>/alias/", views.alias, name="release-alias"),
]
