"""Permission-matrix rows for the review URLs (see tests/test_permission_matrix.py).

The world's one item is unlabeled, so resolving it lets owners and admins through to the 409 (not
in review) and changes nothing; reviewers are refused (403) before the item is looked at.
"""

from __future__ import annotations

from tests.permissions import SLUG, Row, api, member, owner_up


class WorldItemId:
    """The id of the matrix world's item, read when the URL is reversed (the world exists by then).

    ``reverse`` turns an ``<int:…>`` argument into text with ``str()``, so this stands in for an id
    that is only known once the test's fixtures have run.
    """

    def __str__(self) -> str:
        from labeling.models import Item

        return str(Item.objects.get(text="hello world").pk)


WORLD_ITEM = {**SLUG, "item_id": WorldItemId()}

ROWS: list[Row] = [
    Row("labeling:review", owner_up(200), kwargs=SLUG),
    # A form post naming nothing: let through, then refused as incomplete (400), nothing written.
    Row("labeling:review", owner_up(400), "post", SLUG, {}),
    Row("labeling:agreement", member(200), kwargs=SLUG),
    Row("api-agreement", api(member(200)), kwargs=SLUG, is_api=True),
    Row("api-review-list", api(owner_up(200)), kwargs=SLUG, is_api=True),
    Row("api-review-resolve", api(owner_up(409)), "post", WORLD_ITEM, {"label": "positive"}, is_api=True),  # type: ignore[arg-type]
]
