"""The Ray-free chunk scheduler: order, attempts, quarantine, worker affinity (no Ray here)."""

from __future__ import annotations

import random

import pytest

from vidcolor.executor.scheduler import ChunkScheduler, WorkItem


def drain(s: ChunkScheduler, worker="w") -> list:
    keys = []
    while (item := s.next_for(worker)) is not None:
        keys.append(item.key)
        s.succeeded_on(worker, item.key)
    return keys


def test_higher_priority_first_then_longest_then_order_added():
    s = ChunkScheduler(depth=1)
    s.add_worker("w")
    for key, cost, prio in [("a", 10, 0), ("b", 30, 0), ("c", 5, 1), ("d", 30, 0), ("e", 1, 2)]:
        s.add(WorkItem(key, cost, prio))
    assert drain(s) == ["e", "c", "b", "d", "a"]
    assert s.finished


def test_depth_limits_items_in_flight_per_worker():
    s = ChunkScheduler(depth=2)
    s.add_worker("w")
    for k in range(5):
        s.add(WorkItem(k))
    got = [s.next_for("w"), s.next_for("w"), s.next_for("w")]
    assert got[2] is None and s.running == 2 and s.queued == 3
    s.succeeded_on("w", got[0].key)
    assert s.next_for("w") is not None


def test_failure_requeues_on_another_worker_and_quarantines_after_max_attempts():
    s = ChunkScheduler(max_attempts=3, depth=1)
    s.add_worker("a")
    s.add_worker("b")
    s.add(WorkItem("x"))
    assert s.next_for("a").key == "x"
    assert s.failed("a", "x", "boom 1") is False
    assert s.next_for("a") is None  # it failed on a, and b is alive
    assert s.next_for("b").key == "x"
    assert s.failed("b", "x", "boom 2") is False
    assert s.needs_worker()  # every live worker has failed it
    s.add_worker("c")
    assert not s.needs_worker()
    assert s.next_for("c").key == "x"
    assert s.failed("c", "x", "boom 3") is True
    assert s.quarantined == {"x": "boom 3"} and s.attempts["x"] == 3
    assert s.finished and s.next_for("a") is None


def test_a_lone_worker_retries_what_failed_on_it():
    s = ChunkScheduler(max_attempts=2, depth=1)
    s.add_worker("only")
    s.add(WorkItem("x"))
    s.next_for("only")
    s.failed("only", "x", "once")
    assert s.next_for("only").key == "x"


def test_dead_worker_gets_nothing_and_its_items_can_be_failed():
    s = ChunkScheduler(max_attempts=3, depth=2)
    for w in ("a", "b"):
        s.add_worker(w)
    for k in range(4):
        s.add(WorkItem(k, cost=10 - k))
    taken = [s.next_for("a").key, s.next_for("a").key]
    s.remove_worker("a")
    assert s.next_for("a") is None
    for k in taken:
        s.failed("a", k, "worker died")
    assert sorted(drain(s, "b")) == [0, 1, 2, 3]
    assert s.finished and not s.quarantined


def test_duplicate_key_is_refused():
    s = ChunkScheduler()
    s.add(WorkItem("k"))
    with pytest.raises(ValueError):
        s.add(WorkItem("k"))


def test_random_failures_every_item_ends_done_or_quarantined():
    rng = random.Random(7)
    s = ChunkScheduler(max_attempts=3, depth=2)
    workers = [f"w{i}" for i in range(4)]
    for w in workers:
        s.add_worker(w)
    for k in range(200):
        s.add(WorkItem(k, cost=rng.randint(1, 100), priority=rng.randint(0, 2)))
    running = []
    while not s.finished:
        for w in workers:
            while (item := s.next_for(w)) is not None:
                running.append((w, item.key))
        if not running and s.needs_worker():
            workers.append(f"w{len(workers)}")
            s.add_worker(workers[-1])
            continue
        w, k = running.pop(rng.randrange(len(running)))
        if rng.random() < 0.2:
            s.failed(w, k, "flaky")
        else:
            s.succeeded_on(w, k)
    assert set(s.succeeded) | set(s.quarantined) == set(range(200))
    assert not set(s.succeeded) & set(s.quarantined)
    assert all(s.attempts[k] == 3 for k in s.quarantined)
