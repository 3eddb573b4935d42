"""Previews a radiologist can read: the axial, coronal and sagittal planes named from the affine, in the
radiological convention (the patient's right on the viewer's left; anterior on the left of a sagittal view),
with orientation letters, a millimetre scale bar, a CT window for Hounsfield units, and label maps drawn as
labels. Each row is one volume (truth, thick input, tricubic, super-resolved), cut through the same point.
`plot_comparison` shows only the planes that contain the slice axis, where generated slices and banding show.
"""
from __future__ import annotations

import dataclasses

import matplotlib
import nibabel as nib
import numpy as np

from model.reports.figures import display_range, plt, save_figure
from pipeline.io.encoding import Encoding
from pipeline.volume import Volume

CT_SOFT_TISSUE_WINDOW = (40.0, 400.0)  # (center, width) in HU
HOUNSFIELD_AIR_THRESHOLD = -900.0
SCALE_BAR_LENGTHS_MM = (1, 2, 5, 10, 20, 50, 100, 200)
LETTER_STYLE = {"color": "yellow", "fontsize": 8, "fontweight": "bold"}
COMPARISON_ROW_INCHES = 2.4
COMPARISON_MAX_INCHES = 24.0


@dataclasses.dataclass(frozen=True)
class Plane:
    """One anatomical plane of a RAS-ordered array: the axis it cuts, the (horizontal, vertical) axes it shows,
    and the letters at its (left, right, top, bottom) edges. The horizontal axis (R or A growing) is drawn
    flipped: the patient's right, or front, on the viewer's left."""

    name: str
    cut: int
    horizontal: int
    vertical: int
    letters: tuple[str, str, str, str]


PLANES = (
    Plane("axial", 2, 0, 1, ("R", "L", "A", "P")),
    Plane("coronal", 1, 0, 2, ("R", "L", "S", "I")),
    Plane("sagittal", 0, 1, 2, ("A", "P", "S", "I")),
)
PLANE_BY_NAME = {plane.name: plane for plane in PLANES}


