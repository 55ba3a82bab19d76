"""Archive batches: what a batch source lists, per-film settings, the batch record and status,
and a real batch through the CLI on the embedded default."""

from __future__ import annotations

import json
import time

import pytest

from conftest import run_cli
from vidcolor.archive import BatchRecord, FilmEntry, batch_status, film_requests, list_source
from vidcolor.errors import BadInputError
from vidcolor.settings import ChromaSettings, EncodeSettings
from vidcolor.state import RunLayout
from vidcolor.store import open_store


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_lists_video_files_only(tmp_path):
    for name in ("b.mkv", "a.mp4", "notes.txt", ".hidden.mp4", "c.MOV"):
        touch(tmp_path / "films" / name)
    rows = list_source(str(tmp_path / "films"))
    assert [r["input"].rsplit("/", 1)[-1] for r in rows] == ["a.mp4", "b.mkv", "c.MOV"]


def test_csv_manifest_paths_priorities_and_settings(tmp_path):
    (tmp_path / "m.csv").write_text("input,output,priority,codec,render_size\n"
                                    "reel1.mp4,,2,ffv1,\n"
                                    "/abs/reel2.mov,/out/two.mkv,,,192\n")
    rows = list_source(str(tmp_path / "m.csv"))
    films = film_requests(rows, str(tmp_path / "out"), ".mkv", ChromaSettings(render_size=256), EncodeSettings())
    assert films[0].input_uri == str(tmp_path / "reel1.mp4") and films[0].priority == 2
    assert films[0].output_uri == str(tmp_path / "out" / "reel1-colour.mkv") and films[0].encode.codec == "ffv1"
    assert films[0].chroma.render_size == 256
    assert films[1].output_uri == "/out/two.mkv" and films[1].priority == 0 and films[1].chroma.render_size == 192


def test_parquet_manifest_and_text_list(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"input": ["x.mp4", "s3://b/y.mp4"], "priority": [1, 5]}), tmp_path / "m.parquet")
    rows = list_source(str(tmp_path / "m.parquet"))
    assert [r["input"] for r in rows] == [str(tmp_path / "x.mp4"), "s3://b/y.mp4"] and rows[1]["priority"] == 5
    (tmp_path / "list.txt").write_text("# reels\nx.mp4\n\n/abs/z.mp4\n")
    assert [r["input"] for r in list_source(str(tmp_path / "list.txt"))] == [str(tmp_path / "x.mp4"), "/abs/z.mp4"]
    assert [r["input"] for r in list_source(["a.mp4", "b.mp4"])] == ["a.mp4", "b.mp4"]


@pytest.mark.parametrize("content, message", [
    ("input,colour\na.mp4,red\n", "unknown: colour"),
    ("file\na.mp4\n", "with 'input'"),
    ("input,priority\na.mp4,high\n", "priority 'high' is not a whole number"),
    ("input,output\na.mp4,o.mp4\nb.mp4,o.mp4\n", "two films would be written here"),
])
def test_bad_manifests_are_one_line(tmp_path, content, message):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(BadInputError, match=message) as e:
        film_requests(list_source(str(tmp_path / "m.csv")), str(tmp_path), ".mp4", ChromaSettings(), EncodeSettings())
    assert "\n" not in str(e.value)


def test_missing_source_and_empty_folder(tmp_path):
    with pytest.raises(BadInputError, match="no such file or folder"):
        list_source(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="holds no video files"):
        list_source(str(tmp_path / "empty"))


def test_status_reads_progress_from_the_run_state(tmp_path):
    store = open_store(str(tmp_path / "store"))
    layout = RunLayout("r1")
    chunks = [{"index": i, "scene": 0, "core_start": 10 * i, "core_end": 10 * i + 10, "ext_start": 10 * i,
               "ext_end": 10 * i + 10} for i in range(4)]
    store.put_json(layout.plan, {"version": 1, "total_frames": 40, "chunks": chunks})
    for i in (0, 2):
        store.put_json(layout.chunk(i, "done.json"), {"chunk": i, "frames": 10, "sha256": "x"})
    rec = BatchRecord("b1", "films/", [FilmEntry("a.mp4", "o/a.mp4", 1, run_id="r1", status="running"),
                                       FilmEntry("b.mp4", "o/b.mp4", 0, status="failed", error="b.mp4: broken")],
                      started_at=time.time() - 10)
    rec.save(store)
    [b] = batch_status(store)
    assert b["films"][0]["frames_done"] == 20 and b["films"][0]["frames_total"] == 40
    assert b["films_failed"] == 1 and b["status"] == "running" and b["frames_total"] is None
    rec.pid = 2 ** 22 + 12345  # a driver that is gone: the batch was interrupted
    rec.save(store)
    assert batch_status(store)[0]["status"] == "interrupted"


@pytest.mark.slow
def test_batch_of_three_films_report_rerun_and_status(tmp_path):
    import pyarrow.parquet as pq

    from vidcolor.media.synth import make_test_film

    films = tmp_path / "films"
    films.mkdir()
    for name, scenes in (("a", [20, 14]), ("b", [30]), ("c", [12, 12, 10])):
        make_test_film(films / f"{name}.mp4", scenes, size=(160, 120))
    out = tmp_path / "out"
    out.mkdir()
    args = ["batch", films, "-o", out, "--store", tmp_path / "store", "--model", "test:luma-ramp", "--render-size", "64",
            "--max-chunk-frames", "12", "--overlap-frames", "2", "--workers", "2", "--films-in-flight", "2"]
    first = run_cli(args)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = pq.read_table(out / "vidcolor-report.parquet").to_pylist()
    assert sorted(r["status"] for r in rows) == ["succeeded"] * 3
    assert {r["input"].rsplit("/", 1)[-1]: r["frames"] for r in rows} == {"a.mp4": 34, "b.mp4": 30, "c.mp4": 34}
    assert all(r["chunks_colorized"] >= 3 and r["actor_seconds"] > 0 and r["wall_s"] > 0 for r in rows)
    assert sorted(p.name for p in out.iterdir()) == ["a-colour.mp4", "b-colour.mp4", "c-colour.mp4", "vidcolor-report.parquet"]

    second = run_cli(args)
    assert second.returncode == 0, second.stderr[-3000:]
    rows = pq.read_table(out / "vidcolor-report.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["skipped"] * 3 and sum(r["chunks_colorized"] for r in rows) == 0

    status = run_cli(["status", tmp_path / "store", "--json"])
    assert status.returncode == 0, status.stderr
    [batch] = json.loads(status.stdout)["batches"]
    assert batch["films_done"] == 3 and batch["status"] == "succeeded"
    assert batch["frames_done"] == batch["frames_total"] == 98
