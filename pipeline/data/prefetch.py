"""An iterator's items made ahead in a background thread, so that reading shards (GZIP inflation, parsing)
overlaps the training step: zlib releases the GIL while it inflates, so the thread gets real time on a
multi-core host."""
from __future__ import annotations

import queue
import threading
from typing import Generic, Iterator, TypeVar

Item = TypeVar("Item")
_END = object()


def _put(slots: queue.Queue, stop: threading.Event, entry) -> bool:
    """Put `entry` unless `stop` is set first; whether it went in."""
    while not stop.is_set():
        try:
            slots.put(entry, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _fill(items: Iterator, slots: queue.Queue, stop: threading.Event) -> None:
    """The thread's work: hold no reference to the Prefetcher, so that dropping it stops the thread."""
    try:
        for item in items:
            if not _put(slots, stop, (item, None)):
                return
        _put(slots, stop, (_END, None))
    except Exception as err:  # handed to the consumer, which raises it
        _put(slots, stop, (_END, err))


class Prefetcher(Generic[Item]):
    """Iterate `items` in a daemon thread, `depth` items ahead; an error there is raised here, at its place in
    the sequence. `close` (or dropping the Prefetcher) stops the thread."""

    def __init__(self, items: Iterator[Item], depth: int = 4):
        self._slots: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_fill, args=(items, self._slots, self._stop), daemon=True,
                                        name="soupgan-prefetch")
        self._thread.start()

    def __iter__(self) -> Prefetcher[Item]:
        return self

    def __next__(self) -> Item:
        item, error = self._slots.get()
        if item is _END:
            self._slots.put((_END, error))  # later calls end (or fail) the same way
            if error is not None:
                raise error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the thread and wait for it (it stops within one item and 0.1 s)."""
        self._stop.set()
        self._thread.join()

    def __del__(self):
        self._stop.set()
