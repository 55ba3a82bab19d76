"""Run state that fails verification is rebuilt, never trusted and never a traceback; what a
killed invocation left (partial output, temp folders, store temp files, an open invocation, a
stale quarantine entry) is cleaned up by the next run of the same job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest
from conftest import SCENES

from vidcolor.job import prepare_job
from vidcolor.run import Run
from vidcolor.settings import ChromaSettings, EncodeSettings
from vidcolor.state import array_digest, unpack_array

TOTAL = sum(SCENES)


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def test_next_invocation_closes_a_killed_one_and_removes_its_leftovers(film_mp4, tmp_path):
    out, store_dir = tmp_path / "out.mp4", tmp_path / "store"
    job = prepare_job(str(film_mp4), str(out), ChromaSettings(model="test:luma-ramp"), EncodeSettings(), str(store_dir))
    run_dir = store_dir / "runs" / job.run_id
    run_dir.mkdir(parents=True)
    pid = _dead_pid()
    (run_dir / "run.json").write_text(json.dumps({"version": 1, "run_id": job.run_id, "status": "running",
                                                  "invocations": [{"started_at": 1.0, "pid": pid}]}))
    partial = tmp_path / f".out.mp4.vidcolor-partial-{pid}-0a1b2c3d.mp4"
    partial.write_bytes(b"")  # what a kill during mux leaves
    work = tempfile.mkdtemp(prefix=job.layout.temp_prefix("final"))
    segment = tempfile.mkstemp(prefix=job.layout.temp_prefix("segment"))[1]
    (run_dir / "chunks" / "00001").mkdir(parents=True)
    store_tmp = run_dir / "chunks" / "00001" / f".chroma.npz.tmp-{pid}-0a1b2c3d.npz"
    store_tmp.write_bytes(b"half")
    other = tmp_path / ".other.mp4.vidcolor-partial-1-00000000.mp4"  # another output's: not ours
    other.write_bytes(b"")

    run = Run(job)
    run.start()
    try:
        record = json.loads((run_dir / "run.json").read_text())
        first, current = record["invocations"]
        assert first["status"] == "killed" and "without closing" in first["error"]
        assert current["status"] is None and current["pid"] == os.getpid()
        assert not partial.exists() and not os.path.exists(work) and not os.path.exists(segment)
        assert not store_tmp.exists() and other.exists()
        # both leases are held, in the store
        assert list((run_dir / "lease").iterdir())
        assert len(list((store_dir / "leases").iterdir())) == 1
    finally:
        run.fail("test over")
    assert json.loads((run_dir / "run.json").read_text())["invocations"][-1]["status"] == "failed"


@pytest.mark.slow
def test_damaged_run_state_is_rebuilt_not_trusted(pipeline, film_mkv, tmp_path, capfd):
    from media_helpers import video_frame_hashes

    store_dir = tmp_path / "store"
    kw = dict(codec="ffv1", max_chunk_frames=16, overlap_frames=3)
    first = pipeline(film_mkv, tmp_path / "a.mkv", store_dir, **kw)
    want = video_frame_hashes(tmp_path / "a.mkv")
    run_dir = store_dir / "runs" / first["run_id"]
    plan = json.loads((run_dir / "plan.json").read_text())
    assert all(c["source_digest"] for c in plan["chunks"])

    def rerun(name):
        pipeline(film_mkv, tmp_path / name, store_dir, **kw)
        assert video_frame_hashes(tmp_path / name) == want, name
        return json.loads((run_dir / "run.json").read_text())

    # a damaged chunk source, its chunk to be colorized again: that chunk is split again, not quarantined
    source = run_dir / "chunks" / "00001" / "source.npz"
    source.write_bytes(source.read_bytes()[:100])
    (run_dir / "chunks" / "00001" / "done.json").unlink()
    record = rerun("b.mkv")
    assert record["invocations"][-1]["chunks_colorized"] == [1] and record["quarantined"] == {}
    assert "source in the store is damaged; splitting those chunks again" in capfd.readouterr().err
    assert array_digest(unpack_array(source.read_bytes(), "luma")) == plan["chunks"][1]["source_digest"]

    # a truncated frames.parquet: split again (chunks reused)
    frames = run_dir / "frames.parquet"
    frames.write_bytes(frames.read_bytes()[: frames.stat().st_size // 2])
    record = rerun("c.mkv")
    assert record["invocations"][-1]["timings"].get("split") and record["invocations"][-1]["chunks_colorized"] == []

    # an edited plan (a film cut short): its checksum fails, split again; a stale quarantine entry goes
    short = {**plan, "total_frames": plan["chunks"][0]["core_end"], "chunks": plan["chunks"][:1]}
    (run_dir / "plan.json").write_text(json.dumps(short))
    state = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**state, "quarantined": {"2": "boom"}}))
    record = rerun("d.mkv")
    assert json.loads((run_dir / "plan.json").read_text())["total_frames"] == TOTAL
    assert record["quarantined"] == {}
