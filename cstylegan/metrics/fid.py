"""Fréchet Inception Distance: ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

clean-fid's `frechet_distance` takes the matrix square root with scipy's sqrtm: about 30 s for
2048x2048 on a 2-core CPU, once per FID (five times for four classes and the overall FID).
Only the trace of the root is needed. The eigenvalues of S1 S2 are those of the symmetric
A S2 A with A = S1^(1/2), so two symmetric eigen-decompositions give the same number in
about 6 s (tests/test_metrics.py compares the two).
"""

import numpy as np

from cstylegan.metrics.errors import MetricError


def _check_count(count: int) -> None:
    if count < 2:
        raise MetricError(f"FID needs at least 2 images on each side, got {count}; generate or give more")


def feature_stats(features) -> tuple:
    """(mean, covariance) in float64, as clean-fid computes them."""
    features = np.asarray(features, dtype=np.float64)
    _check_count(len(features))
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative rounding noise clipped)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """FID from two (mean, covariance) pairs."""
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    root = _psd_sqrt(sigma1)
    product = root @ sigma2 @ root
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def fid_from_features(features1, features2) -> float:
    """FID of two feature sets [n, d].

    With fewer images than dimensions on both sides the covariances are low-rank, and
    Tr((S1 S2)^(1/2)) is the sum of the singular values of C1 C2^T / sqrt((n1-1)(n2-1)) (C: the
    centred features), an n1 x n2 matrix: exact, and far cheaper than d x d decompositions.
    """
    x1, x2 = np.asarray(features1, dtype=np.float64), np.asarray(features2, dtype=np.float64)
    if max(len(x1), len(x2)) >= x1.shape[1]:
        return frechet_distance(*feature_stats(x1), *feature_stats(x2))
    _check_count(min(len(x1), len(x2)))
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    c1, c2 = x1 - mu1, x2 - mu2
    scale1, scale2 = len(x1) - 1, len(x2) - 1
    trace_sqrt = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt(scale1 * scale2)
    diff = mu1 - mu2
    return float(diff @ diff + (c1 * c1).sum() / scale1 + (c2 * c2).sum() / scale2 - 2 * trace_sqrt)
