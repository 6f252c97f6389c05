"""Both sides of a drift test as ``Traffic``: the reference's stored per-text data, or a window's sample.

A window is read from the raw prediction log, but only a bounded sample: at most ``SAMPLE_ROWS`` rows
with the smallest ids. Ids are random UUIDs, so that is a uniform random sample, and the same rows on a
re-run. Rows that lack a descriptor (other labels than the reference's, no unknown-token rate, no
embedding) are left out of that descriptor's test and counted in the notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from labeling.models import Project
from modeling.models import PredictionLog
from modeling.serving.projection import decode
from monitoring.models import DriftReference
from monitoring.services.reference import reference_load

SAMPLE_ROWS = 2_000


@dataclass
class Traffic:
    """One side of the tests: per-text outputs and descriptors (the reference, or a window's sample).

    ``probs``, ``unk_rates`` and ``embeddings`` cover only the texts that carry them (a row with other
    labels than the reference's, or logged before a descriptor existed), each with its languages.
    """

    labels: list[str]  # the reference's label order
    predicted: list[str]
    lengths: list[float]
    scripts: list[str]
    languages: list[str]
    probs: np.ndarray  # (n_p, k) in ``labels`` order
    prob_languages: list[str]
    unk_rates: list[float]
    unk_languages: list[str]
    embeddings: np.ndarray  # (n_e, dims)
    embedding_languages: list[str]
    total: int = 0
    item_ids: list[int] = field(default_factory=list)  # the reference's eval items
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.predicted)

    def only(self, language: str) -> Traffic:
        """Return the texts of one language."""

        def pick(languages: list[str]) -> list[int]:
            return [i for i, code in enumerate(languages) if code == language]

        rows, probs, unk, emb = (
            pick(self.languages),
            pick(self.prob_languages),
            pick(self.unk_languages),
            pick(self.embedding_languages),
        )
        return Traffic(
            labels=self.labels,
            predicted=[self.predicted[i] for i in rows],
            lengths=[self.lengths[i] for i in rows],
            scripts=[self.scripts[i] for i in rows],
            languages=[language] * len(rows),
            probs=self.probs[probs],
            prob_languages=[language] * len(probs),
            unk_rates=[self.unk_rates[i] for i in unk],
            unk_languages=[language] * len(unk),
            embeddings=self.embeddings[emb],
            embedding_languages=[language] * len(emb),
            total=len(rows),
        )


def reference_traffic(reference: DriftReference) -> Traffic:
    """Return the reference's per-text data as a ``Traffic``."""
    arrays = reference_load(reference)
    labels = list(reference.labels)
    languages = [str(code) or "und" for code in arrays["languages"]]
    return Traffic(
        labels=labels,
        predicted=[labels[int(i)] for i in arrays["predicted"]],
        lengths=[float(x) for x in arrays["lengths"]],
        scripts=[str(s) for s in arrays["scripts"]],
        languages=languages,
        probs=arrays["probs"].astype(np.float64),
        prob_languages=languages,
        unk_rates=[float(x) for x in arrays["unk_rates"]],
        unk_languages=languages,
        embeddings=arrays["embeddings"].astype(np.float64),
        embedding_languages=languages,
        total=reference.n_items,
        item_ids=[int(i) for i in arrays["item_ids"]],
    )


def window_rows(project: Project, version: int, start: datetime, end: datetime) -> Any:
    """Return the window's production predictions of ``version`` (a queryset, unordered)."""
    return PredictionLog.objects.filter(
        project=project,
        route=PredictionLog.Route.PRODUCTION,
        version_number=version,
        created_at__gte=start,
        created_at__lt=end,
    )


def window_traffic(*, project: Project, version: int, labels: list[str], start: datetime, end: datetime) -> Traffic:
    """Return a uniform sample (at most ``SAMPLE_ROWS``) of the window's production predictions."""
    rows = window_rows(project, version, start, end)
    total = rows.count()
    sample = list(
        rows.order_by("id").values_list("label", "probs", "input_chars", "unk_rate", "script", "language", "embedding")[
            :SAMPLE_ROWS
        ]
    )
    wanted = set(labels)
    probs, prob_lang, unk, unk_lang, emb, emb_lang = [], [], [], [], [], []
    dims = 0
    for _, row_probs, _, rate, _, language, raw in sample:
        code = language or "und"
        if isinstance(row_probs, dict) and set(row_probs) == wanted:
            probs.append([float(row_probs[name]) for name in labels])
            prob_lang.append(code)
        if rate is not None:
            unk.append(float(rate))
            unk_lang.append(code)
        if raw is not None:
            vector = decode(bytes(raw))
            dims = dims or vector.size
            if vector.size == dims:
                emb.append(vector)
                emb_lang.append(code)
    traffic = Traffic(
        labels=labels,
        predicted=[row[0] for row in sample],
        lengths=[float(row[2]) for row in sample],
        scripts=[row[4] or "Common" for row in sample],
        languages=[row[5] or "und" for row in sample],
        probs=np.asarray(probs, dtype=np.float64).reshape(len(probs), len(labels)),
        prob_languages=prob_lang,
        unk_rates=unk,
        unk_languages=unk_lang,
        embeddings=np.asarray(emb, dtype=np.float64).reshape(len(emb), dims),
        embedding_languages=emb_lang,
        total=total,
    )
    if len(probs) < len(sample):
        traffic.notes.append(f"{len(sample) - len(probs)} predictions carry other labels than the reference's.")
    if len(unk) < len(sample):
        traffic.notes.append(f"{len(sample) - len(unk)} predictions were logged without an unknown-token rate.")
    if len(emb) < len(sample):
        traffic.notes.append(
            f"{len(sample) - len(emb)} predictions were logged without an embedding "
            "(before the model server picked up the reference's projection)."
        )
    return traffic
