"""``trajops data``: simulate, validate, describe and harvest trajectory data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from trajops import STEP_S
from trajops.cli._common import (
    JsonOpt,
    console,
    emit_json,
    load_settings,
    opened_store,
    scene_key,
    status_console,
)
from trajops.data.features import FEATURE_NAMES, kinematic_features
from trajops.data.fingerprint import fingerprint
from trajops.data.readers import read_tracks, write_tracks
from trajops.data.simulator import PRESETS, SimulationConfig, simulate
from trajops.data.windows import WindowConfig, make_windows
from trajops.errors import ValidationError

app = typer.Typer(
    no_args_is_help=True, help="Simulate, validate, describe and harvest trajectory data."
)

_OUTPUT_SUFFIXES = (".csv", ".parquet")
_SUMMARY_STATS = ("mean", "std", "min", "p50", "p95", "max")


@app.command("simulate")
def simulate_cmd(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write: .csv or .parquet.")
    ],
    preset: Annotated[
        str, typer.Option(help=f"Named population: {', '.join(PRESETS)}.")
    ] = "pedestrians",
    agents: Annotated[
        int | None, typer.Option("--agents", help="Agents walking in a scene at once.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Recorded steps per scene.")] = None,
    scenes: Annotated[int | None, typer.Option("--scenes", help="Independent scenes.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: TRAJOPS_SEED).")] = None,
    speed_factor: Annotated[
        float | None, typer.Option(help="Multiplies every desired speed (drift knob).")
    ] = None,
    noise: Annotated[
        float | None, typer.Option("--noise", help="Position noise std, in metres.")
    ] = None,
    step_s: Annotated[
        float | None,
        typer.Option(help="Seconds between recorded steps; frame ids still step by 10."),
    ] = None,
    scene_size: Annotated[
        float | None, typer.Option(help="Side of the square scene, in metres.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate a crowd (social-force model) and write its tracks."""
    if output.suffix.lower() not in _OUTPUT_SUFFIXES:
        raise ValidationError(
            f"--output {output}: unsupported file type {output.suffix!r}; expected .csv or .parquet",
            details=[{"loc": ["output"], "msg": "expected .csv or .parquet"}],
        )
    config = SimulationConfig.preset(
        preset,
        n_agents=agents,
        n_steps=steps,
        n_scenes=scenes,
        seed=seed if seed is not None else load_settings().seed,
        speed_factor=speed_factor,
        position_noise=noise,
        step_s=step_s,
        scene_size=scene_size,
    )
    with status_console().status(
        f"simulating {config.n_scenes} scene(s) of {config.n_agents} agents"
    ):
        tracks = simulate(config)
    write_tracks(tracks, output)
    fp = fingerprint(tracks)
    if as_json:
        emit_json({"path": str(output), "steps": config.n_steps, **fp.to_dict()})
        return
    console.print(
        f"wrote {output}: {fp.n_rows} rows, {fp.n_agents} agents, {fp.n_scenes} scene(s), "
        f"{config.n_steps} steps of {config.step_s} s (digest {fp.short})",
        highlight=False,
    )


@app.command("validate")
def validate_cmd(
    path: Annotated[Path, typer.Argument(help="A .txt/.csv/.parquet file or a folder of them.")],
    step_s: Annotated[
        float, typer.Option(help="Seconds per step, for files with a timestamp column.")
    ] = STEP_S,
    as_json: JsonOpt = False,
) -> None:
    """Check a tracks file or folder of them.

    A malformed file exits 2, naming the file, line, column and reason.
    """
    tracks = read_tracks(path, step_s=step_s)
    fp = fingerprint(tracks)
    if as_json:
        emit_json({"path": str(path), "ok": True, **fp.to_dict()})
        return
    console.print(
        f"OK {path}: {fp.n_rows} rows, {fp.n_agents} agents, {fp.n_scenes} scene(s), "
        f"{fp.n_frames} frames",
        highlight=False,
    )


