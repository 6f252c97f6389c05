"""Labeling REST endpoints, mounted under /api/v1/."""

from django.urls import path

from labeling.api import exports, imports, items, members, projects, queue
from labeling.api.urls_review import urlpatterns as review_urlpatterns

urlpatterns = [
    path("projects", projects.ProjectListCreateView.as_view(), name="api-project-list"),
    path("projects/<slug:slug>", projects.ProjectDetailView.as_view(), name="api-project-detail"),
    path("projects/<slug:slug>/members", members.MemberListView.as_view(), name="api-member-list"),
    path("projects/<slug:slug>/members/<str:username>", members.MemberDetailView.as_view(), name="api-member-detail"),
    path("projects/<slug:slug>/items", items.ItemListView.as_view(), name="api-item-list"),
    path("projects/<slug:slug>/imports", imports.ImportCreateView.as_view(), name="api-import"),
    path("projects/<slug:slug>/datasets", imports.DatasetListView.as_view(), name="api-dataset-list"),
    path("projects/<slug:slug>/export", exports.ExportView.as_view(), name="api-export"),
    path("projects/<slug:slug>/queue/next", queue.QueueNextView.as_view(), name="api-queue-next"),
    path("projects/<slug:slug>/queue/skip", queue.QueueSkipView.as_view(), name="api-queue-skip"),
    path("projects/<slug:slug>/annotations", queue.AnnotationCreateView.as_view(), name="api-annotation-create"),
    path(
        "projects/<slug:slug>/annotations/<int:annotation_id>/undo",
        queue.AnnotationUndoView.as_view(),
        name="api-annotation-undo",
    ),
    path(
        "projects/<slug:slug>/leases/<uuid:lease_id>/heartbeat",
        queue.LeaseHeartbeatView.as_view(),
        name="api-lease-heartbeat",
    ),
]

urlpatterns += review_urlpatterns
