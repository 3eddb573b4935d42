import numpy as np
import pytest

from pipeline.metrics import psnr, rmse, ssim
from tests.conftest import phantom


def test_rmse_and_psnr_of_a_known_error():
    target = phantom((30, 30, 30))
    prediction = target + 5.0
    assert rmse(prediction, target) == pytest.approx(5.0)
    assert psnr(prediction, target) == pytest.approx(20 * np.log10(np.ptp(target) / 5.0))
    assert psnr(prediction, target, data_range=1000) == pytest.approx(20 * np.log10(200))
    assert psnr(target, target) == float("inf")


def test_ssim_matches_scikit_image_3d():
    metrics = pytest.importorskip("skimage.metrics")
    target = phantom((40, 36, 30))
    prediction = target + np.random.default_rng(0).normal(0, 40, target.shape).astype(np.float32)
    reference = metrics.structural_similarity(
        prediction.astype(np.float64), target.astype(np.float64), data_range=float(np.ptp(target)),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    assert ssim(prediction, target) == pytest.approx(reference, abs=1e-6)


def test_ssim_orders_quality():
    target = phantom((32, 32, 32))
    rng = np.random.default_rng(1)
    scores = [ssim(target + rng.normal(0, sd, target.shape), target) for sd in (0, 10, 50, 400)]
    assert scores[0] == pytest.approx(1.0)
    assert scores == sorted(scores, reverse=True) and scores[-1] < 0.5


def test_shape_and_range_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        rmse(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))
    with pytest.raises(ValueError, match="data range must be positive"):
        psnr(np.ones((4, 4, 4)), np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="SSIM needs at least 11 voxels along every axis"):
        ssim(np.random.rand(20, 20, 8), np.random.rand(20, 20, 8))
