"""What the release endpoints share: the OpenAPI responses they document alike, and the version lookup
(404 for a number the project does not have).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse

from labeling.models import Project
from modeling.models import ModelVersion
from webapp.errors import NotFound

NOT_A_MEMBER = OpenApiResponse(description="No such project (or version), or you are not a member.")
OWNERS = OpenApiResponse(description="Needs the model owner or admin role.")
BAD_COMMENT = OpenApiResponse(description="A comment or reason that is not text or longer than 5,000 characters.")


def _version(project: Project, number: int) -> ModelVersion:
    version = (
        ModelVersion.objects.filter(project=project, number=number).select_related("project", "created_by").first()
    )
    if version is None:
        raise NotFound("Model version not found.")
    return version
