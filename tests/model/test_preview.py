"""Previews: planes named from the affine in the radiological convention, HU windows, labels drawn as labels."""
import numpy as np
import pytest

from model.reports.preview import PLANES, display_window, plane_image, plot_preview
from pipeline.io.encoding import Encoding
from pipeline.volume import Volume

PLANE = {plane.name: plane for plane in PLANES}


def marked_volume(affine) -> tuple[Volume, dict]:
    """A volume with a bright voxel on the patient's right, one in front and one at the top of its centre."""
    data = np.zeros((21, 23, 25), np.float32)
    centre = np.array([10, 11, 12])
    inverse = np.linalg.inv(affine)
    world_centre = (affine @ np.append(centre, 1.0))[:3]
    marks = {"right": (6, 0, 0), "anterior": (0, 6, 0), "superior": (0, 0, 6)}
    for value, offset in enumerate(marks.values(), start=1):
        voxel = np.rint(inverse @ np.append(world_centre + offset, 1.0))[:3].astype(int)
        data[tuple(voxel)] = value
    return Volume(data, affine), world_centre


@pytest.mark.parametrize("affine", [
    np.diag([1.0, 1.0, 1.0, 1.0]),                                                    # RAS
    np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]]),         # LPS, as from DICOM
    np.array([[0, 0, 1.0, 0], [-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]]),         # sagittal slices first
])
def test_planes_follow_the_radiological_convention_whatever_the_voxel_order(affine):
    volume, centre = marked_volume(affine)

    def where(plane_name, value):
        image, _, _ = plane_image(volume, PLANE[plane_name], centre)
        column, row = np.argwhere(image == value)[0]
        return column / (image.shape[0] - 1), row / (image.shape[1] - 1)  # 0 = viewer's left / bottom

    assert where("axial", 1)[0] < 0.5       # the patient's right on the viewer's left
    assert where("axial", 2)[1] > 0.5       # anterior at the top
    assert where("coronal", 1)[0] < 0.5     # right on the left
    assert where("coronal", 3)[1] > 0.5     # superior at the top
    assert where("sagittal", 2)[0] < 0.5    # anterior on the left
    assert where("sagittal", 3)[1] > 0.5    # superior at the top


def test_planes_are_measured_in_mm():
    volume = Volume(np.ones((10, 20, 6), np.float32), np.diag([0.5, 1.0, 4.0, 1.0]))
    image, width, height = plane_image(volume, PLANE["coronal"], np.zeros(3))
    assert image.shape == (10, 6) and (width, height) == (5.0, 24.0)  # thick slices look thick


def test_display_windows():
    ct = Volume(np.linspace(-1024, 1500, 1000, dtype=np.float32).reshape(10, 10, 10), np.eye(4), "CT")
    assert display_window(ct) == (-160.0, 240.0)  # soft tissue: 40 / 400 HU
    assert display_window(ct, Encoding(np.int16, window=(40.0, 80.0))) == (0.0, 80.0)  # the scan's own window
    hu_nifti = Volume(ct.data, np.eye(4))  # NIfTI does not say CT; air at -1024 does
    assert display_window(hu_nifti) == (-160.0, 240.0)
    mr = Volume(np.linspace(0, 1000, 1000, dtype=np.float32).reshape(10, 10, 10), np.eye(4), "MR")
    low, high = display_window(mr)
    assert 0 <= low < 10 and 990 < high <= 1000


def test_previews_draw_images_and_label_maps(tmp_path):
    volume, _ = marked_volume(np.diag([1.0, 1.0, 3.0, 1.0]))
    plot_preview({"truth": volume, "result": volume}, str(tmp_path / "image.png"), "x3")
    labels = volume.with_data(np.round(volume.data) * 7)
    plot_preview({"thick labels": labels, "upsampled labels": labels}, str(tmp_path / "labels.png"), labels=True)
    for name in ("image.png", "labels.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.png", "labels.png"]  # no staging left
