"""The labeling round trip's hot reads as SQL written once per process: the next-item call's expiry
probe, held leases (with their items and suggested labels), locked candidate and overlap room check, and
the submit's locked item and lease (with its label, suggestion and replay facts).

Building these querysets cost more CPU than running them: on the 2-core benchmark machine
``queue_next`` spent ~16 ms of Python per call and a submit ~10, most of it in the ORM compiling these
statements (``benchmarks/queue_latency.py``; the database ran each in about a millisecond); now ~4 and
~6. The SQL is the ORM's own, held as text: columns come from the models' metadata, so a new field
follows the model, and rows become instances through the converters the ORM applies
(``Model.from_db``). The ORM querysets stay the definition: ``tests/labeling/test_queue_rows.py``
checks these statements answer what they answer, on SQLite and PostgreSQL; ``EXPLAIN`` of the
candidate statement (the benchmark prints it) shows the partial ``item_queue_candidates`` index read
from its top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Field, Model

from labeling.models import Annotation, Item, Label, Lease, Skip

Converter = Callable[[Any, Any, Any], Any]


class _Columns:
    """One model's concrete columns under a table alias, and the converters that turn them into field values."""

    def __init__(self, model: type[Model], alias: str, names: Sequence[str] | None = None) -> None:
        """Every concrete column in the model's order, or the fields ``names`` names, in that order."""
        fields: list[Field[Any, Any]] = (
            list(model._meta.concrete_fields) if names is None else [model._meta.get_field(n) for n in names]
        )
        quote = connection.ops.quote_name
        self.model = model
        self.attnames = [field.attname for field in fields]
        self.sql = ", ".join(f"{alias}.{quote(field.column)}" for field in fields)
        self.converters: list[tuple[int, list[Converter], Any]] = []
        for index, field in enumerate(fields):
            column = field.get_col(alias)
            converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if converters:
                self.converters.append((index, converters, column))

    def __len__(self) -> int:
        return len(self.attnames)

    def convert(self, values: Sequence[Any]) -> list[Any]:
        """Return ``values`` (these columns, in order) as field values, converted as the ORM converts them."""
        row = list(values)
        for index, converters, column in self.converters:
            for converter in converters:
                row[index] = converter(row[index], column, connection)
        return row

    def instance(self, values: Sequence[Any]) -> Any:
        """Return the model instance of ``values`` (every concrete column, in order), as the ORM would load it."""
        return self.model.from_db(connection.alias, self.attnames, self.convert(values))


