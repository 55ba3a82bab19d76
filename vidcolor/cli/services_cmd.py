"""``vidcolor services start|stop|status``: keep a local Ray and Prefect server warm between
commands (vidcolor.services)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Optional

import typer

services_app = typer.Typer(help="Keep a local Ray and Prefect server running between commands (saves their start-up).",
                           no_args_is_help=True)


@services_app.command("start")
def start(cpus: Optional[int] = typer.Option(None, "--cpus", help="Ray's logical CPUs (default: the cores plus two).")) -> None:
    """Start them (or report the running ones). Every vidcolor command on this machine uses them
    until `vidcolor services stop`, unless RAY_ADDRESS or PREFECT_API_URL names others."""
    from vidcolor import services

    try:
        s = services.start(cpus)
    except RuntimeError as e:
        typer.echo(f"vidcolor: error: {e}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Ray at {s.ray_address}, Prefect API at {s.prefect_api_url}: vidcolor commands use them until "
               "`vidcolor services stop`")


@services_app.command("stop")
def stop() -> None:
    """Stop them."""
    from vidcolor import services

    typer.echo("stopped" if services.stop() else "no services were recorded")


@services_app.command("status")
def status(json_out: bool = typer.Option(False, "--json", help="Print them as JSON.")) -> None:
    """Whether they run, and where."""
    from vidcolor import services

    s = services.running()
    if json_out:
        typer.echo(json.dumps(asdict(s) if s else None))
    elif s is None:
        typer.echo("not running: each command starts its own Ray and Prefect")
    else:
        typer.echo(f"running: Ray at {s.ray_address}, Prefect API at {s.prefect_api_url}")


def register(app: typer.Typer) -> None:
    app.add_typer(services_app, name="services")
