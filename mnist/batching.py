"""One thread of its own that handles, in batches, what many threads hand it: the micro-batched forward
passes (mnist.predict) and the group-committed saves (mnist.store) both run on one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class BatchWorker(Generic[T]):
    """Items `put` by any thread are handed to `handle` on one worker thread, in batches.

    A batch is everything queued since the last one, up to `limit` counted by `size` (a single item may
    be bigger), after waiting up to `gather` seconds for more once something is queued (0: take what is
    there). With one item at a time nothing waits; under load, whatever arrived while the last batch was
    handled goes together. The thread starts with the first item and ends after `idle` seconds without
    work (the next item starts another). `handle` answers its items itself and should not raise.
    """

    def __init__(
        self,
        handle: Callable[[list[T]], None],
        *,
        name: str,
        limit: int = 256,
        size: Callable[[T], int] = lambda _item: 1,
        gather: float = 0.0,
        idle: float = 5.0,
    ) -> None:
        self.handle, self.name, self.limit, self.size, self.gather, self.idle = handle, name, limit, size, gather, idle
        self._queue: list[T] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, item: T) -> None:
        with self._ready:
            self._queue.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._ready.notify()

    def _take(self) -> list[T] | None:
        """The next batch, or None (and the thread ends) after `idle` seconds with nothing queued."""
        with self._ready:
            if not self._queue and not self._ready.wait(self.idle) and not self._queue:
                self._thread = None
                return None
            if self.gather > 0:
                deadline = time.monotonic() + self.gather
                while sum(map(self.size, self._queue)) < self.limit and self._ready.wait(
                    max(0.0, deadline - time.monotonic())
                ):
                    pass
            taken, count = 0, 0
            while taken < len(self._queue) and (taken == 0 or count + self.size(self._queue[taken]) <= self.limit):
                count += self.size(self._queue[taken])
                taken += 1
            batch, self._queue = self._queue[:taken], self._queue[taken:]
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self.handle(batch)
            except Exception:  # a bug in handle: logged, and the thread goes on with the next batch
                log.exception("%s: a batch was not handled", self.name)
