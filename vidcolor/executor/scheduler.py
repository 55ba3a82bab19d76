"""Which chunk goes to which worker next: a queue with priorities, attempts and quarantine.

Pure Python, no Ray: the actor pool asks it what to run and tells it what happened, and the unit
tests (and the scaling benchmark) drive it with simulated workers.

Order: higher ``priority`` first; within a priority the costliest item first (long chunks start
early, so the last one to finish is short); then the order items were added. A worker gets an
item that already failed on it only when it is the only live worker; when every live worker has
failed every queued item, ``needs_worker`` asks the pool for a fresh one. An item that fails
``max_attempts`` times is quarantined and never handed out again.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WorkItem:
    key: Hashable  # unique among the scheduler's items, e.g. (run id, chunk index)
    cost: float = 1.0  # e.g. frames: what the order by size compares
    priority: int = 0
    payload: Any = field(default=None, compare=False)


class ChunkScheduler:
    def __init__(self, max_attempts: int = 3, depth: int = 2):
        if max_attempts < 1 or depth < 1:
            raise ValueError("max_attempts and depth must be at least 1")
        self.max_attempts = max_attempts
        self.depth = depth  # items in flight per worker (one computing, one in I/O)
        self._heap: list[tuple[int, float, int, Hashable]] = []
        self._queued: dict[Hashable, WorkItem] = {}
        self._order = itertools.count()
        self.workers: set[Hashable] = set()
        self.inflight: dict[Hashable, set[Hashable]] = {}  # worker -> item keys
        self._running: dict[Hashable, WorkItem] = {}
        self.attempts: dict[Hashable, int] = {}
        self.failed_on: dict[Hashable, set[Hashable]] = {}
        self.last_error: dict[Hashable, str] = {}
        self.quarantined: dict[Hashable, str] = {}
        self.succeeded: list[Hashable] = []

    # --- items -----------------------------------------------------------------------------
    def add(self, item: WorkItem) -> None:
        if item.key in self._queued or item.key in self._running:
            raise ValueError(f"item {item.key!r} is already scheduled")
        self._queued[item.key] = item
        heapq.heappush(self._heap, (-item.priority, -item.cost, next(self._order), item.key))

    @property
    def queued(self) -> int:
        return len(self._queued)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def finished(self) -> bool:
        return not self._queued and not self._running

    # --- workers ---------------------------------------------------------------------------
    def add_worker(self, worker: Hashable) -> None:
        self.workers.add(worker)
        self.inflight.setdefault(worker, set())

    def remove_worker(self, worker: Hashable) -> None:
        """A worker is gone: it gets nothing more. Its items in flight stay running until the
        caller reports each one's outcome (``failed``, for a dead worker)."""
        self.workers.discard(worker)

    def has_room(self, worker: Hashable) -> bool:
        return worker in self.workers and len(self.inflight[worker]) < self.depth

    def next_for(self, worker: Hashable) -> WorkItem | None:
        """The best queued item this worker may take, now marked as running on it; None when it
        has no room or nothing suits it."""
        if not self.has_room(worker):
            return None
        skipped = []
        chosen = None
        while self._heap:
            entry = heapq.heappop(self._heap)
            key = entry[3]
            if key not in self._queued:
                continue  # a stale entry
            if worker in self.failed_on.get(key, ()) and len(self.workers) > 1:
                skipped.append(entry)
                continue
            chosen = self._queued.pop(key)
            break
        for entry in skipped:
            heapq.heappush(self._heap, entry)
        if chosen is not None:
            self._running[chosen.key] = chosen
            self.inflight[worker].add(chosen.key)
        return chosen

    def needs_worker(self) -> bool:
        """Work is queued, nothing runs, and no live worker may take any of it: every queued item
        failed on every live worker. The pool should start a fresh worker."""
        if not self._queued or self._running:
            return False
        return all(self.workers <= self.failed_on.get(k, set()) for k in self._queued)

    # --- outcomes --------------------------------------------------------------------------
    def succeeded_on(self, worker: Hashable, key: Hashable) -> WorkItem:
        item = self._release(worker, key)
        self.succeeded.append(key)
        return item

    def failed(self, worker: Hashable, key: Hashable, error: str) -> bool:
        """Record a failure; True when the item is now quarantined, else it is queued again."""
        item = self._release(worker, key)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        self.failed_on.setdefault(key, set()).add(worker)
        self.last_error[key] = error
        if self.attempts[key] >= self.max_attempts:
            self.quarantined[key] = error
            return True
        self.add(item)
        return False

    def quarantine(self, worker: Hashable, key: Hashable, error: str) -> WorkItem:
        """A failure no retry can mend: quarantine at once."""
        item = self._release(worker, key)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        self.last_error[key] = self.quarantined[key] = error
        return item

    def drop(self, keep) -> list[WorkItem]:
        """Remove the queued items ``keep(item)`` rejects (e.g. a failed film's); returns them."""
        dropped = [item for item in self._queued.values() if not keep(item)]
        for item in dropped:
            del self._queued[item.key]  # its heap entry goes stale
        return dropped

    def running_item(self, key: Hashable) -> WorkItem:
        return self._running[key]

    def _release(self, worker: Hashable, key: Hashable) -> WorkItem:
        item = self._running.pop(key)
        self.inflight.get(worker, set()).discard(key)
        return item
