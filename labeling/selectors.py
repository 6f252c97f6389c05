"""Permission-checked reads of projects and items."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from labeling.models import ROLE_RANK, Membership, Project, Role
from webapp.errors import Forbidden, NotFound

AnyUser = AbstractBaseUser | AnonymousUser


def projects_for_user(*, user: AnyUser) -> QuerySet[Project]:
    """Return the projects ``user`` may see: all for a superuser, else those they are a member of."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


def role_for_user(*, user: AnyUser, project: Project) -> str | None:
    """Return the user's role in the project (superusers act as admins), or None for outsiders."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def project_for_user(*, user: AnyUser, slug: str, min_role: str = Role.REVIEWER) -> Project:
    """Return the project if ``user`` holds at least ``min_role`` in it.

    Outsiders get ``NotFound``, exactly as for a slug that does not exist, so a project's existence
    never leaks; members with too small a role get ``Forbidden``.
    """
    project = Project.objects.filter(slug=slug).select_related("counts").first()
    role = role_for_user(user=user, project=project) if project else None
    if project is None or role is None:
        raise NotFound("Project not found.")
    if ROLE_RANK[role] < ROLE_RANK[min_role]:
        raise Forbidden(
            f"This needs the {Role(min_role).label.lower()} role in this project; you are {Role(role).label.lower()}."
        )
    project.user_role = role  # type: ignore[attr-defined]
    return project
