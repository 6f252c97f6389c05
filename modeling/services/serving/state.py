"""What a request is routed by, remembered per web process: the project a member may predict in
(for ``API_AUTH_CACHE_MS``) and the project's release policy and aliases (for
``API_SERVING_STATE_TTL_MS``, 1 s by default: two queries saved per request, about a third of the
web's own CPU per prediction), so a policy change or an alias move reaches the API within a second,
as it reaches the model server (which polls the aliases as often). Both caches live here and only
here; each is single-flight (``ttlcache``): an expired entry is loaded by one thread while the others
wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from labeling.models import Project
from labeling.selectors import project_for_user
from modeling.models import Alias, ReleasePolicy
from modeling.services.serving.ttlcache import TtlCache


@dataclass(frozen=True)
class ServingState:
    """The release policy and the aliases (name -> version number) a request is routed by."""

    policy: ReleasePolicy
    aliases: dict[str, int]


CACHE_ENTRIES = 10_000
_states: TtlCache[int, ServingState] = TtlCache(CACHE_ENTRIES)
_members: TtlCache[tuple[int, str], Project] = TtlCache(CACHE_ENTRIES)


def serving_project(*, user: Any, slug: str) -> Project:
    """Return ``project_for_user`` for any member, remembered for ``API_AUTH_CACHE_MS``.

    Only a granted access is remembered: an outsider is checked on every request, and a new member
    gets in at once; a removed member keeps predicting for at most the cache time.
    """
    ttl = settings.API_AUTH_CACHE_MS / 1000.0
    return _members.get((user.pk, slug), ttl, lambda: project_for_user(user=user, slug=slug))


def serving_state(*, project: Project) -> ServingState:
    """Return the project's release policy (defaults when it has none) and its aliases, at most a TTL old."""

    def load() -> ServingState:
        policy = ReleasePolicy.objects.filter(project=project).first() or ReleasePolicy(project=project)
        aliases = dict(Alias.objects.filter(project=project).values_list("name", "version__number"))
        return ServingState(policy=policy, aliases=aliases)

    return _states.get(project.pk, settings.API_SERVING_STATE_TTL_MS / 1000.0, load)
