"""The run state on the object store: key layout and the typed, versioned documents in it.

    runs/<run_id>/plan.json                 probe, cuts, chunk table (vidcolor.plan.Plan), with the
                                            digest of every chunk's source luma
    runs/<run_id>/frames.parquet            every frame's pts and duration
    runs/<run_id>/split.json                SplitMarker, written last by split: sha256 of plan.json
                                            and of frames.parquet
    runs/<run_id>/chunks/<i>/source.npz     render-size luma of the chunk's extended range
    runs/<run_id>/chunks/<i>/chroma.npz     predicted ab (int8) of the extended range
    runs/<run_id>/chunks/<i>/done.json      ChunkMarker, written last: frame count + sha256 of chroma.npz
    runs/<run_id>/segments/<encode>/<i>.nut encoded core frames, and <i>.json SegmentMarker
    runs/<run_id>/run.json                  RunRecord: status, invocations, quarantine
    runs/<run_id>/lease/<generation>.json   the run's lease (vidcolor.lease)
    runs/<run_id>/keyframes/                colour keyframes and their checksums (vidcolor.keyframes)

Every JSON document carries ``version``, its format. Files written before formats were numbered
have the layout of version 1 and are read as such; a newer format than this vidcolor knows is
refused with one line (RunStateError), never guessed at.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from vidcolor.errors import VidcolorError
from vidcolor.store import ObjectStore


class RunStateError(VidcolorError):
    """A run-state file this vidcolor must not read (a newer format)."""


def check_version(doc: dict, key: str, known: int) -> int:
    version = doc.get("version", 1)  # unnumbered files predate versioning and have version 1's layout
    if not isinstance(version, int) or version < 1:
        raise RunStateError(key, f"has an invalid format version {version!r}")
    if version > known:
        raise RunStateError(key, f"was written by a newer vidcolor (format {version}; this one reads up to "
                                 f"{known}); upgrade vidcolor or use another --store")
    return version


def _known_fields(cls, doc: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in doc.items() if k in names}


@dataclass(frozen=True)
class RunLayout:
    """Key names of one run under a store root."""

    run_id: str

    @property
    def root(self) -> str:
        return f"runs/{self.run_id}"

    @property
    def plan(self) -> str:
        return f"{self.root}/plan.json"

    @property
    def frames(self) -> str:
        return f"{self.root}/frames.parquet"

    @property
    def split_marker(self) -> str:
        return f"{self.root}/split.json"

    @property
    def run_json(self) -> str:
        return f"{self.root}/run.json"

    def chunk(self, i: int, name: str) -> str:
        return f"{self.root}/chunks/{i:05d}/{name}"

    def segment(self, encode_key: str, i: int, ext: str = "nut") -> str:
        return f"{self.root}/segments/{encode_key}/{i:05d}.{ext}"

    def temp_prefix(self, kind: str) -> str:
        """Prefix of a local temp file or folder of this run, so the next invocation finds and
        removes what a killed one left."""
        return f"vidcolor-{kind}-{self.run_id}-"


# --- arrays and checksums ----------------------------------------------------------------------

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def array_digest(a: np.ndarray) -> str:
    """sha256 of an array's content (dtype, shape, values): the same luma gives the same digest
    whatever file it was packed in, so a chunk source written again still matches its plan."""
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}{a.shape};".encode() + a.tobytes()).hexdigest()


# Start of the error of a chunk whose source file is missing, unreadable or fails its digest:
# the run splits that chunk again instead of quarantining it (vidcolor.run.Run.colorize).
DAMAGED_SOURCE = "damaged chunk source"


def pack_array(**arrays: np.ndarray) -> bytes:
    """An .npz (np.load reads it) deflated at level 1: about 10x faster than np.savez_compressed's
    level 6 on chroma and luma, for files about a tenth larger (docs/performance.md)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
    return buf.getvalue()


# CPython 3.11 keeps one AST recursion counter for all threads: compile() to an AST in two threads
# at once can fail with "SystemError: AST constructor recursion depth mismatch" (CPython issue
# 106905; seen here in the stitch threads). numpy parses every .npy header with ast.literal_eval,
# so vidcolor parses headers one at a time; the arrays are read in parallel.
_NPY_HEADER_LOCK = threading.Lock()


