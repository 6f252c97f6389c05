"""Two real (tiny, untrained) RoBERTa artifacts with different heads: enough to tell versions apart."""

from __future__ import annotations

import pytest

from tests.modeling.serving.harness import LABELS, Artifact, build_artifacts

__all__ = ["LABELS", "Artifact", "artifacts"]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Artifact, ...]:
    return build_artifacts(tmp_path_factory.mktemp("serving"))
