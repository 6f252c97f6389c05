"""Top-level URL map: pages, the REST API under /api/v1/, docs, admin and operations endpoints."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from webapp import health, views

api_v1 = [
    path("", include("labeling.api.urls")),
    path("", include("webapp.api")),
    path("", include("modeling.api.urls")),
    path("", include("monitoring.api.urls")),
]

urlpatterns = [
    # The prediction API first: it is most of the traffic, and resolving it behind every page pattern
    # was ~6% of the web's time per prediction (URLResolver tries each pattern in order).
    path("api/v1/", include("modeling.api.urls_serving")),
    path("", RedirectView.as_view(pattern_name="labeling:project-list", permanent=False), name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/settings/", views.account_settings, name="account-settings"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:job_id>/progress/", views.job_progress, name="job-progress"),
    path("jobs/<uuid:job_id>/cancel/", views.job_cancel_view, name="job-cancel"),
    path("projects/", include("labeling.urls")),
    path("projects/<slug:slug>/models/", include("modeling.urls")),
    path("projects/<slug:slug>/monitoring/", include("monitoring.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
]

handler404 = "webapp.errors.handler404"
handler500 = "webapp.errors.handler500"
