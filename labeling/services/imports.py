"""Dataset imports: from an uploaded file (browser or API) or from already-parsed records.

An import is all-or-nothing. A first pass reads every row and checks it (types, labels, the text
limit, repeated ids, repeated texts by sha256); a second pass writes the rows, in one transaction
with the first, so that on any error nothing is written. Files of more than
``IMPORT_SYNC_MAX_ROWS`` rows run as a background job with live progress.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Protocol

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from labeling.importing.lookup import DatabaseLookup, project_has_items
from labeling.importing.parsers import FileRows, ParsedRow, RecordRows, count_rows
from labeling.importing.progress import JobProgress
from labeling.importing.report import ErrorReport, RowError, fail
from labeling.importing.sniff import check_text_file, detect_format, spool
from labeling.importing.validate import ImportRules, ScanResult, clean_rows, scan_rows
from labeling.importing.writer import CopySpool, WriteTarget, write_items
from labeling.models import Dataset, Project, ProjectCounts
from webapp.errors import Conflict, ValidationFailed
from webapp.jobs import job_create, job_enqueue
from webapp.models import Job

logger = logging.getLogger(__name__)

# The checking pass takes this share of a background import's progress bar, the writing pass the rest.
CHECK_SHARE = 0.5
# Imports into one project run one at a time (PostgreSQL advisory lock; SQLite has one writer anyway),
# so two concurrent imports cannot both find a text new and then collide on the unique constraint.
IMPORT_LOCK_NAMESPACE = 7_331


class Progress(Protocol):
    def __call__(self, fraction: float, message: str) -> None: ...


@dataclass(frozen=True)
class ImportOutcome:
    """A finished import's dataset, or the job that will run a large one."""

    dataset: Dataset | None = None
    job: Job | None = None

    @property
    def queued(self) -> bool:
        return self.job is not None


def uploads_dir() -> Path:
    return Path(settings.ARTIFACT_ROOT) / "uploads"


def upload_path(job_id: Any) -> Path:
    """Where a background import's upload waits for its job."""
    return uploads_dir() / str(job_id)


def import_upload(
    *,
    project: Project,
    user: AbstractBaseUser | AnonymousUser,
    fileobj: BinaryIO,
    filename: str,
    fmt: str | None = None,
    source: str = Dataset.Source.UPLOAD,
) -> ImportOutcome:
    """Import an uploaded CSV, JSONL or JSON file: now if small, else as a background job.

    The upload is streamed to disk first and checked (size, binary or compressed content, UTF-8).
    Raises ``PayloadTooLarge``, ``UnsupportedMedia`` or ``ValidationFailed`` (with the row report).
    """
    incoming = uploads_dir() / f"incoming-{uuid.uuid4().hex}"
    try:
        spooled = spool(fileobj, incoming, max_bytes=settings.IMPORT_MAX_BYTES)
        check_text_file(incoming)
        fmt = detect_format(filename=filename, content_type=getattr(fileobj, "content_type", "") or "", override=fmt)
        name = PurePath(filename or "upload").name[:255]
        file = _UploadedFile(incoming, fmt, name, source, spooled.sha256)
        if count_rows(FileRows(incoming, fmt), limit=settings.IMPORT_SYNC_MAX_ROWS + 1) > settings.IMPORT_SYNC_MAX_ROWS:
            return ImportOutcome(job=_queue_import(project=project, user=user, file=file, size=spooled.size))
        return ImportOutcome(dataset=_import_upload_now(project=project, user=user, file=file))
    finally:
        incoming.unlink(missing_ok=True)


def import_records(
    *, project: Project, user: AbstractBaseUser | AnonymousUser | None, records: list[dict], name: str, source: str
) -> Dataset:
    """Validate and write already-parsed records now, whatever their number; rows are numbered from 1.

    Raises ``ValidationFailed`` with ``{"errors": [...first 50...], "error_count": N}`` on any error.
    """
    return _import_rows(
        RecordRows(records), project=project, user=user, name=name[:255], fmt=Dataset.Format.JSON, source=source
    )


def import_job_run(job: Job) -> dict[str, Any]:
    """Run a queued file import (the body of ``labeling.tasks.run_import``); return the job's result."""
    path = upload_path(job.pk)
    if not path.exists():
        raise ValidationFailed("The uploaded file is no longer on the server; upload it again.")
    params = job.params
    with JobProgress(job) as progress:
        dataset = import_file(
            project=job.project,
            user=job.created_by,
            path=path,
            fmt=params["format"],
            name=params["name"],
            source=params["source"],
            file_sha256=params["file_sha256"],
            job=job,
            progress=progress,
        )
    return import_summary(dataset)


