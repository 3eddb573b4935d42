"""`soupgan info`: a volume's geometry, slice axis, orientation, intensity window and hashed id."""
from __future__ import annotations

import argparse
import json

import nibabel as nib
import numpy as np

from pipeline.method.normalization import robust_window
from soupgan.console import add_input, input_path


def add_parser(commands) -> None:
    parser = commands.add_parser("info", help="show a volume's geometry, slice axis and intensities")
    add_input(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Print the summary (no source path: only the hashed id)."""
    from pipeline.io.volume_io import read_volume

    volume = read_volume(input_path(args), series_uid=args.series)
    window = robust_window(volume.data)
    summary = {
        "volume_id": volume.volume_id,
        "modality": volume.modality,
        "shape": list(volume.shape),
        "spacing_mm": [round(float(v), 4) for v in volume.spacing],
        "slice_axis": volume.slice_axis(),
        "orientation": "".join(nib.aff2axcodes(volume.affine)),
        "intensity_min_max": [float(volume.data.min()), float(volume.data.max())],
        "window_p0.5_p99.5": [window.low, window.high],
        "affine": np.round(volume.affine, 4).tolist(),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:18s} {value}")
