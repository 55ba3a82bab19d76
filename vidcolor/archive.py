"""An archive batch as data: which films (from a manifest, a folder, an s3:// prefix or a list),
where each goes, the batch's record in the store, its Parquet report, and its progress read back
from the run state alone (``vidcolor status``)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from vidcolor.errors import BadInputError
from vidcolor.lease import process_exists
from vidcolor.settings import ChromaSettings, EncodeSettings
from vidcolor.state import RunLayout, check_version
from vidcolor.store import ObjectStore, bucket_store, is_s3_uri, split_s3_uri

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".mxf", ".webm", ".wmv", ".dv")
BATCH_FORMAT = 1
# manifest columns: the film, where it goes, its priority, and settings that may differ per film
MANIFEST_COLUMNS = ("input", "output", "priority", "codec", "crf", "render_size", "max_chunk_frames",
                    "overlap_frames", "model")


@dataclass(frozen=True)
class FilmRequest:
    input_uri: str
    output_uri: str
    priority: int = 0
    chroma: ChromaSettings = ChromaSettings()
    encode: EncodeSettings = EncodeSettings()


def output_for(input_uri: str, output_prefix: str, suffix: str = ".mp4") -> str:
    """Where a batch writes a film: OUTPUT_PREFIX/<input stem>-colour<suffix>, local or s3://."""
    stem = Path(input_uri.rstrip("/").rsplit("/", 1)[-1]).stem
    name = f"{stem}-colour{suffix}"
    if is_s3_uri(output_prefix):
        return output_prefix.rstrip("/") + "/" + name
    return str(Path(output_prefix) / name)


def _is_video_name(name: str) -> bool:
    return Path(name).suffix.lower() in VIDEO_SUFFIXES


def list_source(source: list[str] | str) -> list[dict]:
    """Rows {input, and optionally the other MANIFEST_COLUMNS} of a batch source: several films
    given one by one, a manifest (.csv / .parquet), a folder, an s3:// prefix, or a text list."""
    items = [source] if isinstance(source, str) else list(source)
    if not items:
        raise BadInputError("SOURCE", "no films given")
    if len(items) > 1:
        return [{"input": s} for s in items]
    src = items[0]
    if is_s3_uri(src):
        if _is_video_name(src):
            return [{"input": src}]
        bucket, prefix = split_s3_uri(src)
        store = bucket_store(src)
        keys = [k for k in store.list(prefix.rstrip("/") + "/" if prefix else "") if _is_video_name(k)]
        if not keys:
            raise BadInputError(src, "no video files under this prefix")
        return [{"input": f"s3://{bucket}/{k}"} for k in keys]
    path = Path(src)
    if path.is_dir():
        films = sorted(p for p in path.iterdir() if p.is_file() and _is_video_name(p.name) and not p.name.startswith("."))
        if not films:
            raise BadInputError(src, f"folder holds no video files ({', '.join(VIDEO_SUFFIXES)})")
        return [{"input": str(p)} for p in films]
    if not path.is_file():
        raise BadInputError(src, "no such file or folder")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet"):
        return _manifest_rows(path)
    if _is_video_name(path.name):
        return [{"input": src}]
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return [{"input": _relative_to(path, ln)} for ln in lines if ln and not ln.startswith("#")]


def _relative_to(manifest: Path, uri: str) -> str:
    """Paths in a manifest or list are relative to the file's folder."""
    if is_s3_uri(uri) or os.path.isabs(uri):
        return uri
    return str(manifest.parent / uri)


