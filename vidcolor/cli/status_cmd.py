"""``vidcolor status [STORE]``: every batch's progress and its films', read from the run state
alone (works while a batch runs, after it ends, and after a crash)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from vidcolor.cli._common import fail
from vidcolor.errors import VidcolorError


def _eta(seconds) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def status(
    store: Optional[str] = typer.Argument(None, help="Run-state root (default $VIDCOLOR_STORE or ~/.cache/vidcolor/store)."),
    json_out: bool = typer.Option(False, "--json", help="Print everything as JSON."),
) -> None:
    """Show batch and film progress: frames done of total, ETA."""
    from vidcolor.archive import batch_status
    from vidcolor.store import open_store

    try:
        batches = batch_status(open_store(store))
    except VidcolorError as e:
        fail(e)
        return
    if json_out:
        typer.echo(json.dumps({"batches": batches}, indent=2))
        return
    if not batches:
        typer.echo("no batches in this store")
    for b in batches:
        total = b["frames_total"] if b["frames_total"] is not None else "?"
        typer.echo(f"batch {b['batch_id']} ({b['source']}): {b['status']}, films {b['films_done']}/{len(b['films'])} done"
                   f" ({b['films_failed']} failed), frames {b['frames_done']}/{total}, ETA {_eta(b['eta_s'])}")
        for f in b["films"]:
            ftotal = f["frames_total"] if f["frames_total"] is not None else "?"
            line = f"  {f['status']:<9} {f['frames_done']:>7}/{ftotal:<7} p{f['priority']} {f['input']}"
            if f["error"]:
                line += f"  ({f['error']})"
            typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