def import_upload_discard(*, job_id: Any) -> None:
    """Delete a background import's upload (once its job has ended, whichever way)."""
    upload_path(job_id).unlink(missing_ok=True)


def import_uploads_sweep() -> int:
    """Delete uploads whose job ended without running (cancelled while queued) or no longer exists.

    Returns how many files were deleted. Run periodically by beat (``labeling.tasks.sweep_import_uploads``).
    """
    waiting = {path.name: path for path in uploads_dir().glob("*-*-*-*-*") if path.is_file() and _is_uuid(path.name)}
    if not waiting:
        return 0
    alive = {
        str(pk)
        for pk in Job.objects.filter(pk__in=list(waiting)).exclude(status__in=Job.FINISHED).values_list("pk", flat=True)
    }
    orphans = [path for name, path in waiting.items() if name not in alive]
    for path in orphans:
        path.unlink(missing_ok=True)
    return len(orphans)


def import_summary(dataset: Dataset) -> dict[str, Any]:
    """Return a JSON-safe summary of a finished import (a job's result)."""
    return {
        "dataset_id": dataset.pk,
        "dataset": dataset.name,
        "rows_total": dataset.rows_total,
        "items_created": dataset.items_created,
        "duplicates_skipped": dataset.duplicates_skipped,
        "gold_labels": dataset.gold_labels,
    }


