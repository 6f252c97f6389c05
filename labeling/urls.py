"""Labeling pages, mounted under /projects/."""

from django.urls import path

from labeling.urls_review import urlpatterns as review_urlpatterns
from labeling.views import exports, imports, items, label, projects

app_name = "labeling"

urlpatterns = [
    path("", projects.project_list, name="project-list"),
    path("new/", projects.project_create_view, name="project-create"),
    path("<slug:slug>/", projects.project_detail, name="project-detail"),
    path("<slug:slug>/edit/", projects.project_edit, name="project-edit"),
    path("<slug:slug>/members/", projects.project_members, name="project-members"),
    path("<slug:slug>/jobs/", projects.project_jobs, name="project-jobs"),
    path("<slug:slug>/items/", items.item_list, name="item-list"),
    path("<slug:slug>/label/", label.label_page, name="label"),
    path("<slug:slug>/import/", imports.import_page, name="import"),
    path("<slug:slug>/export/<str:fmt>/", exports.export_download, name="export"),
]

urlpatterns += review_urlpatterns