def feature_summary(features: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Mean, std, min, median, 95th percentile and max of each feature column (over the windows
    that have a value: the neighbour features are missing for an agent with no neighbour)."""
    summary: dict[str, dict[str, float]] = {}
    for name in FEATURE_NAMES:
        values = features[name].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        summary[name] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "p50": float(np.percentile(values, 50)),
            "p95": float(np.percentile(values, 95)),
            "max": float(values.max()),
        }
    return summary


def _stats(path: Path, step_s: float) -> dict[str, Any]:
    tracks = read_tracks(path, step_s=step_s)
    fp = fingerprint(tracks)
    windows = make_windows(tracks, WindowConfig())
    features = kinematic_features(windows.obs, neighbours=windows.neighbours, step_s=step_s)
    return {
        "path": str(path),
        "rows": fp.n_rows,
        "agents": fp.n_agents,
        "scenes": fp.n_scenes,
        "frames": fp.n_frames,
        "windows": len(windows),
        "digest": fp.digest,
        "features": feature_summary(features),
    }


@app.command("stats")
def stats_cmd(
    path: Annotated[Path, typer.Argument(help="A .txt/.csv/.parquet file or a folder of them.")],
    as_json: JsonOpt = False,
    step_s: Annotated[float, typer.Option(help="Seconds per step of the data.")] = STEP_S,
) -> None:
    """Counts, fingerprint and feature summary of a tracks dataset.

    The kinematic features are summarised over the dataset's observation windows.
    """
    stats = _stats(path, step_s)
    if as_json:
        emit_json(stats)
        return
    console.print(
        f"[bold]{path}[/bold]\n"
        f"rows {stats['rows']}  agents {stats['agents']}  scenes {stats['scenes']}  "
        f"frames {stats['frames']}  windows {stats['windows']}\n"
        f"digest {stats['digest']}",
        highlight=False,
    )
    if not stats["features"]:
        console.print("no agent is long enough for a window: no feature summary")
        return
    table = Table(title="kinematic features (per observed window)")
    table.add_column("feature")
    for stat in _SUMMARY_STATS:
        table.add_column(stat, justify="right")
    for name, row in stats["features"].items():
        table.add_row(name, *(f"{row[s]:.3f}" for s in _SUMMARY_STATS))
    console.print(table)


@app.command("harvest")
def harvest_cmd(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Harvest folder to write (a new path).")
    ],
    since: Annotated[
        str | None, typer.Option("--since", help="Start: a duration back (7d) or an ISO date.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="End (exclusive): a duration back or an ISO date.")
    ] = None,
    scene: Annotated[
        str | None, typer.Option("--scene", help="Only this scene (the scene_id clients send).")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Most forecast instants (the most recent ones)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write realised production forecasts as a training dataset.

    A window is a served input and the 4.8 s future that followed: scored by the service on
    /v1/tracks, or reported on /v1/feedback. `trajops train --data` and `trajops evaluate
    --data` read the folder. Ids are pseudonyms; erased subjects and rows past retention are
    not in the store, so never in a harvest.
    """
    from trajops.monitoring.harvest import HarvestFilter, harvest
    from trajops.security._time import parse_past

    settings = load_settings()
    where = HarvestFilter(
        since=parse_past(since, field="since") if since else None,
        until=parse_past(until, field="until") if until else None,
        scene_key=scene_key(settings, scene) if scene else None,
        limit=limit,
    )
    with opened_store(settings) as store:
        manifest = harvest(store, output, where)
    if as_json:
        emit_json({"path": str(output), **manifest})
        return
    span = manifest["time_range"]
    console.print(
        f"harvest {output}: {manifest['windows']} windows, {manifest['agents']} agents, "
        f"{len(manifest['sites'])} scene(s)"
        + (f", {_iso(span[0])} .. {_iso(span[1])}" if span else "")
        + (f"\nfingerprint {manifest['fingerprint']}" if manifest["fingerprint"] else ""),
        highlight=False,
    )
    if manifest["windows"] == 0:
        console.print("no forecast with a realised future matched: nothing to train on yet")


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
