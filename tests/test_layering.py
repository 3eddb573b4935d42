"""The layering of docs/reference.md (pipeline <- beam_jobs; pipeline <- model <- serving; the CLI on top, and the
order of the subpackages inside model and pipeline), checked on the source."""
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


# Inside a package, a subpackage imports only those before it (the package's top-level modules come first).
SUBPACKAGE_ORDER = {
    "pipeline": ["method", "io", "graph", "data"],
    "model": ["networks", "weights", "inference", "reports", "training"],
}


def subpackage_rank(package, dotted):
    """Where a module of `package` sits in its order: -1 for a top-level module, else its subpackage's index."""
    parts = dotted.split(".")
    order = SUBPACKAGE_ORDER[package]
    return order.index(parts[1]) if len(parts) > 2 and parts[1] in order else -1


@pytest.mark.parametrize("package", sorted(SUBPACKAGE_ORDER))
def test_subpackages_import_only_those_before_them(package):
    offenders = []
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
            rank = subpackage_rank(package, module)
            offenders += [f"{module} imports {m}" for m in imported_modules(path, nested=True)
                          if m.split(".")[0] == package and subpackage_rank(package, m) > rank]
    assert not offenders, offenders


def test_the_packages_hold_few_modules_at_their_top_level():
    for package in SUBPACKAGE_ORDER:
        modules = [name for name in os.listdir(os.path.join(ROOT, package)) if name.endswith(".py")]
        assert len(modules) <= 12, (package, sorted(modules))


def test_numpy_stages_do_not_import_tensorflow():
    """Beam's per-volume steps use these (records too: they encode the pairs), and the portable trainer reads
    shards with them; they must not pay TensorFlow's import."""
    for module in ("volume", "io/nifti_io", "io/dicom_io", "io/volume_io", "method/degradation", "method/geometry",
                   "method/interpolation", "method/normalization", "data/patches", "metrics", "config", "errors",
                   "data/records", "data/example_proto", "data/shard_reader", "data/prefetch",
                   "io/tfrecord_framing"):
        roots = set(imported_roots(os.path.join(ROOT, "pipeline", f"{module}.py")))
        assert "tensorflow" not in roots, module


def project_module_file(name):
    """The file of a project module (`model.networks.generator` → model/networks/generator.py), or None for a third-party one."""
    base = os.path.join(ROOT, *name.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.exists(path):
            return path
    return None


def imported_modules(path, nested):
    """Dotted names a file imports: every import statement, or (nested=False) the module-level ones only."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    nodes = ast.walk(tree) if nested else tree.body
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def third_party_closure(start, nested):
    """Top-level names of the third-party packages reachable from project modules `start`."""
    seen, roots, todo = set(), set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = project_module_file(name)
        if path is None:
            if name.split(".")[0] not in FORBIDDEN and name.split(".")[0] != "tests":
                roots.add(name.split(".")[0])
            continue
        todo += list(imported_modules(path, nested))
    return roots


def test_the_portable_trainer_imports_no_tensorflow():
    """`soupgan train --portable` must run on a GPU image without TensorFlow (KERAS_BACKEND=jax): the CLI's
    module-level imports and everything the portable trainer imports, at any depth, stay clear of it."""
    cli = third_party_closure(["soupgan.cli"], nested=False)
    trainer = third_party_closure(["model.training.portable_training"], nested=True)
    assert "keras" in trainer and "numpy" in trainer  # the closure does reach the libraries
    assert "tensorflow" not in cli | trainer and "tensorflow_io" not in cli | trainer
