"""`benchmarks/pair_gains.py`: a generator's gain over cubic on random pairs of a scan."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.pair_gains import pair_gains
from pipeline.data.augmentation import AugmentationConfig
from pipeline.data.random_pairs import RandomPairSampler, SamplerConfig
from tests.pipeline.test_random_pairs import head


def test_the_cubic_input_itself_gains_nothing_and_every_pair_is_scored():
    seen = []

    def cubic(inputs):  # a "generator" that hands back its cubic input
        seen.append(len(inputs["image"]))
        return inputs["image"]

    gains = pair_gains(cubic, head(), scale=3, pairs=10, patch=16, margin=2, augment=False, seed=0)
    assert gains == {"mean_db": 0.0, "median_db": 0.0}
    assert sum(seen) == 10  # in batches, the last one short


def test_halving_the_cubic_error_gains_6_db():
    volume = head()

    def halfway(inputs):  # halfway from the cubic input to the target of the same draw
        sampler = RandomPairSampler([volume], SamplerConfig(patch_size=16, scales=(2,),
                                                            augmentation=AugmentationConfig.none()))
        x, y, _ = sampler.batch(4, np.random.default_rng([5, 2]))
        np.testing.assert_array_equal(x, inputs["image"][..., 0])
        return (x + 0.5 * (y - x))[..., None]

    gains = pair_gains(halfway, volume, scale=2, pairs=4, patch=16, margin=2, augment=False, seed=5)
    assert gains["mean_db"] == pytest.approx(6.02, abs=0.01) and gains["median_db"] == pytest.approx(6.02, abs=0.01)
