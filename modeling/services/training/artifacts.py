"""Where a version's artifact lives, and what a rerun after a crash finds there: half-written staging
directories (removed) and a complete artifact of an earlier attempt (adopted when it verifies and was
trained on the same data and config, deleted otherwise).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings

from modeling.models import ModelVersion

logger = logging.getLogger(__name__)


def artifact_dir(version: ModelVersion) -> Path:
    """Return where a version's artifact lives: ARTIFACT_ROOT/models/<slug>/v<number>."""
    return Path(settings.ARTIFACT_ROOT) / "models" / version.project.slug / f"v{version.number}"


def _remove_staging_leftovers(dest: Path) -> None:
    """Delete staging directories a killed save left beside `dest` (save_artifact names them .v<n>.*.tmp)."""
    if dest.parent.is_dir():
        for leftover in dest.parent.glob(f".{dest.name}.*.tmp"):
            logger.warning("removing a half-written artifact", extra={"path": str(leftover)})
            shutil.rmtree(leftover, ignore_errors=True)


def _reuse_artifact(version: ModelVersion, dest: Path, snapshot: str) -> bool:
    """Adopt a complete artifact from an earlier attempt, or delete it; return whether it was adopted."""
    from modeling.ml.artifacts import MANIFEST, file_sha256, verify_artifact
    from modeling.ml.errors import ArtifactError

    if not dest.exists():
        return False
    try:
        manifest = verify_artifact(dest)
    except ArtifactError as exc:
        logger.warning("discarding an unverifiable artifact", extra={"path": str(dest), "reason": str(exc)})
        shutil.rmtree(dest)
        return False
    same = manifest["data_snapshot"]["hash"] == snapshot and manifest["train_config"] == version.train_config
    if not same:
        shutil.rmtree(dest)
        return False
    version.mark_candidate(
        metrics=manifest["metrics"],
        artifact_path=str(dest),
        manifest_sha256=file_sha256(dest / MANIFEST),
        temperature=float(manifest["temperature"]),
    )
    logger.info("reused the artifact of an earlier attempt", extra={"version_id": version.pk})
    return True