def _is_uuid(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


@dataclass(frozen=True)
class _UploadedFile:
    path: Path
    fmt: str
    name: str
    source: str
    sha256: str


def _queue_import(*, project: Project, user: AbstractBaseUser | AnonymousUser, file: _UploadedFile, size: int) -> Job:
    from labeling.tasks import run_import

    params = {"format": file.fmt, "name": file.name, "source": file.source, "file_sha256": file.sha256, "bytes": size}
    import_uploads_sweep()
    with transaction.atomic():
        job = job_create(kind=Job.Kind.IMPORT, project_id=project.pk, user=user, params=params)
        file.path.rename(upload_path(job.pk))
        job_enqueue(job=job, task=run_import, queue="default")
    logger.info("import queued", extra={"job_id": str(job.pk), "project_id": project.pk, "bytes": size})
    return job


def import_file(
    *,
    project: Project,
    user: AbstractBaseUser | AnonymousUser | None,
    path: Path,
    fmt: str,
    name: str,
    source: str = Dataset.Source.UPLOAD,
    file_sha256: str = "",
    job: Job | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Import a file already on disk and checked by ``import_upload``, whatever its size.

    ``progress(fraction, message)`` is called every few thousand rows; it may raise (``JobCancelled``)
    to stop the import, and then nothing is written.
    """
    rows = FileRows(path, fmt)
    return _import_rows(
        rows,
        project=project,
        user=user,
        name=name,
        fmt=fmt,
        source=source,
        file_sha256=file_sha256,
        job=job,
        progress=_FileProgress(progress, rows, path.stat().st_size) if progress else None,
    )


def _import_upload_now(*, project: Project, user: AbstractBaseUser | AnonymousUser, file: _UploadedFile) -> Dataset:
    return import_file(
        project=project,
        user=user,
        path=file.path,
        fmt=file.fmt,
        name=file.name,
        source=file.source,
        file_sha256=file.sha256,
    )


class _FileProgress:
    """Map rows checked (by bytes read) and rows written onto one progress bar."""

    def __init__(self, report: Progress, rows: FileRows, size: int) -> None:
        self.report, self.rows, self.size = report, rows, max(size, 1)

    def checked(self, count: int) -> None:
        self.report(CHECK_SHARE * self.rows.bytes_read / self.size, f"Checked {count:,} rows")

    def written(self, count: int, total: int) -> None:
        fraction = CHECK_SHARE + (1 - CHECK_SHARE) * count / max(total, 1)
        self.report(min(fraction, 0.99), f"Wrote {count:,} of {total:,} items")


def _import_rows(
    rows: Iterable[ParsedRow],
    *,
    project: Project,
    user: AbstractBaseUser | AnonymousUser | None,
    name: str,
    fmt: str,
    source: str,
    file_sha256: str = "",
    job: Job | None = None,
    progress: _FileProgress | None = None,
) -> Dataset:
    started = time.monotonic()
    try:
        dataset, scan = _check_and_write(
            rows,
            project=project,
            user=user,
            name=name,
            fmt=fmt,
            source=source,
            file_sha256=file_sha256,
            job=job,
            progress=progress,
        )
    except IntegrityError:
        # Only a write outside imports (which take the project's lock) can collide with the checks.
        raise Conflict("Items were added to the project during the import; nothing was imported. Try again.") from None
    dataset.duplicate_rows = scan.duplicate_rows  # type: ignore[attr-defined]
    dataset.ignored_fields = sorted(scan.ignored_fields)[:20]  # type: ignore[attr-defined]
    logger.info(
        "import finished",
        extra={
            "project_id": project.pk,
            "dataset_id": dataset.pk,
            "rows": scan.rows_total,
            "items_created": scan.to_write,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return dataset


def _check_and_write(
    rows: Iterable[ParsedRow],
    *,
    project: Project,
    user: AbstractBaseUser | AnonymousUser | None,
    name: str,
    fmt: str,
    source: str,
    file_sha256: str,
    job: Job | None,
    progress: _FileProgress | None,
) -> tuple[Dataset, ScanResult]:
    with transaction.atomic():
        _lock_project_imports(project)
        # Created first, so that the rows formatted for COPY during the check can name it.
        dataset = Dataset.objects.create(
            project=project,
            name=name,
            format=fmt,
            source=source,
            job=job,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            file_sha256=file_sha256,
        )
        target = WriteTarget(project_id=project.pk, dataset_id=dataset.pk, created_at=timezone.now())
        scan = _check_then_write(
            rows, project=project, target=target, strings=fmt == Dataset.Format.CSV, progress=progress
        )
        dataset.rows_total, dataset.items_created = scan.rows_total, scan.to_write
        dataset.duplicates_skipped, dataset.gold_labels = scan.duplicates, scan.gold
        dataset.save(update_fields=["rows_total", "items_created", "duplicates_skipped", "gold_labels"])
        counts, _ = ProjectCounts.objects.get_or_create(project=project)
        counts.add({"items": scan.to_write, "unlabeled": scan.to_write - scan.gold, "gold": scan.gold})
    return dataset, scan


def _check_then_write(
    rows: Iterable[ParsedRow], *, project: Project, target: WriteTarget, strings: bool, progress: _FileProgress | None
) -> ScanResult:
    """First pass: check every row. Second pass: write the accepted ones.

    On PostgreSQL the first pass also spools the accepted rows as COPY text, which the second pass
    streams to the server; elsewhere the second pass reads and cleans the rows again.
    """
    rules = _rules_for(project)
    spool = CopySpool(target, directory=uploads_dir()) if connection.vendor == "postgresql" else None
    try:
        scan = _check(rows, project=project, rules=rules, strings=strings, progress=progress, spool=spool)
        on_batch = (lambda count: progress.written(count, scan.to_write)) if progress else None
        if spool is not None:
            written = spool.write(on_batch=on_batch)
        else:
            accepted = clean_rows(rows, rules=rules, strings=strings, skip=scan.skip_rows)
            written = write_items(accepted, target=target, on_batch=on_batch)
    finally:
        if spool is not None:
            spool.close()
    if written != scan.to_write:
        raise RuntimeError(f"wrote {written} items, expected {scan.to_write}")
    return scan


def _check(
    rows: Iterable[ParsedRow],
    *,
    project: Project,
    rules: ImportRules,
    strings: bool,
    progress: _FileProgress | None,
    spool: CopySpool | None,
) -> ScanResult:
    report = ErrorReport()
    lookup = DatabaseLookup(project.pk) if project_has_items(project.pk) else None
    scan = scan_rows(
        rows,
        rules=rules,
        report=report,
        lookup=lookup,
        strings=strings,
        on_progress=progress.checked if progress else None,
        on_accept=spool.add if spool is not None else None,
    )
    report.raise_if_any()
    if scan.rows_total == 0:
        fail(RowError(None, None, "no_rows", "The import has no rows."))
    return scan


def _rules_for(project: Project) -> ImportRules:
    labels = list(project.labels.order_by("order", "id").values_list("name", "id"))
    return ImportRules(
        max_text_chars=project.max_text_chars,
        label_ids={name.strip().casefold(): label_id for name, label_id in labels},
        label_names=tuple(name for name, _ in labels),
    )


def _lock_project_imports(project: Project) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s::int4, %s::int4)", [IMPORT_LOCK_NAMESPACE, project.pk % 2**31]
            )
