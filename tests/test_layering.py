"""The layering in the README (pipeline <- beam_jobs; pipeline <- model <- serving; the CLI on top), checked on the source."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORBIDDEN = {
    "pipeline": {"apache_beam", "keras", "beam_jobs", "model", "serving", "soupgan"},
    "beam_jobs": {"keras", "model", "serving", "soupgan"},
    "model": {"apache_beam", "beam_jobs", "serving", "soupgan"},
    "serving": {"apache_beam", "beam_jobs", "soupgan"},
}


def imported_roots(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down_only(package):
    offenders = []
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                offenders += [f"{os.path.relpath(path, ROOT)} imports {m}" for m in imported_roots(path) if m in FORBIDDEN[package]]
    assert not offenders, offenders


def test_numpy_stages_do_not_import_tensorflow():
    """Beam's per-volume steps use these; they must not pay TensorFlow's import."""
    for module in ("volume", "nifti_io", "dicom_io", "volume_io", "degradation", "geometry", "interpolation", "normalization", "patches", "metrics", "config", "errors"):
        roots = set(imported_roots(os.path.join(ROOT, "pipeline", f"{module}.py")))
        assert "tensorflow" not in roots, module
