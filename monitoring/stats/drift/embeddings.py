"""Embedding drift: the kernel two-sample test (MMD) and the PCA projection the embeddings are kept in.

``mmd_test`` compares the two embedding clouds with an RBF kernel (median-distance bandwidth) and a
permutation p-value, every permutation's statistic from one matrix product. ``pca_fit`` and
``pca_project`` make the narrow projection the reference stores and the model server logs embeddings in.
"""

from __future__ import annotations

import numpy as np

from monitoring.stats.drift.result import FloatArray, TestResult, not_tested

# The median-distance bandwidth is estimated on at most this many pooled points (an O(n^2) step otherwise).
MEDIAN_SUBSAMPLE = 1000


def _points(values: FloatArray, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (texts x dimensions)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds a NaN or infinite value")
    return array


def _sq_distances(a: FloatArray, b: FloatArray) -> FloatArray:
    # ||a||^2 + ||b||^2 - 2 a.b: one matrix product instead of an (n, m, d) difference tensor, updated in
    # place (a 3,000 x 3,000 matrix is 72 MB: every temporary costs time); clipped at 0 because rounding can
    # make the distance of a point to itself slightly negative.
    sq = a @ b.T
    sq *= -2.0
    sq += np.einsum("ij,ij->i", a, a)[:, None]
    sq += np.einsum("ij,ij->i", b, b)[None, :]
    np.maximum(sq, 0.0, out=sq)
    return sq


def median_bandwidth(pooled: FloatArray, *, rng: np.random.Generator | None = None) -> float:
    """Return the median pairwise Euclidean distance of the points (the "median heuristic" RBF bandwidth).

    Above MEDIAN_SUBSAMPLE points the median is taken over a random subsample: the median of ~500,000
    pairwise distances is already stable to a fraction of a percent. A zero median (mostly duplicated
    points) falls back to the mean distance, then to 1, so the kernel stays defined.
    """
    points = _points(pooled, "pooled")
    if points.shape[0] > MEDIAN_SUBSAMPLE:
        generator = rng if rng is not None else np.random.default_rng(0)
        points = points[generator.choice(points.shape[0], MEDIAN_SUBSAMPLE, replace=False)]
    distances = np.sqrt(_sq_distances(points, points)[np.triu_indices(points.shape[0], k=1)])
    if distances.size == 0:
        return 1.0
    median = float(np.median(distances))
    if median > 0:
        return median
    mean = float(distances.mean())
    return mean if mean > 0 else 1.0


def rbf_kernel(a: FloatArray, b: FloatArray, *, bandwidth: float) -> FloatArray:
    """Return exp(-||a_i - b_j||^2 / (2 * bandwidth^2)) for every pair of rows."""
    kernel = _sq_distances(a, b)
    kernel *= -1.0 / (2.0 * bandwidth * bandwidth)
    np.exp(kernel, out=kernel)
    return kernel


def mmd2_unbiased(kernel: FloatArray, m: int) -> float:
    """Return the unbiased MMD^2 from the pooled kernel matrix whose first `m` rows are the reference.

    Gretton et al. (2012), eq. 3: the within-sample means exclude the diagonal (k(x, x) terms), which is
    what makes the estimate unbiased, so it can be slightly negative when there is no shift.
    """
    n = kernel.shape[0] - m
    kxx, kyy, kxy = kernel[:m, :m], kernel[m:, m:], kernel[:m, m:]
    xx = (float(kxx.sum()) - float(np.trace(kxx))) / (m * (m - 1))
    yy = (float(kyy.sum()) - float(np.trace(kyy))) / (n * (n - 1))
    return float(xx + yy - 2.0 * float(kxy.mean()))


def permutation_memberships(rng: np.random.Generator, permutations: int, size: int, m: int) -> FloatArray:
    """Return a (permutations x size) 0/1 matrix: each row marks a uniformly random m-subset as "reference"."""
    # argsort of uniform noise gives one independent uniform permutation per row, all in one call.
    order = np.argsort(rng.random((permutations, size)), axis=1)
    membership = np.zeros((permutations, size))
    np.put_along_axis(membership, order[:, :m], 1.0, axis=1)
    return membership


def mmd2_for_memberships(kernel: FloatArray, membership: FloatArray) -> FloatArray:
    """Return the unbiased MMD^2 for every row of `membership` (1 = reference), all in one matrix product.

    With the diagonal zeroed (K0), a membership row z gives S_xx = z K0 z^T; with the row sums r = K0 1,
    S_xy = z.r - S_xx and S_yy = total - 2 z.r + S_xx. So one (B x N) @ (N x N) product yields every
    permutation's statistic: no Python loop over permutations and no per-permutation submatrix copies.
    """
    size = kernel.shape[0]
    m = round(float(membership[0].sum()))
    n = size - m
    k0 = kernel.copy()
    np.fill_diagonal(k0, 0.0)
    row_sums = k0.sum(axis=1)
    total = float(row_sums.sum())
    statistics = np.empty(membership.shape[0])
    chunk = max(1, 4_000_000 // size)  # bound the (chunk x N) product's memory at ~32 MB
    for start in range(0, membership.shape[0], chunk):
        z = membership[start : start + chunk]
        s_xx = np.einsum("bi,bi->b", z @ k0, z)
        z_r = z @ row_sums
        s_xy = z_r - s_xx
        s_yy = total - 2.0 * z_r + s_xx
        statistics[start : start + chunk] = s_xx / (m * (m - 1)) + s_yy / (n * (n - 1)) - 2.0 * s_xy / (m * n)
    return statistics


def mmd_test(
    reference: FloatArray,
    current: FloatArray,
    *,
    permutations: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
    min_n: int = 50,
    max_n: int = 2000,
) -> TestResult:
    """Kernel two-sample test (MMD, RBF kernel, median-distance bandwidth) with a permutation p-value.

    p = (1 + #{permuted MMD^2 >= observed}) / (1 + B): counting the observed split as one of the
    permutations keeps the test exact (false-positive rate at most alpha) and p never 0 (Phipson & Smyth
    2010). Each side is subsampled (seeded) to at most `max_n` rows: the kernel matrix is (m + n)^2.
    Alerts need `min_n` rows on each side.
    """
    ref, cur = _points(reference, "reference"), _points(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference has {ref.shape[1]} dimensions but current has {cur.shape[1]}")
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    n_ref, n_cur = ref.shape[0], cur.shape[0]
    if min(n_ref, n_cur) < 2:
        reason = "too_few_rows"
        return not_tested("embedding_mmd", reason=reason, threshold=alpha, n_reference=n_ref, n_current=n_cur)
    rng = np.random.default_rng(seed)
    if n_ref > max_n:
        ref = ref[rng.choice(n_ref, max_n, replace=False)]
    if n_cur > max_n:
        cur = cur[rng.choice(n_cur, max_n, replace=False)]
    pooled = np.vstack([ref, cur])
    bandwidth = median_bandwidth(pooled, rng=rng)
    kernel = rbf_kernel(pooled, pooled, bandwidth=bandwidth)
    m = ref.shape[0]
    observed = mmd2_unbiased(kernel, m)
    permuted = mmd2_for_memberships(kernel, permutation_memberships(rng, permutations, kernel.shape[0], m))
    # A relative tolerance so a permutation equal to the observed split (up to float rounding) counts as >=.
    exceed = int(np.sum(permuted >= observed - 1e-12 * max(1.0, abs(observed))))
    p_value = (1 + exceed) / (1 + permutations)
    rejected = p_value < alpha
    guard = "min_n" if rejected and min(n_ref, n_cur) < min_n else None
    details = {
        "bandwidth": bandwidth,
        "permutations": permutations,
        "permutation_mean": float(permuted.mean()),
        "permutation_q95": float(np.quantile(permuted, 0.95)),
        "rows_used": [int(m), int(cur.shape[0])],
        "subsampled": bool(n_ref > max_n or n_cur > max_n),
        "min_n": min_n,
        "guard": guard,
        "seed": seed,
    }
    alert = rejected and guard is None
    return TestResult("embedding_mmd", observed, p_value, alpha, rejected, alert, n_ref, n_cur, details)


def pca_fit(embeddings: FloatArray, *, dims: int = 32) -> tuple[FloatArray, FloatArray]:
    """Return (mean, components) of a PCA fitted on the reference embeddings; components is d x k.

    k = min(dims, d, rows): with fewer rows or dimensions than `dims` the projection is simply narrower
    (reference and current always share it). Signs are fixed (largest loading of each component positive)
    so refitting the same data gives the same stored projection.
    """
    x = _points(embeddings, "embeddings")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError("cannot fit a PCA on an empty embedding matrix")
    if dims < 1:
        raise ValueError("dims must be at least 1")
    mean = x.mean(axis=0)
    centred = x - mean
    k = min(dims, x.shape[1], x.shape[0])
    if x.shape[0] > x.shape[1]:
        # Eigenvectors of the d x d scatter matrix: one (d x n) @ (n x d) product and a small symmetric
        # eigensolver. The SVD of the n x d matrix gives the same subspace but took ~1.7 s for 1,000 x 384
        # on 2 busy cores, this ~0.05 s; in float64 the squared condition number costs nothing here (only
        # the leading, well-separated components are kept).
        eigenvalues, vectors = np.linalg.eigh(centred.T @ centred)
        components = vectors[:, np.argsort(eigenvalues)[::-1][:k]].copy()
    else:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        components = vt[:k].T.copy()
    signs = np.sign(components[np.argmax(np.abs(components), axis=0), np.arange(k)])
    signs[signs == 0] = 1.0
    return mean, components * signs


def pca_project(embeddings: FloatArray, mean: FloatArray, components: FloatArray) -> FloatArray:
    """Project embeddings (rows) onto the stored PCA components: (x - mean) @ components."""
    x = _points(embeddings, "embeddings")
    mean_array, comps = np.asarray(mean, dtype=np.float64), np.asarray(components, dtype=np.float64)
    if mean_array.shape != (x.shape[1],) or comps.ndim != 2 or comps.shape[0] != x.shape[1]:
        raise ValueError(
            f"embeddings have {x.shape[1]} dimensions but the PCA was fitted on {comps.shape[0]} "
            f"(mean of shape {mean_array.shape})"
        )
    return (x - mean_array) @ comps
