"""An iterator's items made ahead in a background thread, so that reading shards (GZIP, CRC32C, parsing) overlaps
the training step: zlib and CRC32C release the GIL, so the thread gets real time on a multi-core host."""
from __future__ import annotations

import queue
import threading
from typing import Generic, Iterator, TypeVar

Item = TypeVar("Item")
_END = object()


class Prefetcher(Generic[Item]):
    """Iterate `items` in a daemon thread, `depth` items ahead; an error there is raised here, at its place in
    the sequence. `close` stops the thread (it is also stopped when the Prefetcher is collected)."""

    def __init__(self, items: Iterator[Item], depth: int = 4):
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(items,), daemon=True, name="soupgan-prefetch")
        self._thread.start()

    def _put(self, entry) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self, items: Iterator[Item]) -> None:
        try:
            for item in items:
                if not self._put((item, None)):
                    return
            self._put((_END, None))
        except Exception as err:  # handed to the consumer, which raises it
            self._put((_END, err))

    def __iter__(self) -> Prefetcher[Item]:
        return self

    def __next__(self) -> Item:
        item, error = self._queue.get()
        if item is _END:
            self._queue.put((_END, error))  # later calls end (or fail) the same way
            if error is not None:
                raise error
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __del__(self):
        self._stop.set()
