"""What the model server serves and answers with: a ``ModelSpec`` (a verified artifact and how to run
it), a ``TextResult`` per text (carrying the version that computed it), the runner and loader
signatures, the shadow's counters, and the error for a key that is not served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modeling.ml.config import DeviceRequest


@dataclass(frozen=True)
class ModelSpec:
    """What to serve under ``key``: a verified artifact directory and how to run it."""

    key: str
    path: str
    version: int
    manifest_sha256: str | None = None
    max_length: int = 256
    truncation: str = "head"
    quantize_int8: bool = False
    device: DeviceRequest = "auto"


@dataclass(frozen=True)
class TextResult:
    """One text's calibrated probabilities, in the label order of the version that computed them.

    The version travels with the result: during a hot swap a request queued before the switch may
    run on the new model, and its answer must name the model that actually produced it.
    """

    probs: list[float]
    version: int
    labels: list[str]
    # Drift descriptors for the log: the share of unknown tokens, and the pooled embedding projected with
    # the version's reference PCA (float16 bytes; None until a reference exists, see serving.projection).
    unk_rate: float | None = None
    embedding: bytes | None = None


class ModelNotLoaded(LookupError):
    """No model is served under the requested key."""


@dataclass
class ShadowStats:
    submitted: int = 0
    skipped: int = 0
    failed: int = 0


Runner = Callable[[list[str]], list[TextResult]]
Loader = Callable[[ModelSpec], tuple[list[str], Runner]]