@cache
def _shapes(vendor: str) -> dict[str, Any]:
    """Return the statements and column sets for ``vendor`` (built once: the models do not change at run time)."""
    quote = connection.ops.quote_name
    lease, item, label = _Columns(Lease, "le"), _Columns(Item, "it"), _Columns(Label, "lb")
    expired = _Columns(Lease, "le", ["id", "item", "project"])
    item_table, label_table = quote(Item._meta.db_table), quote(Label._meta.db_table)
    # The partial index's condition (QUEUE_OPEN), written as the ORM writes it, so the planner matches it.
    priority, status, overlap = (f"it.{quote(name)}" for name in ("priority", "status", "overlap_target"))
    queue_open = (
        f"{priority} IS NOT NULL AND ({status} = 'queued' OR ({overlap} > 1 AND {status} IN ('leased', 'labeled')))"
    )
    unseen = " ".join(
        f"AND NOT EXISTS (SELECT 1 FROM {quote(model._meta.db_table)} u WHERE u.item_id = it.id AND u.user_id = %s)"  # noqa: S608
        for model in (Annotation, Skip)
    )
    lease_table, annotation_table = quote(Lease._meta.db_table), quote(Annotation._meta.db_table)
    # What holds an overlap item's places: its active leases and the reviewers with a label on it that no
    # retract row undoes (len(_active_leases) + len(_effective), as gold._derive counts them).
    taken = (
        f"(SELECT COUNT(*) FROM {lease_table} tl WHERE tl.item_id = it.id AND tl.released_at IS NULL "  # noqa: S608
        "AND tl.expires_at > %s) + "
        f"(SELECT COUNT(DISTINCT ta.user_id) FROM {annotation_table} ta WHERE ta.item_id = it.id "
        f"AND ta.kind = 'label' AND NOT EXISTS (SELECT 1 FROM {annotation_table} tr WHERE tr.retracts_id = ta.id))"
    )
    lock = " FOR UPDATE OF it SKIP LOCKED" if vendor == "postgresql" else ""
    item_room = f"SELECT {taken} FROM {item_table} it WHERE it.id = %s"  # noqa: S608
    in_project = f"SELECT 1 FROM {label_table} fl WHERE fl.project_id = le.project_id AND fl.id = %s"  # noqa: S608
    locked_item = f"SELECT {item.sql} FROM {item_table} it WHERE it.id = %s AND it.project_id = %s"  # noqa: S608
    if vendor == "postgresql":
        locked_item += " FOR UPDATE OF it"
    # Every name below comes from the models' metadata, every value is a placeholder.
    return {
        "lease": lease,
        "item": item,
        "label": label,
        "expired_columns": expired,
        "taken": item_room,
        "locked_item": locked_item,
        # The submit's lease, with the facts its checks need: the label and the suggested label are the
        # project's, and whether the client key already made an annotation (a replay).
        "submission": (
            f"SELECT {lease.sql}, EXISTS ({in_project}), EXISTS ({in_project}), "  # noqa: S608
            f"(SELECT ra.id FROM {annotation_table} ra WHERE ra.user_id = le.user_id AND ra.client_key = %s LIMIT 1) "
            f"FROM {lease_table} le WHERE le.id = %s AND le.project_id = %s AND le.user_id = %s AND le.item_id = %s"
        ),
        "expired": (
            f"SELECT {expired.sql} FROM {quote(Lease._meta.db_table)} le "  # noqa: S608
            "WHERE le.project_id = %s AND le.released_at IS NULL AND le.expires_at <= %s "
            "ORDER BY le.expires_at LIMIT %s"
        ),
        "held": (
            f"SELECT {lease.sql}, {item.sql}, {label.sql} FROM {quote(Lease._meta.db_table)} le "  # noqa: S608
            f"INNER JOIN {item_table} it ON le.item_id = it.id "
            f"LEFT OUTER JOIN {label_table} lb ON it.predicted_label_id = lb.id "
            "WHERE le.project_id = %s AND le.user_id = %s AND le.released_at IS NULL AND le.expires_at > %s "
            "ORDER BY le.created_at"
        ),
        # {passed} is filled per call with one placeholder per item the reviewer already holds or passed.
        "candidate": (
            f"SELECT {item.sql}, {label.sql} FROM {item_table} it "  # noqa: S608
            f"LEFT OUTER JOIN {label_table} lb ON it.predicted_label_id = lb.id "
            f"WHERE {queue_open} {unseen} AND it.project_id = %s{{passed}} "
            # Overlap items whose places are all taken are stepped over here, not fetched and passed one by
            # one: near the top of a busy queue there are many. _has_room re-checks the locked row.
            f"AND ({status} = 'queued' OR {taken} < {overlap}) "
            f"ORDER BY it.priority DESC, it.id ASC LIMIT 1{lock}"
        ),
    }


def _param(value: Any) -> Any:
    """Adapt a parameter as the ORM would for its column (a datetime for SQLite's text columns)."""
    return connection.ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value


def _item_with_label(shapes: dict[str, Any], row: Sequence[Any]) -> Item:
    item_columns, label_columns = shapes["item"], shapes["label"]
    item: Item = item_columns.instance(row[: len(item_columns)])
    label_row = row[len(item_columns) : len(item_columns) + len(label_columns)]
    # The suggested label, loaded like select_related("predicted_label"): None when the item has none.
    item.predicted_label = label_columns.instance(label_row) if label_row[0] is not None else None
    return item


