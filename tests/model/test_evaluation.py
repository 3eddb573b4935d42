"""`soupgan evaluate`'s protocol: the comparison views hold the slice axis, with the truth beside each method."""
import matplotlib.image
import numpy as np
import pytest

from model.networks.generator import SoupGenerator
from model.reports.evaluation import evaluate_scales, generator_methods
from model.reports.preview import (COMPARISON_MAX_INCHES, COMPARISON_ROW_INCHES, PLANE_BY_NAME, plane_image,
                                   planes_along, plot_comparison)
from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.method.interpolation import upsample_volume
from pipeline.method.slice_flow import flow_upsample_volume
from pipeline.volume import Volume

LPS_SAGITTAL_FIRST = np.array([[0, 0, 1.0, 0], [-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])


@pytest.mark.parametrize("affine, axis, names", [
    (np.eye(4), 2, ("coronal", "sagittal")),             # axial slices
    (np.eye(4), 0, ("axial", "coronal")),                # sagittal slices
    (LPS_SAGITTAL_FIRST, 0, ("axial", "sagittal")),      # array axis 0 runs front-back: coronal slices
    (LPS_SAGITTAL_FIRST, 1, ("coronal", "sagittal")),    # array axis 1 runs top-bottom: axial slices
    (LPS_SAGITTAL_FIRST, 2, ("axial", "coronal")),       # array axis 2 runs left-right: sagittal slices
])
def test_the_views_are_the_planes_that_hold_the_slice_axis(affine, axis, names):
    volume = Volume(np.zeros((8, 9, 10), np.float32), affine)
    assert tuple(plane.name for plane in planes_along(volume, axis)) == names


def test_evaluate_gives_truth_and_method_views_of_the_scored_slices(tmp_path):
    rng = np.random.default_rng(0)
    hr = Volume(rng.uniform(0, 100, (40, 36, 25)).astype(np.float32), np.diag([1.0, 1.0, 1.5, 1.0]), "MR")
    methods = {"tricubic": lambda lr, s: upsample_volume(lr, s, THIN_TO_THIN, 2)}
    rows, views = evaluate_scales(hr, [2, 3], THIN_TO_THIN, methods, axis=2, crop=32)
    assert [row["method"] for row in rows] == ["tricubic", "tricubic"]
    for scale, scored in ((2, 25), (3, 25)):  # 13 or 9 thick slices bring back all 25
        assert list(views[scale]) == ["truth", "tricubic"]
        for name in ("truth", "tricubic"):
            assert list(views[scale][name]) == ["coronal", "sagittal"]
            image, width, height = views[scale][name]["coronal"]
            assert image.shape == (32, scored) and (width, height) == (32.0, scored * 1.5)
        # the truth row is the scan's own centre plane, cropped in-plane
        full, _, _ = plane_image(hr, PLANE_BY_NAME["sagittal"], np.array([19.5, 17.5, 18.0]))
        np.testing.assert_array_equal(views[scale]["truth"]["sagittal"][0], full[2:34])
        assert not np.array_equal(views[scale]["tricubic"]["sagittal"][0], views[scale]["truth"]["sagittal"][0])

    path = tmp_path / "comparison.png"
    plot_comparison(views, (0.0, 100.0), str(path))
    height_px, width_px = matplotlib.image.imread(path).shape[:2]
    # 2 rows; 2 scales x 2 planes, each as wide as it is in mm (32 x 37.5 mm)
    assert height_px == round(2 * (COMPARISON_ROW_INCHES + 0.3) * 110)
    assert width_px == round((COMPARISON_ROW_INCHES * 4 * 32 / 37.5 + 0.4) * 110)


@pytest.mark.parametrize("criterion", [THIN_TO_THIN, THIN_TO_THICK])
def test_a_fractional_scale_is_scored_on_the_thin_slices_its_grid_holds(criterion):
    """x2.5: degraded by 5 and scored against the scan's slices 2 apart (thin-to-thick: pairs' means). A method
    that returns exactly those slices scores perfectly; tricubic does not; the phases run over 5 thin slices."""
    rng = np.random.default_rng(1)
    data = rng.uniform(0, 100, (24, 22, 41)).astype(np.float32)
    hr = Volume(data, np.eye(4), "MR")
    thin = data[..., ::2] if criterion == THIN_TO_THIN else data[..., :40].reshape(24, 22, 20, 2).mean(-1)

    def oracle(lr, scale):
        assert lr.shape[2] == (9 if criterion == THIN_TO_THIN else 8) and scale == 2.5
        out = upsample_volume(lr, scale, criterion, 2)
        return out.with_data(thin[..., : out.shape[2]])

    methods = {"oracle": oracle, "tricubic": lambda lr, s: upsample_volume(lr, s, criterion, 2)}
    rows, views = evaluate_scales(hr, [2.5], criterion, methods, axis=2)
    assert rows[0]["rmse"] == 0 and rows[0]["ssim"] == pytest.approx(1.0)
    assert rows[1]["rmse"] > 1 and len(rows[1]["sharpness_by_phase"]) == 5
    scored = 21 if criterion == THIN_TO_THIN else 20
    for name in ("truth", "oracle", "tricubic"):  # drawn on the thin grid: slices 2 mm apart
        image, width, height = views[2.5][name]["coronal"]
        assert image.shape == (24, scored) and (width, height) == (24.0, 2.0 * scored)


def test_a_comparison_of_short_slabs_stays_within_the_widest_figure(tmp_path):
    """A 256 x 53 mm plane (a thin EPI slab) is drawn short rather than as a strip in an overwide figure."""
    plane = (np.zeros((128, 24), np.float32), 256.0, 52.8)
    views = {scale: {"truth": {"coronal": plane, "sagittal": plane}} for scale in (2, 3, 4, 5, 6)}
    path = tmp_path / "comparison.png"
    plot_comparison(views, (0.0, 1.0), str(path))
    height_px, width_px = matplotlib.image.imread(path).shape[:2]
    assert width_px == round((COMPARISON_MAX_INCHES + 1.0) * 110)
    assert height_px == round((COMPARISON_MAX_INCHES / (10 * 256.0 / 52.8) + 0.3) * 110)


@pytest.mark.parametrize("flow_input, consistent, criterion, names", [
    (True, False, THIN_TO_THIN, ["tricubic", "flow-guided", "soupgan"]),
    (True, True, THIN_TO_THICK, ["tricubic", "flow-guided", "soupgan"]),
    (False, False, THIN_TO_THIN, ["tricubic", "soupgan"]),
])
def test_a_generator_is_scored_beside_its_own_input(flow_input, consistent, criterion, names):
    """The flow-guided row appears for a generator that refines it and is its very input (slab means restored for
    a consistent one): an untrained generator, the identity, gives exactly that row."""
    generator = SoupGenerator(filters=2, blocks=1, flow_input=flow_input, consistent_input=consistent)
    methods = generator_methods(generator, criterion, axis=2)
    assert list(methods) == names
    rng = np.random.default_rng(1)
    lr = Volume(rng.uniform(0, 100, (20, 18, 6)).astype(np.float32), np.diag([1.0, 1.0, 3.0, 1.0]), "MR")
    baseline = (methods["flow-guided"] if flow_input else methods["tricubic"])(lr, 3)
    np.testing.assert_allclose(methods["soupgan"](lr, 3).data, baseline.data, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(methods["tricubic"](lr, 3).data, upsample_volume(lr, 3, criterion, 2).data)
    if consistent:  # each slab's mean is its thick slice, which the plain flow does not keep
        thin = methods["flow-guided"](lr, 3).data
        slabs = thin[:, :, : 3 * 6].reshape(20, 18, 6, 3).mean(axis=3)
        np.testing.assert_allclose(slabs, lr.data, atol=1e-3)
        assert np.abs(flow_upsample_volume(lr, 3, criterion, 2).data - thin).max() > 0.1
