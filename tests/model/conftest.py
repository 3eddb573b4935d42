"""Fixtures for model tests: one shard set per session (the shards job is the real producer) and two small
thin-slice head scans as NIfTI files for `--volumes`."""
import pytest

from pipeline.io.nifti_io import write_nifti
from tests.model.shard_set import make_shard_set
from tests.pipeline.test_random_pairs import head


@pytest.fixture(scope="session")
def shard_set(tmp_path_factory):
    return make_shard_set(str(tmp_path_factory.mktemp("model_data")))


@pytest.fixture(scope="session")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans")
    paths = [str(folder / f"head{i}.nii.gz") for i in range(2)]
    for seed, path in enumerate(paths):
        write_nifti(head(seed=seed), path)
    return paths
