"""Job progress reported from inside an import's one long transaction."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from django.db import connection

from webapp.models import Job


class JobProgress:
    """Call ``job.set_progress`` where other processes can see it, mid-transaction.

    On PostgreSQL the updates run on a helper thread, hence on a connection of its own: inside the
    import's transaction they would stay invisible until the commit, and the row lock they take
    would make ``job_cancel`` wait for the whole import. A cancel committed meanwhile is seen there,
    and ``JobCancelled`` is re-raised here, in the import, whose transaction then rolls back.
    SQLite has a single writer, so there the updates share the import's connection and show at commit;
    so do they when the caller already holds a transaction, in which the job row itself may be
    uncommitted and so invisible to another connection.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        separate = connection.vendor == "postgresql" and not connection.in_atomic_block
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-progress") if separate else None

    def __call__(self, fraction: float, message: str) -> None:
        if self._executor is None:
            self.job.set_progress(fraction, message)
        else:
            self._executor.submit(self.job.set_progress, fraction, message).result()

    def close(self) -> None:
        if self._executor is not None:
            # A lambda, so that ``connection`` resolves to the helper thread's own connection.
            self._executor.submit(lambda: connection.close()).result()
            self._executor.shutdown()
            self._executor = None

    def __enter__(self) -> JobProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
