"""Agreement figures of a project: kappa and alpha, per label, per reviewer pair and against the gold labels.

The figures rest on *effective* annotations: each reviewer's latest ``label`` row per item that no
``retract`` row undoes (the same rule the queue's gold derivation uses). Two aggregate queries read
them, whatever the project's size: the effective annotations of the items two or more reviewers
labeled (the overlap: a small share of the project by design), and per reviewer the count of their
effective annotations on gold items and of those matching the gold label. No query per item.

The figures are cached (``project_agreement_cached``) under a key that names everything they are
computed from that can change: the project, how many annotation rows it has and the newest one's id
(rows are only appended: a submit, an undo's retract row and an adjudication each add one, and a row
committed late still changes the count), and its labels' names and colours. With the default cache
(``CACHE_URL``: per process) every web process keeps its own copy; with a shared one they share it.
Either way no copy is served once a new row exists.

Cohen's kappa needs two fixed raters, but overlap items go to whichever reviewers ask first. On the
items exactly two reviewers labeled, rater A is whoever labeled first and rater B the other (the
usual convention for "two coders per item" data); Krippendorff's alpha needs no such assignment and
covers every item with two or more ratings. Pairwise kappas use the reviewers' real identities.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet

from labeling.models import Annotation, Item, Project
from labeling.stats import Alpha, Kappa, cohen_kappa, krippendorff_alpha, per_label_alpha, per_label_kappa

# A cached copy outlives no change to the rows it rests on (see the key); the limit only bounds how long
# a renamed reviewer's old name can show.
AGREEMENT_CACHE_SECONDS = 600

# Below this many items a figure is shown with a "few items" caution: kappa's standard error on 20
# items is around 0.15-0.2, wide enough to change the reading.
FEW_ITEMS = 20


@dataclass(frozen=True)
class Figure:
    """A chance-corrected coefficient (None when undefined), the raw agreement and what it rests on."""

    value: float | None
    observed_agreement: float | None
    n_items: int
    n_annotations: int

    @property
    def few_items(self) -> bool:
        return self.n_items < FEW_ITEMS


@dataclass(frozen=True)
class LabelAgreement:
    label_id: int
    name: str
    color: str
    kappa: Figure
    alpha: Figure
    n_ratings: int  # ratings with this label among the overlap items


@dataclass(frozen=True)
class ReviewerGold:
    """One reviewer against the gold labels; ``n_gold`` excludes gold that rests on their own single label."""

    user_id: int
    username: str
    n_annotations: int
    n_gold: int
    matches: int

    @property
    def share(self) -> float | None:
        return self.matches / self.n_gold if self.n_gold else None


@dataclass(frozen=True)
class PairAgreement:
    reviewer_a: str
    reviewer_b: str
    kappa: Figure


@dataclass(frozen=True)
class ProjectAgreement:
    n_annotations: int  # effective annotations in the project
    n_overlap_items: int  # items with two or more effective ratings
    kappa: Figure
    alpha: Figure
    per_label: list[LabelAgreement]
    reviewers: list[ReviewerGold]
    pairs: list[PairAgreement]


def standing_labels(*, project: Project) -> QuerySet[Annotation]:
    """Return the project's label annotations that no retract row undoes."""
    # NOT EXISTS, not ``retracted_by__isnull``: PostgreSQL plans the LEFT JOIN ... IS NULL form of
    # this self-join as if it kept one row, and nests loops over 100k annotations for minutes.
    undone = Annotation.objects.filter(retracts=OuterRef("pk"))
    return Annotation.objects.filter(project=project, kind=Annotation.Kind.LABEL).exclude(Exists(undone))


def effective_annotations(*, project: Project, items: QuerySet[Any] | None = None) -> QuerySet[Annotation]:
    """Return each reviewer's latest standing label annotation per item (of ``items``, an id subquery, if given)."""
    standing = standing_labels(project=project)
    if items is not None:
        standing = standing.filter(item_id__in=items)
    latest = standing.values("item_id", "user_id").annotate(latest=Max("id")).values("latest")
    return Annotation.objects.filter(pk__in=latest)


def project_agreement(*, project: Project) -> ProjectAgreement:
    """Return the project's agreement figures, per label, per reviewer pair and per reviewer against gold."""
    ratings = _overlap_ratings(project)
    labels = list(project.labels.all())
    pairs_of_two = [list(by_user.values()) for by_user in ratings.values() if len(by_user) == 2]
    matrix = _rater_matrix(ratings)
    per_label = _per_label(labels, pairs_of_two, matrix, ratings)
    reviewers = _reviewers_against_gold(project)
    names = {reviewer.user_id: reviewer.username for reviewer in reviewers}
    return ProjectAgreement(
        n_annotations=sum(reviewer.n_annotations for reviewer in reviewers),
        n_overlap_items=len(ratings),
        kappa=_kappa_figure(cohen_kappa([p[0] for p in pairs_of_two], [p[1] for p in pairs_of_two])),
        alpha=_alpha_figure(krippendorff_alpha(matrix)),
        per_label=per_label,
        reviewers=reviewers,
        pairs=_pairs(ratings, names),
    )


def agreement_cache_key(*, project: Project) -> str:
    """Return the cache key of the project's agreement figures as they stand now (two small queries)."""
    rows = Annotation.objects.filter(project=project).aggregate(n=Count("id"), newest=Max("id"))
    labels = list(project.labels.values_list("id", "name", "color"))
    digest = hashlib.sha256(repr(labels).encode()).hexdigest()[:16]
    # created_at tells apart projects that reuse a deleted one's id (a test database rolled back, say).
    created = project.created_at.timestamp()
    return f"labeling:agreement:{project.pk}:{created}:{rows['n']}:{rows['newest']}:{digest}"


