"""The request side of the spool's group commit: lines gathered per event loop, handed over in batches.

Each request's encoded event goes into the current batch of its event loop and
the request awaits its own future. The batch is handed to the writer thread at
the end of the loop iteration in which it was opened if the writer is idle, or
the moment the writer reports the previous batch durable; so while one commit
runs, every request that arrives meanwhile joins the next one. The writer
thread sees one bytes object per batch and answers once per batch (one
``call_soon_threadsafe``), and the futures are resolved here, on their loop.

Compared with one queue item per event (what the spool did before), the writer
thread no longer touches each event in Python: it held the GIL for that, which
the event loop then waited for (the writer was ~10 % of the GIL's time under
load). Measured in-process (64 concurrent appenders, uvloop): ~6.3 → ~5.3 µs
of CPU per event, encoding included.

One batcher per event loop and no lock: everything but :meth:`done_threadsafe`
runs on the batcher's loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import NamedTuple


class Batch(NamedTuple):
    data: bytes  # the batch's JSON lines, joined
    events: int
    done: Callable[[Exception | None], None]  # the writer's answer: None once durable, else the error


class LoopBatcher:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        hand_over: Callable[[Batch], None],
        batch_events: int,
        on_settled: Callable[[int], None],
    ) -> None:
        self.loop = loop
        self._hand_over = hand_over
        self._batch_events = max(1, batch_events)
        self._on_settled = on_settled
        self._lines: list[bytes] = []
        self._futures: list[asyncio.Future[None]] = []
        # The futures of the batches handed over and not answered yet, oldest first
        # (the writer answers in the order it was handed the batches).
        self._in_flight: deque[list[asyncio.Future[None]]] = deque()
        self._scheduled = False

    def add(self, line: bytes) -> asyncio.Future[None]:
        """Queue one encoded event; the future resolves once it is on disk (or fails with the writer's error)."""
        fut = self.loop.create_future()
        self._lines.append(line)
        self._futures.append(fut)
        if len(self._lines) >= self._batch_events:
            self._flush()
        elif not self._in_flight and not self._scheduled:
            # The writer is idle: hand over at the end of this iteration, so that the requests
            # this iteration runs share the batch.
            self._scheduled = True
            self.loop.call_soon(self._flush_scheduled)
        return fut

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        if not self._in_flight:
            self._flush()

    def _flush(self) -> None:
        if not self._lines:
            return
        lines, futures = self._lines, self._futures
        self._lines, self._futures = [], []
        self._in_flight.append(futures)
        self._hand_over(Batch(b"".join(lines), len(lines), self.done_threadsafe))

    def done_threadsafe(self, error: Exception | None) -> None:
        """The writer's answer for the oldest batch handed over (called from the writer thread)."""
        try:
            self.loop.call_soon_threadsafe(self._done, error)
        except RuntimeError:
            pass  # the loop is closed: nobody awaits these futures any more

    def _done(self, error: Exception | None) -> None:
        futures = self._in_flight.popleft()
        self._on_settled(len(futures))
        for fut in futures:
            if fut.done():  # the awaiting request was cancelled
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)
        if not self._in_flight:
            self._flush()  # what arrived during that commit
