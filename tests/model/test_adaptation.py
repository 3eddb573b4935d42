"""`upsample --adapt`: fine-tuning on pairs made from the scan's own in-plane axes."""
import numpy as np
import pytest

from model.training.adaptation import adapt_generator, adaptation_pairs, adaptation_scales
from pipeline.errors import InputError
from pipeline.data.random_pairs import RandomPairSampler
from pipeline.volume import Volume
from tests.generators import random_generator
from tests.pipeline.test_random_pairs import head


def test_adaptation_trains_a_copy_on_the_scans_in_plane_pairs():
    generator = random_generator(filters=4, blocks=1)
    before = [w.copy() for w in generator.get_weights()]
    thick = head(shape=(48, 44, 16), spacing=(1.0, 1.0, 3.0))
    steps = []
    adapted = adapt_generator(generator, thick, 2.5, "thin-to-thin", steps=3, batch_size=2,
                              progress=lambda done, total: steps.append((done, total)))
    assert steps[-1] == (3, 3)
    assert all(np.array_equal(a, b) for a, b in zip(before, generator.get_weights()))  # the original is untouched
    changed = [not np.array_equal(a, b) for a, b in zip(before, adapted.get_weights())]
    assert any(changed) and adapted.get_config() == generator.get_config()
    # only the parameters of the scales around 2.5 (and the shared trunk) move
    kernel = adapted.entrance.kernel.numpy() - generator.entrance.kernel.numpy()
    assert np.abs(kernel[:2]).max() > 0 and np.abs(kernel[2:]).max() == 0


def test_adaptation_needs_a_thick_slice_scan_big_enough_for_pairs():
    generator = random_generator(filters=4, blocks=1)
    with pytest.raises(InputError, match="needs a thick-slice scan"):
        adapt_generator(generator, head(shape=(32, 32, 32)), 3, "thin-to-thin", steps=1)
    with pytest.raises(InputError, match="too small to make training pairs"):
        adapt_generator(generator, Volume(np.ones((12, 40, 16), np.float32), np.diag([1, 1, 4, 1])), 3,
                        "thin-to-thin", steps=1)
    with pytest.raises(InputError, match="needs a thin axis besides slice axis 0"):
        adapt_generator(generator, head(shape=(32, 32, 32), spacing=(1.0, 3.0, 3.0)), 3, "thin-to-thin", steps=1,
                        axis=0)


def test_pairs_are_cut_on_the_super_resolved_grid_not_the_thick_one():
    """Sixteen thick slices at x3: the pairs come from the generator's thin output (46 slices), 32 voxels a side,
    degraded along the measured in-plane axes only, so their plane shows anatomy at the scale inference does."""
    generator = random_generator(filters=4, blocks=1)
    thick = head(shape=(48, 44, 16), spacing=(1.0, 1.0, 3.0))
    source, config = adaptation_pairs(generator, thick, 3, "thin-to-thin")
    assert source.shape == (48, 44, 46) and np.allclose(source.spacing, (1.0, 1.0, 1.0))
    assert config.patch_shape == (32, 32, 32) and config.slice_axes == (0, 1) and config.scales == (3,)
    pair_in, pair_out, _ = RandomPairSampler([source], config).pair(np.random.default_rng(0))
    assert pair_in.shape == pair_out.shape == (32, 32, 32)
    assert not config.consistent_input
    generator.consistent_input = True  # a generator trained on consistent thin-to-thick inputs adapts on them too
    assert adaptation_pairs(generator, thick, 3, "thin-to-thick")[1].consistent_input
    generator.consistent_input, generator.flow_input = False, True  # and one trained on flow-guided inputs
    source, config = adaptation_pairs(generator, thick, 3, "thin-to-thin")
    assert config.flow_input
    pair_in, pair_out, _ = RandomPairSampler([source], config).pair(np.random.default_rng(0))
    assert pair_in.shape == pair_out.shape == (32, 32, 32)


def test_too_few_slices_to_adapt_to_are_refused():
    with pytest.raises(InputError, match="--adapt: 10 slices are too few to adapt to"):
        adapt_generator(random_generator(filters=4, blocks=1), head(shape=(48, 44, 10), spacing=(1.0, 1.0, 3.0)), 3,
                        "thin-to-thin", steps=1)


def test_adaptation_scales_are_the_integer_neighbours():
    generator = random_generator(filters=4, blocks=1)
    assert adaptation_scales(2.5, generator) == (2, 3) and adaptation_scales(4.0, generator) == (4,)