def project_agreement_cached(*, project: Project) -> ProjectAgreement:
    """Return the project's agreement figures, computed once per state of its annotations and labels."""
    key = agreement_cache_key(project=project)
    figures = cache.get(key)
    if figures is None:
        # Computed after the key was read: it may include a row newer than the key says, never fewer.
        figures = project_agreement(project=project)
        cache.set(key, figures, AGREEMENT_CACHE_SECONDS)
    return figures


def _overlap_ratings(project: Project) -> dict[int, dict[int, int]]:
    """Return item id → {user id: label id} for the items with two or more effective ratings.

    Each item's reviewers come in the order they labeled it (by annotation id). A reviewer has an
    effective rating of an item exactly when they have a standing label row for it, so the overlap
    items are found on standing rows first and only theirs are reduced to the latest per reviewer.
    """
    effective = effective_annotations(project=project, items=_overlap_items(project))
    rows = effective.order_by("item_id", "id").values_list("item_id", "user_id", "label_id")
    ratings: dict[int, dict[int, int]] = defaultdict(dict)
    for item_id, user_id, label_id in rows:
        ratings[item_id][user_id] = label_id
    return ratings


def _overlap_items(project: Project) -> QuerySet[Any]:
    """Return (as an id subquery) the items with standing labels from two or more reviewers."""
    standing = standing_labels(project=project).order_by()
    raters = standing.values("item_id").annotate(raters=Count("user_id", distinct=True))
    return raters.filter(raters__gte=2).values("item_id")


def _rater_matrix(ratings: dict[int, dict[int, int]]) -> list[list[int | None]]:
    """Return the (reviewers x overlap items) matrix of label ids, None where a reviewer did not rate."""
    users = {user: row for row, user in enumerate(sorted({u for by_user in ratings.values() for u in by_user}))}
    matrix: list[list[int | None]] = [[None] * len(ratings) for _ in users]
    for column, by_user in enumerate(ratings.values()):
        for user, label_id in by_user.items():
            matrix[users[user]][column] = label_id
    return matrix


def _per_label(
    labels: list[Any], pairs_of_two: list[list[int]], matrix: list[list[int | None]], ratings: dict[int, dict[int, int]]
) -> list[LabelAgreement]:
    ids = [label.pk for label in labels]
    kappas = per_label_kappa([p[0] for p in pairs_of_two], [p[1] for p in pairs_of_two], ids)
    alphas = per_label_alpha(matrix, ids)
    used: dict[int, int] = defaultdict(int)
    for by_user in ratings.values():
        for label_id in by_user.values():
            used[label_id] += 1
    return [
        LabelAgreement(
            label_id=label.pk,
            name=label.name,
            color=label.color,
            kappa=_kappa_figure(kappas[label.pk]),
            alpha=_alpha_figure(alphas[label.pk]),
            n_ratings=used[label.pk],
        )
        for label in labels
    ]


def _pairs(ratings: dict[int, dict[int, int]], names: dict[int, str]) -> list[PairAgreement]:
    """Return Cohen's kappa for each pair of reviewers who labeled an item in common, most shared items first."""
    shared: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for by_user in ratings.values():
        for a, b in combinations(sorted(by_user), 2):
            shared[(a, b)].append((by_user[a], by_user[b]))
    result = [
        PairAgreement(
            reviewer_a=names[a],
            reviewer_b=names[b],
            kappa=_kappa_figure(cohen_kappa([x for x, _ in items], [y for _, y in items])),
        )
        for (a, b), items in shared.items()
    ]
    return sorted(result, key=lambda pair: (-pair.kappa.n_items, pair.reviewer_a, pair.reviewer_b))


def _reviewers_against_gold(project: Project) -> list[ReviewerGold]:
    """Count per reviewer their effective annotations, those on gold items and those matching the gold label.

    Gold that came only from the reviewer's own single annotation (``single`` source, nobody else's
    label standing on the item) would match by construction, so it is left out.
    """
    # Someone else's label stands on the item exactly when two or more reviewers' do: one hashed
    # subquery of overlap items, not an EXISTS per annotation.
    own_single = Q(item__gold_source=Item.GoldSource.SINGLE) & ~Q(item_id__in=_overlap_items(project))
    comparable = Q(item__gold_label__isnull=False) & ~own_single
    rows = (
        effective_annotations(project=project)
        .order_by()
        .values("user_id")
        .annotate(
            total=Count("id"),
            gold=Count("id", filter=comparable),
            matches=Count("id", filter=comparable & Q(label_id=F("item__gold_label_id"))),
        )
    )
    counts = list(rows)
    names = _usernames({row["user_id"] for row in counts})
    result = [
        ReviewerGold(
            user_id=row["user_id"],
            username=names[row["user_id"]],
            n_annotations=row["total"],
            n_gold=row["gold"],
            matches=row["matches"],
        )
        for row in counts
    ]
    return sorted(result, key=lambda reviewer: reviewer.username)


def _usernames(user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    User = get_user_model()
    return dict(User.objects.filter(pk__in=user_ids).values_list("pk", User.USERNAME_FIELD))


def _kappa_figure(kappa: Kappa) -> Figure:
    return Figure(
        value=kappa.value,
        observed_agreement=kappa.observed if kappa.n_items else None,
        n_items=kappa.n_items,
        n_annotations=2 * kappa.n_items,
    )


def _alpha_figure(alpha: Alpha) -> Figure:
    # 1 - D_o is the share of agreeing pairable values: Krippendorff's "observed agreement".
    return Figure(
        value=alpha.value,
        observed_agreement=1.0 - alpha.observed_disagreement if alpha.n_items else None,
        n_items=alpha.n_items,
        n_annotations=alpha.n_values,
    )
