"""Archive scale: the real ChunkScheduler driving simulated GPU actors.

200 films of mixed lengths (1 to 120 minutes, scene cuts every ~20 s), chunked by the real planner
(`vidcolor.plan.chunks_for_scenes`), opened a few at a time in the archive runner's order (priority,
then the largest first), split as a streaming pass on CPU slots (a chunk is ready once its frames are
decoded), colorized by 64 actors fed by `vidcolor.executor.scheduler.ChunkScheduler` (each chunk costs
time in proportion to its frames), stitched on CPU slots as soon as a chunk and its neighbours are
done, then concatenated and muxed. Simulated time; the scheduling code is the product's.

    python -m benchmarks.scaling            # writes benchmarks/results/scaling.json

makespan is compared with the ideal bound max(total actor work / actors, the longest film's critical
path), and the actors' idle fraction is reported.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from vidcolor.executor.scheduler import ChunkScheduler, WorkItem
from vidcolor.plan import chunks_for_scenes, contributors

FPS = 24


@dataclass
class Costs:
    model_fps: float = 60.0  # frames/s one GPU actor colorizes
    split_fps: float = 300.0  # frames/s one split task decodes (streaming)
    stitch_fps: float = 150.0  # frames/s one stitch task blends + encodes
    mux_fps: float = 20000.0  # stream copy
    cpu_slots: int = 128  # CPU task slots in the cluster (split and stitch share them)


@dataclass
class SimFilm:
    index: int
    frames: int
    priority: int
    chunks: list
    opened: float = 0.0
    done: set = field(default_factory=set)
    stitched: int = 0
    stitching: set = field(default_factory=set)


def make_films(n: int, seed: int, max_chunk: int, overlap: int) -> list[SimFilm]:
    rng = random.Random(seed)
    films = []
    for k in range(n):
        minutes = rng.choice([rng.uniform(1, 10), rng.uniform(10, 60), rng.uniform(60, 120)])
        frames = int(minutes * 60 * FPS)
        cuts, pos = [0], 0
        while True:
            pos += max(FPS, int(rng.expovariate(1 / (20 * FPS))))
            if pos >= frames:
                break
            cuts.append(pos)
        films.append(SimFilm(k, frames, rng.choice([0, 0, 0, 1, 2]), chunks_for_scenes(cuts, frames, max_chunk, overlap)))
    return films


def simulate(films: list[SimFilm], actors: int, in_flight: int, costs: Costs) -> dict:
    sched = ChunkScheduler(max_attempts=3, depth=1)
    for a in range(actors):
        sched.add_worker(a)
    events: list = []  # (time, seq, kind, data)
    seq = 0

    def push(t, kind, data):
        nonlocal seq
        heapq.heappush(events, (t, seq, kind, data))
        seq += 1

    waiting = sorted(films, key=lambda f: (-f.priority, -f.frames))  # the runner's order (size as the length hint)
    open_films = 0
    free_actors = set(range(actors))
    busy_time = 0.0
    cpu_free = costs.cpu_slots
    cpu_queue: list = []  # (kind, data, duration)
    finished = {}

    def run_cpu(t, kind, data, duration):
        nonlocal cpu_free
        if cpu_free > 0:
            cpu_free -= 1
            push(t + duration, kind, data)
        else:
            cpu_queue.append((kind, data, duration))

    def release_cpu(t):
        nonlocal cpu_free
        cpu_free += 1
        if cpu_queue:
            kind, data, duration = cpu_queue.pop(0)
            cpu_free -= 1
            push(t + duration, kind, data)

    def open_next(t):
        nonlocal open_films
        while waiting and open_films < in_flight:
            film = waiting.pop(0)
            open_films += 1
            film.opened = t
            run_cpu(t, "split_done", film, film.frames / costs.split_fps)  # holds a CPU slot for the pass
            for c in film.chunks:  # streaming: a chunk is ready once its extended range is decoded
                push(t + c.ext_end / costs.split_fps, "chunk_ready", (film, c))

    def dispatch(t):
        nonlocal busy_time
        for a in sorted(free_actors):
            item = sched.next_for(a)
            if item is None:
                continue
            free_actors.discard(a)
            cost = item.cost / costs.model_fps
            busy_time += cost
            push(t + cost, "chunk_done", (a, item))

    def maybe_stitch(t, film, index):
        if index in film.stitching:
            return
        if all(c.index in film.done for c in contributors(film.chunks, index)):
            film.stitching.add(index)
            run_cpu(t, "stitch_done", film, film.chunks[index].core_frames / costs.stitch_fps)

    open_next(0.0)
    t = 0.0
    while events:
        t, _, kind, data = heapq.heappop(events)
        if kind == "chunk_ready":
            film, c = data
            sched.add(WorkItem((film.index, c.index), cost=c.ext_frames, priority=film.priority, payload=(film, c)))
        elif kind == "split_done":
            release_cpu(t)
        elif kind == "chunk_done":
            a, item = data
            sched.succeeded_on(a, item.key)
            free_actors.add(a)
            film, c = item.payload
            film.done.add(c.index)
            for n in contributors(film.chunks, c.index):
                maybe_stitch(t, film, n.index)
        elif kind == "stitch_done":
            release_cpu(t)
            data.stitched += 1
            if data.stitched == len(data.chunks):
                push(t + data.frames / costs.mux_fps, "film_done", data)
        elif kind == "film_done":
            finished[data.index] = t
            open_films -= 1
            open_next(t)
        dispatch(t)
    makespan = max(finished.values())
    work = sum(c.ext_frames for f in films for c in f.chunks) / costs.model_fps
    critical = max(f.frames / costs.split_fps + max(c.ext_frames for c in f.chunks) / costs.model_fps
                   + max(c.core_frames for c in f.chunks) / costs.stitch_fps + f.frames / costs.mux_fps for f in films)
    ideal = max(work / actors, critical)
    return {
        "makespan_s": round(makespan, 1), "ideal_s": round(ideal, 1), "makespan_over_ideal": round(makespan / ideal, 4),
        "idle_fraction": round(1 - busy_time / (actors * makespan), 4), "actors": actors,
        "chunks": sum(len(f.chunks) for f in films), "films": len(films), "films_in_flight": in_flight,
        "total_actor_work_s": round(work, 1), "longest_film_critical_path_s": round(critical, 1),
        "frames": sum(f.frames for f in films),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--films", type=int, default=200)
    ap.add_argument("--actors", type=int, default=64)
    ap.add_argument("--films-in-flight", type=int, default=16)
    ap.add_argument("--max-chunk-frames", type=int, default=240)
    ap.add_argument("--overlap-frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scaling.json"))
    args = ap.parse_args()
    t0 = time.time()
    films = make_films(args.films, args.seed, args.max_chunk_frames, args.overlap_frames)
    result = simulate(films, args.actors, args.films_in_flight, Costs())
    result.update({"costs": Costs().__dict__, "seed": args.seed, "simulation_wall_s": round(time.time() - t0, 1),
                   "targets": {"makespan_over_ideal_max": 1.10, "idle_fraction_max": 0.05}})
    result["targets_met"] = result["makespan_over_ideal"] <= 1.10 and result["idle_fraction"] < 0.05
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
