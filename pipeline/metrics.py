"""Image-quality metrics on 3D volumes: RMSE, PSNR and SSIM (Wang et al. 2004, 3D Gaussian window), and the
in-plane detail each slice phase keeps (sharpness and Laplacian correlation against the truth)."""
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


def in_plane_laplacian(volume: np.ndarray, axis: int) -> np.ndarray:
    """The 2D Laplacian of every slice across `axis` (second differences along the two other axes only)."""
    volume = np.asarray(volume, dtype=np.float64)
    return sum(ndimage.correlate1d(volume, [1.0, -2.0, 1.0], axis=a, mode="reflect") for a in range(3) if a != axis)


def slice_detail(prediction: np.ndarray, target: np.ndarray, tissue: np.ndarray, axis: int, period: int,
                 generated_phases: list[int]) -> dict:
    """How much in-plane detail each slice phase keeps (thin slices k with k mod `period` = r; the period is the
    scale, or p of a fractional scale p/q), over `tissue`:
    sharpness = mean |in-plane Laplacian| of the prediction ÷ the target's, and the correlation of the two
    Laplacians. Reports every phase's sharpness, the worst generated phase's sharpness and Laplacian correlation,
    and the spread of sharpness over all phases (banding: measured slices sharp, generated ones soft)."""
    prediction, target = _pair(prediction, target)
    lap_p, lap_t = in_plane_laplacian(prediction, axis), in_plane_laplacian(target, axis)
    phases = np.arange(target.shape[axis]) % period
    sharpness, correlation = [], []
    for phase in range(period):
        index = [slice(None)] * 3
        index[axis] = phases == phase
        mask = tissue[tuple(index)]
        p, t = lap_p[tuple(index)][mask], lap_t[tuple(index)][mask]
        sharpness.append(float(np.abs(p).mean() / max(np.abs(t).mean(), 1e-12)) if t.size else float("nan"))
        correlation.append(float(np.corrcoef(p, t)[0, 1]) if t.size > 1 and p.std() > 0 and t.std() > 0 else float("nan"))
    generated = [sharpness[p] for p in generated_phases]
    return {"sharpness_by_phase": sharpness, "sharpness_worst": float(min(generated)),
            "sharpness_spread": float(max(sharpness) - min(sharpness)),
            "laplacian_correlation": float(min(correlation[p] for p in generated_phases))}
