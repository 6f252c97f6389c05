"""The labeling app's pure math: inter-annotator agreement. NumPy only; never imports Django."""

from labeling.stats.agreement import (
    Alpha,
    Kappa,
    ReviewerAgreement,
    cohen_kappa,
    krippendorff_alpha,
    per_label_alpha,
    per_label_kappa,
    reviewer_agreement,
)

__all__ = [
    "Alpha",
    "Kappa",
    "ReviewerAgreement",
    "cohen_kappa",
    "krippendorff_alpha",
    "per_label_alpha",
    "per_label_kappa",
    "reviewer_agreement",
]
