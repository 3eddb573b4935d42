"""Image-quality metrics on 3D volumes: RMSE, PSNR and SSIM (Wang et al. 2004, 3D Gaussian window)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_BORDER = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # voxels excluded at each end of every axis
SSIM_MIN_SIZE = 2 * SSIM_BORDER + 1


def _pair(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    return prediction, target


def _data_range(target: np.ndarray, data_range: float | None) -> float:
    """The intensity range the errors are measured against: the target's max - min unless given."""
    value = float(np.ptp(target)) if data_range is None else float(data_range)
    if value <= 0:
        raise ValueError("data range must be positive (the target is constant; pass data_range)")
    return value


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    prediction, target = _pair(prediction, target)
    return float(np.sqrt(np.mean((prediction - target) ** 2)))


def psnr(prediction: np.ndarray, target: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB; +inf for identical volumes."""
    error = rmse(prediction, target)
    peak = _data_range(np.asarray(target), data_range)
    return float("inf") if error == 0 else float(20.0 * np.log10(peak / error))


def ssim(prediction: np.ndarray, target: np.ndarray, data_range: float | None = None) -> float:
    """Mean structural similarity with a 3D Gaussian window (σ = 1.5 voxels), borders excluded.

    Same conventions as scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`, which the tests use as the reference.
    """
    prediction, target = _pair(prediction, target)
    if min(prediction.shape) < SSIM_MIN_SIZE:
        raise ValueError(f"SSIM needs at least {SSIM_MIN_SIZE} voxels along every axis, got {prediction.shape}")
    peak = _data_range(target, data_range)
    c1, c2 = (SSIM_K1 * peak) ** 2, (SSIM_K2 * peak) ** 2

    def blur(volume: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(volume, SSIM_SIGMA, mode="reflect", truncate=SSIM_TRUNCATE)

    mu_p, mu_t = blur(prediction), blur(target)
    var_p = blur(prediction * prediction) - mu_p * mu_p
    var_t = blur(target * target) - mu_t * mu_t
    cov = blur(prediction * target) - mu_p * mu_t
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return float(ssim_map[(slice(SSIM_BORDER, -SSIM_BORDER),) * prediction.ndim].mean())
