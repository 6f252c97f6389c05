"""Drift statistics: two-sample tests of a current window against a model version's stored reference.

Pure numpy/scipy: plain data in, a `TestResult` out. Every test separates "the no-shift null is rejected"
(`rejected`, a pure significance statement) from "raise an alert" (`alert`), which also needs the test's
guards to hold: enough data on both sides and, where an effect size is defined, an effect worth acting on.
With a large window a significance test rejects for shifts too small to matter; with a small one it is
noise. The guards keep both out of the alert list while the numbers stay visible.

The reference is usually a model version's eval split, so it is a *sample*, often a small one. The tests
here are two-sample tests that account for the reference's own sampling noise; none of them treats the
reference as the population truth (see `categorical`).

The package, by what each part does: `result` (`TestResult`), `distances` (PSI, Jensen-Shannon),
`categorical` (chi-square tests of label, script and language mixes), `continuous` (KS tests of
descriptors and softmax outputs), `embeddings` (the MMD test and the PCA projection) and
`multiple_testing` (Benjamini-Hochberg). Everything public is re-exported here: import it from
`monitoring.stats.drift`.
"""

from __future__ import annotations

from monitoring.stats.drift.categorical import MIN_EXPECTED, OTHER, categorical_shift, prediction_shift
from monitoring.stats.drift.continuous import ks_test, softmax_ks
from monitoring.stats.drift.distances import js_distance, psi
from monitoring.stats.drift.embeddings import (
    MEDIAN_SUBSAMPLE,
    median_bandwidth,
    mmd2_for_memberships,
    mmd2_unbiased,
    mmd_test,
    pca_fit,
    pca_project,
    permutation_memberships,
    rbf_kernel,
)
from monitoring.stats.drift.multiple_testing import benjamini_hochberg
from monitoring.stats.drift.result import FloatArray, TestResult

__all__ = [
    "MEDIAN_SUBSAMPLE",
    "MIN_EXPECTED",
    "OTHER",
    "FloatArray",
    "TestResult",
    "benjamini_hochberg",
    "categorical_shift",
    "js_distance",
    "ks_test",
    "median_bandwidth",
    "mmd2_for_memberships",
    "mmd2_unbiased",
    "mmd_test",
    "pca_fit",
    "pca_project",
    "permutation_memberships",
    "prediction_shift",
    "psi",
    "rbf_kernel",
    "softmax_ks",
]