def _manifest_rows(path: Path) -> list[dict]:
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        else:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
    except Exception as e:  # noqa: BLE001 - any parse failure is one line about the manifest
        raise BadInputError(str(path), f"not a readable manifest ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not rows:
        raise BadInputError(str(path), "manifest lists no films")
    unknown = sorted(set(rows[0]) - set(MANIFEST_COLUMNS))
    if unknown or "input" not in rows[0]:
        raise BadInputError(str(path), f"manifest columns must be among {', '.join(MANIFEST_COLUMNS)} with 'input' "
                                       f"(unknown: {', '.join(unknown) or 'none'})")
    out = []
    for k, row in enumerate(rows, start=2):
        row = {c: v for c, v in row.items() if v not in (None, "")}
        if "input" not in row:
            raise BadInputError(str(path), f"row {k}: no input")
        row["input"] = _relative_to(path, str(row["input"]))
        if "output" in row:
            row["output"] = _relative_to(path, str(row["output"]))
        out.append(row)
    return out


_INT_SETTINGS = ("priority", "crf", "render_size", "max_chunk_frames", "overlap_frames")


def film_requests(rows: list[dict], output_prefix: str, suffix: str, chroma: ChromaSettings,
                  encode: EncodeSettings) -> list[FilmRequest]:
    """The batch's films with their own settings (a manifest row's settings override the batch's)."""
    films, outputs = [], {}
    for row in rows:
        for name in _INT_SETTINGS:
            if name in row:
                try:
                    row[name] = int(row[name])
                except (TypeError, ValueError):
                    raise BadInputError(row["input"], f"{name} {row[name]!r} is not a whole number") from None
        film_chroma = replace(chroma, **{k: row[k] for k in ("render_size", "max_chunk_frames", "overlap_frames", "model")
                                         if k in row})
        film_encode = replace(encode, **{k: row[k] for k in ("codec", "crf") if k in row})
        output = row.get("output") or output_for(row["input"], output_prefix, suffix)
        if output in outputs:
            raise BadInputError(output, f"two films would be written here ({outputs[output]} and {row['input']})")
        outputs[output] = row["input"]
        films.append(FilmRequest(row["input"], output, int(row.get("priority", 0)), film_chroma, film_encode))
    return films


def batch_id(films: list[FilmRequest]) -> str:
    blob = json.dumps([[f.input_uri, f.output_uri, f.priority, asdict(f.chroma), asdict(f.encode)] for f in films],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --- the batch's record in the store ----------------------------------------------------------

@dataclass
class FilmEntry:
    input: str
    output: str
    priority: int = 0
    run_id: str | None = None
    status: str = "pending"  # pending, running, succeeded, skipped, failed
    error: str | None = None
    frames: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    actor_seconds: float = 0.0
    chunks_colorized: int = 0
    chunks_reused: int = 0


@dataclass
class BatchRecord:
    """batches/<id>/batch.json: the films of one batch and where each stands (driver-written)."""

    batch_id: str
    source: str
    films: list[FilmEntry]
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    status: str = "running"
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    version: int = BATCH_FORMAT

    @staticmethod
    def key(batch: str) -> str:
        return f"batches/{batch}/batch.json"

    def save(self, store: ObjectStore) -> None:
        store.put_json(self.key(self.batch_id), asdict(self))

    @classmethod
    def load(cls, store: ObjectStore, batch: str) -> "BatchRecord":
        key = cls.key(batch)
        doc = store.get_json(key)
        check_version(doc, key, BATCH_FORMAT)
        films = [FilmEntry(**f) for f in doc.pop("films")]
        return cls(films=films, **{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})


REPORT_COLUMNS = ("input", "output", "run_id", "status", "frames", "duration_s", "wall_s", "actor_seconds",
                  "chunks_colorized", "chunks_reused", "quality", "error")


def write_report(rows: list[dict], uri: str) -> None:
    """The batch report: one row per film, Parquet, written atomically (local or s3://)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"frames": pa.int64(), "duration_s": pa.float64(), "wall_s": pa.float64(), "actor_seconds": pa.float64(),
             "chunks_colorized": pa.int64(), "chunks_reused": pa.int64()}
    table = pa.table({c: pa.array([r.get(c) for r in rows], types.get(c, pa.string())) for c in REPORT_COLUMNS})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    if is_s3_uri(uri):
        bucket_store(uri).put_bytes(split_s3_uri(uri)[1], data)
    else:
        from vidcolor.atomic import write_bytes_atomic

        write_bytes_atomic(uri, data)


def report_uri(output_prefix: str) -> str:
    if is_s3_uri(output_prefix):
        return output_prefix.rstrip("/") + "/vidcolor-report.parquet"
    return str(Path(output_prefix) / "vidcolor-report.parquet")


# --- progress from the run state alone --------------------------------------------------------

def run_progress(store: ObjectStore, run_id: str) -> dict:
    """Frames colorized of the total for one run, from plan.json and the chunk markers present."""
    layout = RunLayout(run_id)
    try:
        plan = store.get_json(layout.plan)
    except (KeyError, ValueError):
        return {"run_id": run_id, "phase": "splitting", "frames_done": 0, "frames_total": None}
    done_keys = {k.rsplit("/", 2)[-2] for k in store.list(f"{layout.root}/chunks/") if k.endswith("/done.json")}
    chunks = plan.get("chunks", [])
    done = sum(c["core_end"] - c["core_start"] for c in chunks if f"{c['index']:05d}" in done_keys)
    try:
        record = store.get_json(layout.run_json)
    except (KeyError, ValueError):
        record = {}
    return {"run_id": run_id, "phase": record.get("status") or "running", "frames_done": done,
            "frames_total": plan.get("total_frames"), "chunks_done": len(done_keys), "chunks_total": len(chunks)}


def batch_status(store: ObjectStore) -> list[dict]:
    """Every batch in the store with each film's progress and an ETA (from the rate so far)."""
    out = []
    ids = sorted({k.split("/")[1] for k in store.list("batches/") if k.endswith("/batch.json")})
    now = time.time()
    for bid in ids:
        rec = BatchRecord.load(store, bid)
        films = []
        for f in rec.films:
            prog = run_progress(store, f.run_id) if f.run_id else {"frames_done": 0, "frames_total": f.frames}
            status = f.status
            if status in ("succeeded", "skipped"):
                prog["frames_done"] = prog.get("frames_total") or prog["frames_done"]
            films.append({"input": f.input, "output": f.output, "priority": f.priority, "status": status,
                          "run_id": f.run_id, "frames_done": prog["frames_done"],
                          "frames_total": prog.get("frames_total"), "error": f.error})
        done = sum(f["frames_done"] for f in films)
        total_known = [f["frames_total"] for f in films if f["frames_total"]]
        total = sum(total_known) if len(total_known) == len(films) else None
        elapsed = (rec.finished_at or now) - rec.started_at
        # the driver's pid says something only on its own machine
        alive = rec.status == "running" and (rec.host != socket.gethostname() or process_exists(rec.pid))
        state = rec.status if rec.status != "running" or alive else "interrupted"
        eta = None
        if state == "running" and total and done and done < total:
            eta = elapsed * (total - done) / done
        out.append({"batch_id": bid, "source": rec.source, "status": state,
                    "films_done": sum(f["status"] in ("succeeded", "skipped") for f in films),
                    "films_failed": sum(f["status"] == "failed" for f in films), "films": films,
                    "frames_done": done, "frames_total": total, "elapsed_s": round(elapsed, 1),
                    "eta_s": None if eta is None else round(eta, 1)})
    return out