def as_ras(volume: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(voxels reordered to the nearest RAS axes, their spacing, the reordered affine)."""
    orientation = nib.orientations.io_orientation(volume.affine)
    data = nib.orientations.apply_orientation(volume.data, orientation)
    affine = volume.affine @ nib.orientations.inv_ornt_aff(orientation, volume.shape)
    return data, np.linalg.norm(affine[:3, :3], axis=0), affine


def looks_like_hounsfield(volume: Volume) -> bool:
    """CT by its header, or a scan of unknown modality holding air at about −1000 HU."""
    if volume.modality == "CT":
        return True
    return volume.modality == "unknown" and float(np.percentile(volume.data, 0.5)) <= HOUNSFIELD_AIR_THRESHOLD


def display_window(volume: Volume, encoding: Encoding | None = None) -> tuple[float, float]:
    """(low, high) grey levels: the scan's own DICOM window, a soft-tissue window for CT, else its p0.5..p99.5."""
    if encoding is not None and encoding.window is not None:
        center, width = encoding.window
    elif looks_like_hounsfield(volume):
        center, width = CT_SOFT_TISSUE_WINDOW
    else:
        return display_range(volume.data)
    return center - width / 2.0, center + width / 2.0


def plane_image(volume: Volume, plane: Plane, world: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(the plane through world point `world` as drawn: [horizontal, vertical] with the viewer's left at index 0
    and the bottom at index 0, its width in mm, its height in mm)."""
    data, spacing, affine = as_ras(volume)
    voxel = np.linalg.solve(affine, np.append(world, 1.0))[plane.cut]
    image = np.take(data, int(np.clip(np.round(voxel), 0, data.shape[plane.cut] - 1)), axis=plane.cut)
    image = image[::-1, :]  # the two kept axes are (horizontal, vertical); the patient's right or front to the left
    return image, image.shape[0] * spacing[plane.horizontal], image.shape[1] * spacing[plane.vertical]


def planes_along(volume: Volume, axis: int) -> tuple[Plane, ...]:
    """The two planes that contain array axis `axis` (for axial slices: coronal and sagittal)."""
    anatomical_axis = int(nib.orientations.io_orientation(volume.affine)[axis, 0])
    return tuple(plane for plane in PLANES if plane.cut != anatomical_axis)


def centre_of(volume: Volume) -> np.ndarray:
    """The world position of the volume's centre voxel."""
    return (volume.affine @ np.append((np.asarray(volume.shape) - 1) / 2.0, 1.0))[:3]


def centre_views(volume: Volume, planes: tuple[Plane, ...]) -> dict[str, tuple[np.ndarray, float, float]]:
    """{plane name: `plane_image` through the volume's centre}."""
    return {plane.name: plane_image(volume, plane, centre_of(volume)) for plane in planes}


def _scale_bar(ax, width_mm: float, height_mm: float) -> None:
    """A white bar of a round length near the bottom-right corner, labelled in mm."""
    length = max([n for n in SCALE_BAR_LENGTHS_MM if n <= 0.3 * width_mm] or [SCALE_BAR_LENGTHS_MM[0]])
    right, bottom = 0.95 * width_mm, 0.06 * height_mm
    ax.plot([right - length, right], [bottom, bottom], color="white", linewidth=2)
    ax.text(right - length / 2.0, bottom + 0.03 * height_mm, f"{length} mm", color="white", fontsize=7,
            ha="center", va="bottom")


def _letters(ax, letters: tuple[str, str, str, str]) -> None:
    left, right, top, bottom = letters
    for text, x, y, ha, va in ((left, 0.02, 0.5, "left", "center"), (right, 0.98, 0.5, "right", "center"),
                               (top, 0.5, 0.98, "center", "top"), (bottom, 0.5, 0.02, "center", "bottom")):
        ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, **LETTER_STYLE)


def _label_colours(volumes: dict[str, Volume]):
    """(the labels present anywhere, a colour map giving 0 black and each other label its own colour)."""
    values = np.unique(np.concatenate([np.unique(v.data) for v in volumes.values()]))
    palette = matplotlib.colormaps["tab20"].colors
    colours = [(0.0, 0.0, 0.0) if value == 0 else palette[i % len(palette)] for i, value in enumerate(values)]
    return values, matplotlib.colors.ListedColormap(colours)


def _draw(ax, image: np.ndarray, width_mm: float, height_mm: float, plane: Plane, **colours) -> None:
    """One plane as `plane_image` gives it (`colours`: imshow's cmap, vmin, vmax), with orientation letters and
    a scale bar."""
    ax.imshow(image.T, origin="lower", extent=(0, width_mm, 0, height_mm), interpolation="nearest", **colours)
    _letters(ax, plane.letters)
    _scale_bar(ax, width_mm, height_mm)
    ax.axis("off")


def plot_preview(volumes: dict[str, Volume], path: str, title: str = "", window: tuple[float, float] | None = None,
                 labels: bool = False, replace: bool = True) -> None:
    """One row per volume, three planes each, cut through the centre of the last volume's field of view.

    `window` sets the grey levels (default: `display_window` of the first volume); `labels` draws label maps
    with one colour per label and no interpolation.
    """
    names = list(volumes)
    centre = centre_of(volumes[names[-1]])
    if labels:
        values, colour_map = _label_colours(volumes)
    else:
        low, high = window or display_window(volumes[names[0]])
    figure, axes = plt.subplots(len(names), 3, figsize=(10, 3.3 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c, plane in enumerate(PLANES):
            image, width_mm, height_mm = plane_image(volumes[name], plane, centre)
            if labels:
                _draw(axes[r, c], np.searchsorted(values, image), width_mm, height_mm, plane, cmap=colour_map,
                      vmin=0, vmax=len(values) - 1)
            else:
                _draw(axes[r, c], image, width_mm, height_mm, plane, cmap="gray", vmin=low, vmax=high)
            axes[r, c].set_title(f"{name}: {plane.name}", fontsize=9)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path, replace)


def plot_comparison(views: dict, window: tuple[float, float], path: str, replace: bool = True) -> None:
    """The truth and each method in rows; per scale, a column for each plane holding the slice axis.

    `views` is {scale: {name: {plane name: `plane_image`}}}, the truth ("truth") among the names; one grey
    `window` for all, so a method's contrast and its banding compare with the truth's directly. Columns are as
    wide as their planes in mm (rows as high as COMPARISON_ROW_INCHES, less if the figure would be wider than
    COMPARISON_MAX_INCHES), so a short slab is not drawn as a strip.
    """
    scales = list(views)
    names = list(views[scales[0]])
    planes = [PLANE_BY_NAME[name] for name in views[scales[0]][names[0]]]
    aspects = [width / height for scale in scales for _, width, height in
               (views[scale][names[0]][plane.name] for plane in planes)]
    row = min(COMPARISON_ROW_INCHES, COMPARISON_MAX_INCHES / sum(aspects))
    figure, axes = plt.subplots(len(names), len(aspects), figsize=(row * sum(aspects) + 0.1 * len(aspects),
                                                                    (row + 0.3) * len(names)),
                                squeeze=False, gridspec_kw={"width_ratios": aspects})
    for r, name in enumerate(names):
        for s, scale in enumerate(scales):
            for p, plane in enumerate(planes):
                ax = axes[r, s * len(planes) + p]
                _draw(ax, *views[scale][name][plane.name], plane, cmap="gray", vmin=window[0], vmax=window[1])
                ax.set_title(f"{name} x{scale:g} {plane.name}", fontsize=7)
    figure.tight_layout()
    save_figure(figure, path, replace)
