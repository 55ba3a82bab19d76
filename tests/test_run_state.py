"""Typed, versioned run state: files of the previous (unnumbered) format are read, a newer format
is refused with one line, a malformed or foreign plan is rebuilt, never trusted."""

from __future__ import annotations

import json

import pytest

from vidcolor.plan import Chunk, Plan, PlanSettings
from vidcolor.state import ChunkMarker, RunRecord, RunStateError, SegmentMarker


def legacy_run_json() -> dict:
    # as vidcolor wrote run.json before formats were numbered
    return {"run_id": "abc", "status": "succeeded", "quarantined": {"3": "boom"}, "invocations": [
        {"started_at": 1.0, "pid": 7, "chunks_colorized": [0, 1], "chunks_reused": [], "input": "a.mp4",
         "output": "b.mp4", "model": "m", "encode_key": "k", "chroma": {"render_size": 256},
         "timings": {"split": 1.5}, "finished_at": 2.0, "status": "succeeded", "wall_seconds": 1.0}]}


def test_previous_run_json_is_read_with_every_field():
    rec = RunRecord.from_dict(legacy_run_json(), "runs/abc/run.json")
    assert rec.version == 1 and rec.status == "succeeded" and rec.quarantined == {"3": "boom"}
    inv = rec.current
    assert (inv.pid, inv.chunks_colorized, inv.timings, inv.chroma) == (7, [0, 1], {"split": 1.5}, {"render_size": 256})
    again = RunRecord.from_dict(json.loads(json.dumps(rec.to_dict())), "k")
    assert again == rec and rec.to_dict()["version"] == 1


@pytest.mark.parametrize("cls", [ChunkMarker, SegmentMarker])
def test_markers_old_read_newer_refused(cls):
    old = {"chunk": 2, "frames": 10, "sha256": "ab" * 32}
    assert cls.from_dict(old, "m.json").frames == 10
    with pytest.raises(RunStateError, match=r"m.json: was written by a newer vidcolor \(format 5"):
        cls.from_dict({**old, "version": 5}, "m.json")


def test_newer_run_json_is_refused_with_one_line():
    with pytest.raises(RunStateError) as e:
        RunRecord.from_dict({**legacy_run_json(), "version": 2}, "runs/abc/run.json")
    assert "\n" not in str(e.value) and "runs/abc/run.json" in str(e.value)


def make_plan(total=20) -> Plan:
    from vidcolor.media.probe import VideoInfo

    info = VideoInfo("x.mp4", "mov,mp4", 64, 48, "25/1", "25/1", "1/25", total, 0.8, 0.0, "yuv420p", "h264", False,
                     "bt601", None, None, None, 0, 0, 0, (), False, None)
    chunks = (Chunk(0, 0, 0, 10, 0, 12), Chunk(1, 0, 10, total, 8, total))
    return Plan("abc", info, total, (64, 64), PlanSettings(10, 2, 27.0, 8), (0,), chunks, 1.0)


def test_plan_round_trip_and_tiling_check():
    plan = make_plan()
    doc = json.loads(json.dumps(plan.to_dict()))
    assert Plan.from_dict(doc) == plan
    doc["total_frames"] = 25  # the chunks no longer cover the film
    with pytest.raises(ValueError, match="cover 20 frames"):
        Plan.from_dict(doc)


@pytest.mark.slow
def test_run_state_of_the_previous_version_resumes_and_a_newer_one_is_refused(pipeline, film_mp4, tmp_path):
    from media_helpers import video_frame_hashes

    store_dir = tmp_path / "store"
    first = pipeline(film_mp4, tmp_path / "a.mp4", store_dir)
    run_dir = store_dir / "runs" / first["run_id"]
    # make the state look as the previous vidcolor wrote it: no format numbers but plan.json's
    for path in run_dir.rglob("*.json"):
        doc = json.loads(path.read_text())
        if path.name != "plan.json":
            doc.pop("version", None)
        path.write_text(json.dumps(doc))
    second = pipeline(film_mp4, tmp_path / "b.mp4", store_dir)
    record = json.loads((run_dir / "run.json").read_text())
    assert second["run_id"] == first["run_id"]
    assert record["invocations"][-1]["chunks_colorized"] == [] and record["invocations"][-1]["chunks_reused"]
    assert video_frame_hashes(tmp_path / "a.mp4") == video_frame_hashes(tmp_path / "b.mp4")

    plan = json.loads((run_dir / "plan.json").read_text())
    (run_dir / "plan.json").write_text(json.dumps({**plan, "version": 9}))
    with pytest.raises(RunStateError, match="plan.json: was written by a newer vidcolor"):
        pipeline(film_mp4, tmp_path / "c.mp4", store_dir)
    assert not (tmp_path / "c.mp4").exists()

    (run_dir / "plan.json").write_text('{"version": 1, "chunks": "not a table"')  # malformed: split again
    pipeline(film_mp4, tmp_path / "d.mp4", store_dir)
    assert json.loads((run_dir / "plan.json").read_text())["chunks"] == plan["chunks"]
