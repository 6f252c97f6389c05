"""The drift projection handed to the model server: a version's reference PCA, in a file beside its artifact.

Monitoring fits a PCA on a version's eval-split embeddings when it builds the version's drift
reference; the model server then logs each prediction's pooled embedding projected with it (32
float16 values), so production embeddings can be compared with the reference's.

Why a file, and why *beside* the artifact: the server is torch-side and never imports Django, so
it cannot read the ``DriftReference`` row; and the artifact directory is immutable and checked file
by file against its manifest, so nothing may be added inside it. The reference job writes
``<artifact dir>.drift.npz`` (atomically: a temporary file renamed into place) holding the PCA mean,
its components and the sha256 of the artifact's manifest; the server reads it when it loads the
version and, while it has none, looks again every ``RECHECK_SECONDS`` (one ``stat`` call), so a
reference built after the version went live is picked up without a reload. A file whose manifest
hash is not the served version's (a stale file, a reused path) is ignored.

Plain numpy, no Django, no torch: both sides import it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

SUFFIX = ".drift.npz"
RECHECK_SECONDS = 30.0
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Projection:
    """A PCA fitted on a version's reference embeddings: ``(x - mean) @ components.T``."""

    mean: FloatArray  # (d,)
    components: FloatArray  # (k, d), orthonormal rows
    manifest_sha256: str

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    def project(self, embeddings: npt.ArrayLike) -> FloatArray:
        """Return the embeddings (n, d) projected to (n, k) float32."""
        x = np.asarray(embeddings, dtype=np.float32)
        return ((x - self.mean) @ self.components.T).astype(np.float32)

    def encode(self, embeddings: npt.ArrayLike) -> list[bytes]:
        """Return each projected embedding as little-endian float16 bytes (the prediction log's format)."""
        half = self.project(embeddings).astype("<f2")
        return [row.tobytes() for row in half]


def decode(raw: bytes) -> FloatArray:
    """Return a logged projected embedding as a float32 vector."""
    return np.frombuffer(raw, dtype="<f2").astype(np.float32)


def projection_path(artifact_path: str | os.PathLike[str]) -> Path:
    """Return where the projection of the artifact at ``artifact_path`` lives: beside it, not inside."""
    path = Path(artifact_path)
    return path.with_name(path.name + SUFFIX)


def projection_write(artifact_path: str | os.PathLike[str], projection: Projection) -> Path:
    """Write ``projection`` beside the artifact, atomically (readers see the old file or the new one)."""
    target = projection_path(artifact_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(
                out,
                mean=projection.mean.astype(np.float32),
                components=projection.components.astype(np.float32),
                manifest_sha256=np.array(projection.manifest_sha256),
            )
            out.flush()
            os.fsync(out.fileno())
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return target


def projection_read(artifact_path: str | os.PathLike[str], *, manifest_sha256: str | None) -> Projection | None:
    """Return the projection beside the artifact, or None when there is none (or it does not fit).

    ``manifest_sha256``: the served version's; a file made for another artifact is ignored (logged).
    An unreadable or malformed file is ignored too: the server keeps serving, without embeddings.
    """
    path = projection_path(artifact_path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            projection = Projection(
                mean=np.asarray(data["mean"], dtype=np.float32),
                components=np.asarray(data["components"], dtype=np.float32),
                manifest_sha256=str(data["manifest_sha256"]),
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        logger.warning("drift projection unreadable", extra={"path": str(path), "error": str(exc)})
        return None
    shapes_fit = projection.components.ndim == 2 and projection.mean.shape == (projection.components.shape[1],)
    if not shapes_fit:
        logger.warning("drift projection malformed", extra={"path": str(path)})
        return None
    if manifest_sha256 and projection.manifest_sha256 != manifest_sha256:
        logger.warning("drift projection made for another artifact", extra={"path": str(path)})
        return None
    return projection


class ProjectionWatch:
    """The projection of one served artifact: read at load, looked for again while there is none."""

    def __init__(
        self, artifact_path: str, manifest_sha256: str | None, *, recheck_seconds: float | None = None
    ) -> None:
        self._path, self._manifest = artifact_path, manifest_sha256
        self._recheck = recheck_seconds
        self._projection: Projection | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()

    def current(self, hidden_size: int | None = None) -> Projection | None:
        """Return the projection, reading the file at most once per ``recheck_seconds`` until one is found.

        ``hidden_size``: the model's; a projection fitted on other embeddings is refused.
        """
        if self._projection is not None:
            return self._projection
        now = time.monotonic()
        with self._lock:
            if self._projection is not None or now < self._next_check:
                return self._projection
            self._next_check = now + (RECHECK_SECONDS if self._recheck is None else self._recheck)
            found = projection_read(self._path, manifest_sha256=self._manifest)
            if found is not None and hidden_size is not None and found.mean.shape[0] != hidden_size:
                logger.warning("drift projection does not fit the model", extra={"path": self._path})
                found = None
            if found is not None:
                logger.info("drift projection loaded", extra={"path": self._path, "dims": found.dims})
            self._projection = found
            return found
