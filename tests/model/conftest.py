"""Fixtures for model tests: one shard set per session (the shards job is the real producer)."""
import pytest

from tests.model.shard_set import make_shard_set


@pytest.fixture(scope="session")
def shard_set(tmp_path_factory):
    return make_shard_set(str(tmp_path_factory.mktemp("model_data")))
