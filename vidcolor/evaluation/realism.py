"""Realism: the Frechet distance between two sets of image features, as FID does with Inception
(Heusel et al. 2017), here on the 1,280-d pooled features of the shipped MobileNetV2 port (the
classifier's penultimate layer; ``Classifier.look`` in ``vidcolor.evaluation.images``).

    d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

Each set is summarised by its mean and covariance. With fewer images than feature dimensions the
covariances are rank-deficient; the distance is still defined, but it is biased upwards by the
sample size, so only distances over the same number of images compare (as with FID).
"""

from __future__ import annotations

import numpy as np


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of (N, D) features, in float64; N = 1 gives a zero covariance."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"features must be (N, D) with N >= 1, got shape {x.shape}")
    mu = x.mean(axis=0)
    cov = np.cov(x, rowvar=False) if len(x) > 1 else np.zeros((x.shape[1], x.shape[1]))
    return mu, np.atleast_2d(cov)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Squared Frechet distance between N(mu_a, cov_a) and N(mu_b, cov_b). The trace of the matrix
    square root comes from eigenvalues: S_a S_b has those of the symmetric PSD matrix
    S_a^(1/2) S_b S_a^(1/2), so no general (complex) sqrtm is needed."""
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())
    diff = np.asarray(mu_a, np.float64) - np.asarray(mu_b, np.float64)
    d2 = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)
    return max(d2, 0.0)  # rounding can leave a tiny negative for identical sets


def realism_distance(features: np.ndarray, reference: np.ndarray) -> float:
    """Frechet distance of one feature set (e.g. colorized images) from a reference set (their
    originals): 0 = the same statistics; FID-like units (feature units squared)."""
    return frechet_distance(*feature_stats(features), *feature_stats(reference))
