"""Where the portable trainer (`soupgan train --portable`) gets its pairs, as Keras `PyDataset`s on any backend
and without TensorFlow: drawn on the fly from thin-slice scans (`--volumes`), or read from a local shard set
(`--data`, with its validation split) by `pipeline.data.shard_reader`."""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Sequence

import keras
import numpy as np

from model.training.run_setup import pair_sampler_config
from model.training.shard_plan import plan_shards
from model.training.train_config import TrainConfig
from pipeline.data.prefetch import Prefetcher
from pipeline.data.random_pairs import RandomPairSampler
from pipeline.data.shard_reader import read_local_manifest, split_files, training_batches, validation_batches
from pipeline.errors import InputError
from pipeline.io.volume_io import read_volume


def _model_batch(inputs: np.ndarray, targets: np.ndarray, scales: np.ndarray) -> tuple[dict, np.ndarray]:
    return {"image": inputs[..., None], "scale": scales}, targets[..., None]


class RandomPairBatches(keras.utils.PyDataset):
    """`batches` batches of ({"image", "scale"}, target) drawn at random, for one `fit` call over all its epochs
    (Keras keeps one iterator across epochs when `steps_per_epoch` is given). Batch i comes from the seed
    sequence (*seed, i): reproducible, whichever worker process draws it, and never drawn twice."""

    def __init__(self, sampler: RandomPairSampler, batch_size: int, batches: int, seed: Sequence[int],
                 workers: int = 0):
        super().__init__(workers=max(workers, 1), use_multiprocessing=workers > 0)
        self.sampler, self.batch_size, self.batches, self.seed = sampler, batch_size, batches, tuple(seed)

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        rng = np.random.default_rng([*self.seed, index])
        inputs, targets, scales = self.sampler.batch(self.batch_size, rng)
        return _model_batch(inputs, targets, scales)


class StreamBatches(keras.utils.PyDataset):
    """The first `batches` batches of a reproducible stream (`make_stream()` starts it anew), read ahead in a
    thread. Keras asks for them in order (one worker, no processes); a request out of order (TensorFlow's
    adapter peeks at the first batch for its specs, and each validation pass starts again at 0) restarts the
    stream and skips to it, so every index always gives the same batch. An InputError from the stream (a
    damaged record) is kept in `error`: under TensorFlow it reaches `fit` wrapped in a tf.data error."""

    def __init__(self, make_stream: Callable[[], Iterator[tuple]], batches: int):
        super().__init__(workers=1, use_multiprocessing=False)
        self.make_stream, self.batches = make_stream, batches
        self.error: InputError | None = None
        self._stream: Prefetcher | None = None
        self._next = 0

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        if not 0 <= index < self.batches:
            raise IndexError(f"batch {index} of {self.batches}")
        try:
            if self._stream is None or index != self._next:
                self.close()
                self._stream, self._next = Prefetcher(self.make_stream()), 0
                for _ in range(index):
                    next(self._stream)
            batch = next(self._stream)
        except StopIteration:
            self.error = InputError(f"the shard set ended after fewer batches than its manifest counts "
                                    f"({index} of {self.batches}): rewrite it with `soupgan shards`")
            raise self.error from None
        except InputError as err:
            self.error = err
            raise
        self._next = index + 1
        return _model_batch(*batch)

    def close(self) -> None:
        """Stop the read-ahead thread and free what it holds (a shuffle buffer of pairs)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None


@dataclasses.dataclass
class PortableVolumeSource:
    """Pairs drawn from thin-slice scans: an endless stream (--steps-per-epoch sets the epoch), no validation."""

    config: TrainConfig

    def __post_init__(self):
        self.sampler = RandomPairSampler([read_volume(path) for path in self.config.volumes],
                                         pair_sampler_config(self.config))
        self.patch_shape = self.sampler.config.patch_shape
        self.train_batches, self.val_batches = None, 0

    def train(self, batches: int, seed: Sequence[int]) -> RandomPairBatches:
        return RandomPairBatches(self.sampler, self.config.batch_size, batches, seed, self.config.data_workers)

    def validation(self) -> None:
        return None


@dataclasses.dataclass
class PortableShardSource:
    """A local shard set: an epoch is the train split unless --steps-per-epoch; the val split validates."""

    config: TrainConfig

    def __post_init__(self):
        manifest = read_local_manifest(self.config.data)
        plan = plan_shards(manifest, self.config)
        self.version, self.patch_size, self.patch_shape = plan.schema_version, plan.patch_size, plan.patch_shape
        self.train_batches, self.val_batches = plan.train_batches, plan.val_batches
        if self.config.validation_steps:
            self.val_batches = min(self.val_batches, self.config.validation_steps)
        self.train_files = split_files(self.config.data, "train")
        self.val_files = split_files(self.config.data, "val") if self.val_batches else []

    def train(self, batches: int, seed: Sequence[int]) -> StreamBatches:
        config = self.config
        return StreamBatches(lambda: training_batches(self.train_files, config.criterion, config.batch_size,
                                                      self.version, self.patch_size, seed), batches)

    def validation(self) -> StreamBatches | None:
        if not self.val_batches:
            return None
        config = self.config
        return StreamBatches(lambda: validation_batches(self.val_files, config.criterion, config.batch_size,
                                                        self.version, self.patch_size), self.val_batches)


def portable_source(config: TrainConfig) -> PortableVolumeSource | PortableShardSource:
    return PortableVolumeSource(config) if config.volumes else PortableShardSource(config)
