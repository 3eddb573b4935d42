import numpy as np
import pytest

from scipy import ndimage

from pipeline.metrics import in_plane_laplacian, psnr, rmse, slice_detail, ssim
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


def test_slice_detail_of_the_truth_itself_is_full_sharpness_no_banding_and_full_correlation():
    target = phantom((40, 36, 30))
    detail = slice_detail(target, target, target > 100, axis=2, period=3, generated_phases=[1, 2])
    np.testing.assert_allclose(detail["sharpness_by_phase"], 1.0)
    assert detail["sharpness_worst"] == pytest.approx(1.0) and detail["sharpness_spread"] == pytest.approx(0.0)
    assert detail["laplacian_correlation"] == pytest.approx(1.0)


def test_slice_detail_finds_soft_generated_slices_between_sharp_measured_ones():
    """Blur in-plane every thin slice but the measured ones (k mod 3 = 0), as an over-smoothing network would:
    the generated phases lose sharpness and correlation, the measured phase keeps both, and the spread shows it."""
    target = phantom((40, 36, 30)) + 100 * np.random.default_rng(1).random((40, 36, 30)).astype(np.float32)
    prediction = target.copy()
    for k in range(target.shape[2]):
        if k % 3:
            prediction[..., k] = ndimage.gaussian_filter(target[..., k], 1.0)
    detail = slice_detail(prediction, target, target > 200, axis=2, period=3, generated_phases=[1, 2])
    assert detail["sharpness_by_phase"][0] == pytest.approx(1.0)
    assert detail["sharpness_worst"] < 0.6 and detail["sharpness_spread"] > 0.4
    assert detail["laplacian_correlation"] < 0.9


def test_the_in_plane_laplacian_ignores_the_slice_axis():
    ramp_along_slices = np.broadcast_to(np.arange(20.0) ** 2, (12, 14, 20))
    assert np.abs(in_plane_laplacian(ramp_along_slices, axis=2)).max() == 0.0
    assert np.abs(in_plane_laplacian(ramp_along_slices, axis=0)).max() > 0.0