def expired_leases(project_id: int, now: datetime, limit: int) -> list[tuple[Any, int, int]]:
    """Return up to ``limit`` expired, unreleased leases of the project, oldest first, as (id, item id, project id)."""
    shapes = _shapes(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(shapes["expired"], [project_id, _param(now), limit])
        rows = cursor.fetchall()
    columns: _Columns = shapes["expired_columns"]
    return [(lease_id, item_id, project) for lease_id, item_id, project in map(columns.convert, rows)]


def held_leases(project_id: int, user_id: int, now: datetime) -> list[Lease]:
    """Return the reviewer's active leases in the project, oldest first, each with its item and suggested label."""
    shapes = _shapes(connection.vendor)
    lease_columns: _Columns = shapes["lease"]
    with connection.cursor() as cursor:
        cursor.execute(shapes["held"], [project_id, user_id, _param(now)])
        rows = cursor.fetchall()
    leases = []
    for row in rows:
        lease: Lease = lease_columns.instance(row[: len(lease_columns)])
        lease.item = _item_with_label(shapes, row[len(lease_columns) :])
        leases.append(lease)
    return leases


def lock_candidate(project_id: int, user_id: int, passed: Sequence[int], now: datetime) -> Item | None:
    """Lock and return the highest-priority open item with room that the reviewer never labeled, skipped or
    passed; None if none. An overlap item has room while its active leases (at ``now``) and its reviewers'
    standing labels are fewer than its overlap target; the caller re-checks that on the locked row.

    On PostgreSQL the row is locked ``FOR UPDATE SKIP LOCKED``: a row another reviewer's transaction
    holds is stepped over, never waited for. SQLite serialises writers, so it needs no row lock.
    """
    shapes = _shapes(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(*_candidate_statement(shapes, project_id, user_id, passed, now))
        row = cursor.fetchone()
    return None if row is None else _item_with_label(shapes, row)


def _candidate_statement(
    shapes: dict[str, Any], project_id: int, user_id: int, passed: Sequence[int], now: datetime
) -> tuple[str, list[Any]]:
    exclude = f" AND it.id NOT IN ({', '.join(['%s'] * len(passed))})" if passed else ""
    return shapes["candidate"].format(passed=exclude), [user_id, user_id, project_id, *passed, _param(now)]


def explain_candidate(
    project_id: int, user_id: int, now: datetime, passed: Sequence[int] = (), *, analyze: bool = False
) -> str:
    """Return PostgreSQL's plan for the candidate statement (``analyze`` runs it: call it in a rolled-back
    transaction, since the statement locks its row)."""
    sql, params = _candidate_statement(_shapes(connection.vendor), project_id, user_id, passed, now)
    options = "(ANALYZE, BUFFERS) " if analyze else ""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {options}{sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def places_taken(item_id: int, now: datetime) -> int:
    """Return how many of the item's overlap places are taken at ``now``: active leases plus reviewers whose
    label stands (one statement; what ``len(_active_leases(item, now)) + len(_effective(item))`` counts)."""
    with connection.cursor() as cursor:
        cursor.execute(_shapes(connection.vendor)["taken"], [_param(now), item_id])
        row = cursor.fetchone()
    return int(row[0])


def lock_item(project_id: int, item_id: int) -> Item | None:
    """Lock the project's item ``FOR UPDATE`` (waiting for another writer, unlike the candidate) and return it."""
    shapes = _shapes(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(shapes["locked_item"], [item_id, project_id])
        row = cursor.fetchone()
    return None if row is None else shapes["item"].instance(row)


def submission_lease(
    project_id: int, user_id: int, item_id: int, lease_id: Any, label_id: Any, suggested_id: int | None,
    client_key: str | None,
) -> tuple[Lease, bool, bool, int | None] | None:  # fmt: skip
    """Return the reviewer's lease on the item with (label is the project's, suggested label is the project's
    or none was shown, the annotation ``client_key`` already made); None when there is no such lease.

    ``lease_id`` is validated as the ORM validates a lookup on the primary key (a malformed id raises
    Django's ``ValidationError``).
    """
    shapes = _shapes(connection.vendor)
    pk = Lease._meta.pk
    assert pk is not None
    params = [
        label_id if isinstance(label_id, int) else None,
        suggested_id,
        client_key,
        pk.get_db_prep_value(lease_id, connection),
        project_id,
        user_id,
        item_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(shapes["submission"], params)
        row = cursor.fetchone()
    if row is None:
        return None
    lease_columns: _Columns = shapes["lease"]
    label_ok, suggested_ok, replay_id = row[len(lease_columns) :]
    return (
        lease_columns.instance(row[: len(lease_columns)]),
        bool(label_ok),
        suggested_id is None or bool(suggested_ok),
        replay_id,
    )