def unpack_array(data: bytes, name: str) -> np.ndarray:
    """One array of a pack_array .npz, writable."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf, zf.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        with _NPY_HEADER_LOCK:
            shape, fortran_order, dtype = read_header(f)
        if dtype.hasobject:
            raise ValueError(f"{name}.npy holds Python objects")
        flat = np.empty(int(np.prod(shape, dtype=np.int64)), dtype)
        buffer = memoryview(flat).cast("B")
        got = 0
        while got < len(buffer):  # in pieces: one large read of a zip member is slow
            piece = f.read(min(1 << 20, len(buffer) - got))
            if not piece:
                raise ValueError(f"{name}.npy is cut short ({got} of {len(buffer)} bytes)")
            buffer[got:got + len(piece)] = piece
            got += len(piece)
    return flat.reshape(shape, order="F" if fortran_order else "C")


def load_npy_mapped(path) -> np.ndarray:
    """An .npy file mapped read-only (its header parsed under the same lock as unpack_array's)."""
    with _NPY_HEADER_LOCK:
        return np.load(path, mmap_mode="r", allow_pickle=False)


# --- markers -----------------------------------------------------------------------------------

MARKER_FORMAT = 1


@dataclass(frozen=True)
class ChunkMarker:
    """chunks/<i>/done.json: the chunk's chroma is complete; trusted only when sha256 matches."""

    chunk: int
    frames: int
    sha256: str
    written_at: float = 0.0
    model: str = ""
    worker: str = ""
    infer_seconds: float = 0.0
    stabilize_seconds: float = 0.0
    keyframes: str = ""  # digest of the colour keyframes that steer the chunk ("" = none; vidcolor.keyframes)
    version: int = MARKER_FORMAT

    @classmethod
    def from_dict(cls, doc: dict, key: str) -> "ChunkMarker":
        check_version(doc, key, MARKER_FORMAT)
        return cls(**_known_fields(cls, doc))


@dataclass(frozen=True)
class SegmentMarker:
    """segments/<encode>/<i>.json: the chunk's encoded segment is complete."""

    chunk: int
    frames: int
    sha256: str
    seconds: float = 0.0
    keyframes: str = ""  # digest of the keyframes steering the chroma it was made of ("" = none)
    version: int = MARKER_FORMAT

    @classmethod
    def from_dict(cls, doc: dict, key: str) -> "SegmentMarker":
        check_version(doc, key, MARKER_FORMAT)
        return cls(**_known_fields(cls, doc))


@dataclass(frozen=True)
class SplitMarker:
    """split.json: a split finished; plan.json and frames.parquet are trusted only while their
    sha256 match these."""

    plan_sha256: str
    frames_sha256: str
    written_at: float = 0.0
    version: int = MARKER_FORMAT

    @classmethod
    def from_dict(cls, doc: dict, key: str) -> "SplitMarker":
        check_version(doc, key, MARKER_FORMAT)
        return cls(**_known_fields(cls, doc))


def json_bytes(value) -> bytes:
    """The bytes ``ObjectStore.put_json`` writes, for documents whose checksum is kept."""
    return json.dumps(value, indent=2, sort_keys=True).encode()


def write_split_done(store: ObjectStore, layout: RunLayout, plan_bytes: bytes, frames_bytes: bytes) -> None:
    """frames.parquet and plan.json first, the marker last."""
    store.put_bytes(layout.frames, frames_bytes)
    store.put_bytes(layout.plan, plan_bytes)
    marker = SplitMarker(sha256_bytes(plan_bytes), sha256_bytes(frames_bytes), written_at=time.time())
    store.put_json(layout.split_marker, asdict(marker))


def verified_split(store: ObjectStore, layout: RunLayout) -> tuple[bytes, bytes] | None:
    """(plan.json, frames.parquet) bytes of a finished split, when both match its marker; None
    when anything is missing or fails (the run then splits again). A marker of a newer format is
    refused (RunStateError)."""
    try:
        doc = store.get_json(layout.split_marker)
        if not isinstance(doc, dict):
            return None
        marker = SplitMarker.from_dict(doc, layout.split_marker)
        plan_bytes, frames_bytes = store.get_bytes(layout.plan), store.get_bytes(layout.frames)
    except (KeyError, ValueError, TypeError):
        return None
    if sha256_bytes(plan_bytes) != marker.plan_sha256 or sha256_bytes(frames_bytes) != marker.frames_sha256:
        return None
    return plan_bytes, frames_bytes


def write_chunk_done(store: ObjectStore, layout: RunLayout, index: int, chroma_bytes: bytes, frames: int, extra: dict) -> None:
    """Chroma first, marker last: a marker never points at a missing or partial chroma file."""
    store.put_bytes(layout.chunk(index, "chroma.npz"), chroma_bytes)
    marker = ChunkMarker(chunk=index, frames=frames, sha256=sha256_bytes(chroma_bytes), written_at=time.time(), **extra)
    store.put_json(layout.chunk(index, "done.json"), asdict(marker))


def chunk_is_done(store: ObjectStore, layout: RunLayout, index: int, expected_frames: int, keyframes: str = "") -> bool:
    """Trusted only when the marker's checksum matches the chroma file it names (and the keyframes
    that steered it are the ones that steer it now)."""
    key = layout.chunk(index, "done.json")
    try:
        marker = ChunkMarker.from_dict(store.get_json(key), key)
        data = store.get_bytes(layout.chunk(index, "chroma.npz"))
    except (KeyError, ValueError, TypeError):
        return False
    if marker.keyframes != keyframes:
        return False
    return marker.frames == expected_frames and marker.sha256 == sha256_bytes(data)


def write_segment_done(store: ObjectStore, layout: RunLayout, encode_key: str, index: int, path, frames: int,
                       seconds: float, keyframes: str = "") -> None:
    """Upload the segment, then its marker."""
    digest = sha256_file(path)
    store.upload_file(path, layout.segment(encode_key, index))
    marker = SegmentMarker(chunk=index, frames=frames, sha256=digest, seconds=round(seconds, 3), keyframes=keyframes)
    store.put_json(layout.segment(encode_key, index, "json"), asdict(marker))


def segment_is_done(store: ObjectStore, layout: RunLayout, encode_key: str, index: int, expected_frames: int,
                    keyframes: str = "") -> bool:
    key = layout.segment(encode_key, index, "json")
    try:
        marker = SegmentMarker.from_dict(store.get_json(key), key)
    except (KeyError, ValueError, TypeError):
        return False
    if marker.frames != expected_frames or marker.keyframes != keyframes:
        return False
    seg = layout.segment(encode_key, index)
    path = store.local_path(seg)
    if path is not None:
        return path.is_file() and sha256_file(path) == marker.sha256
    try:
        return sha256_bytes(store.get_bytes(seg)) == marker.sha256
    except KeyError:
        return False


# --- run.json ----------------------------------------------------------------------------------

RUN_FORMAT = 1


@dataclass
class Invocation:
    """One `vidcolor colorize` (or flow run) of this run: what it was asked, did and measured."""

    started_at: float
    pid: int
    input: str = ""
    output: str = ""
    model: str = ""
    encode_key: str = ""
    chroma: dict = field(default_factory=dict)  # what the run id was made of, readable
    chunks_colorized: list = field(default_factory=list)
    chunks_reused: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # stage -> seconds
    summary: dict = field(default_factory=dict)  # measures of the result (temporal quality, ...)
    status: str | None = None
    finished_at: float | None = None
    wall_seconds: float | None = None
    error: str | None = None


@dataclass
class RunRecord:
    """run.json, written only by the driver (the flow's process)."""

    run_id: str
    status: str | None = None
    invocations: list[Invocation] = field(default_factory=list)
    quarantined: dict = field(default_factory=dict)  # chunk index (str) -> last error
    version: int = RUN_FORMAT

    @classmethod
    def from_dict(cls, doc: dict, key: str) -> "RunRecord":
        check_version(doc, key, RUN_FORMAT)
        invocations = [Invocation(**_known_fields(Invocation, inv)) for inv in doc.get("invocations", [])]
        return cls(run_id=doc.get("run_id", ""), status=doc.get("status"), invocations=invocations,
                   quarantined=dict(doc.get("quarantined", {})), version=RUN_FORMAT)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def current(self) -> Invocation:
        return self.invocations[-1]


def load_run_record(store: ObjectStore, layout: RunLayout) -> RunRecord:
    try:
        doc = store.get_json(layout.run_json)
    except (KeyError, ValueError):  # none yet, or unreadable: a record is history, not state to trust
        return RunRecord(run_id=layout.run_id)
    return RunRecord.from_dict(doc, layout.run_json)


# --- frames.parquet ----------------------------------------------------------------------------

def frame_table_bytes(pts: list[int], durations: list[int]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "frame": pa.array(range(len(pts)), pa.int64()),
        "pts": pa.array(pts, pa.int64()),
        "duration": pa.array(durations, pa.int64()),
    })
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def frame_table_rows(data: bytes) -> int:
    """Rows of a frames.parquet; -1 when it cannot be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(pa.BufferReader(data)).num_rows
    except Exception:  # noqa: BLE001 - a damaged parquet fails in many ways (ArrowInvalid, OSError)
        return -1


# (store uri, key) -> table, newest last. A run's frames.parquet never changes once split wrote it
# (the run id hashes the input), so one read per process serves every stitch task and finalize:
# on S3 that is one download per film instead of one per chunk (a feature film: hundreds).
_FRAME_TABLES: OrderedDict = OrderedDict()
_FRAME_TABLES_KEPT = 2
_FRAME_TABLES_LOCK = threading.Lock()


def load_frame_table(store: ObjectStore, layout: RunLayout):
    import pyarrow as pa
    import pyarrow.parquet as pq

    key = (store.uri, layout.frames)
    with _FRAME_TABLES_LOCK:
        if key in _FRAME_TABLES:
            _FRAME_TABLES.move_to_end(key)
            return _FRAME_TABLES[key]
    table = pq.read_table(pa.BufferReader(store.get_bytes(layout.frames)))
    with _FRAME_TABLES_LOCK:
        _FRAME_TABLES[key] = table
        while len(_FRAME_TABLES) > _FRAME_TABLES_KEPT:
            _FRAME_TABLES.popitem(last=False)
    return table

