"""The two pair makers agree: a pair drawn by `RandomPairSampler` (no augmentation, no flips, slice phase 0) at a
grid position is the shards job's pair there (`pipeline.data.pairs`), up to the affine intensity map each applies
(the sampler works in the thin volume's window, records carry the thick volume's window). Spline inputs: the
sampler's flow input is estimated on a column with some context, the shards' on whole slices, as inference does."""
import numpy as np
import pytest

from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.data.augmentation import AugmentationConfig
from pipeline.data.pairs import PairConfig, patch_pairs
from pipeline.data.random_pairs import RandomPairSampler, SamplerConfig
from pipeline.volume import Volume
from tests.conftest import phantom

SIZE, STRIDE, SCALE, AXIS = 16, 8, 3, 2
ROW, COLUMN, START = 16, 24, 8  # on the shards job's grid (multiples of the stride), inside the phantom's tissue


class ScriptedDraws:
    """A NumPy generator whose `integers` and `choice` return scripted values first (which volume, axis, scale,
    column, phase and depth the sampler draws), everything else from a seeded generator."""

    def __init__(self, integers, choices):
        self._integers, self._choices = list(integers), list(choices)
        self._rng = np.random.default_rng(0)

    def integers(self, *args, **kwargs):
        return self._integers.pop(0) if self._integers else self._rng.integers(*args, **kwargs)

    def choice(self, *args, **kwargs):
        return self._choices.pop(0) if self._choices else self._rng.choice(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._rng, name)


def affine_residual(drawn: np.ndarray, raw: np.ndarray, gain: float, offset: float) -> float:
    return float(np.abs(drawn - (gain * raw + offset)).max())


@pytest.mark.parametrize("criterion", [THIN_TO_THIN, THIN_TO_THICK])
@pytest.mark.parametrize("scale, start", [(SCALE, START), (2.5, 0)])  # 2.5: by 5, against thin slices 2 apart
def test_a_drawn_pair_is_the_shards_pair_at_the_same_place(criterion, scale, start):
    volume = Volume(phantom(), np.eye(4), "MR")
    shards = {pair.origin: pair for pair in patch_pairs(volume, PairConfig(
        scales=(scale,), criteria=(criterion,), patch_size=SIZE, stride=STRIDE, slice_axis=AXIS, input_kind="spline",
        consistent=False))}
    expected = shards[(start, ROW, COLUMN)]
    sampler = RandomPairSampler([volume], SamplerConfig(
        patch_size=SIZE, scales=(scale,), criterion=criterion, flips=False,
        augmentation=AugmentationConfig.none(), slice_axes=(AXIS,)))
    drawn_in, drawn_out, drawn_scale = sampler.pair(ScriptedDraws(integers=[0, ROW, COLUMN, 0],
                                                                  choices=[AXIS, scale, start]))
    assert drawn_scale == scale and drawn_in.shape == expected.input.shape == (SIZE, SIZE, SIZE)
    # one affine map takes the shards pair's raw target to the drawn one, and the same map takes input to input
    gain, offset = np.polyfit(expected.target.ravel(), drawn_out.ravel(), 1)
    spread = float(np.ptp(drawn_out))
    assert gain > 0 and affine_residual(drawn_out, expected.target, gain, offset) < 1e-5 * spread
    raw_input = expected.window.denormalize(expected.input)  # records store the input normalised
    assert affine_residual(drawn_in, raw_input, gain, offset) < 1e-5 * spread
    assert np.abs(drawn_in - drawn_out).max() > 0.01 * spread  # the input is degraded: not the target again
