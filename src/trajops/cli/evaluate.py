"""``trajops evaluate``: the ETH/UCY leave-one-scene-out benchmark from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from trajops.cli._common import (
    JsonOpt,
    console,
    emit_json,
    json_text,
    load_settings,
    status_console,
)
from trajops.data.readers import SCENES
from trajops.errors import ValidationError


def _parse_list(value: str, *, what: str, allowed: tuple[str, ...]) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if not items or unknown:
        bad = ", ".join(unknown) or "(empty)"
        raise ValidationError(
            f"unknown {what} {bad}; expected a comma-separated list of {', '.join(allowed)}",
            details=[{"loc": [what], "msg": f"unknown {bad}"}],
        )
    return list(dict.fromkeys(items))


def results_table(rows: list[dict[str, Any]], *, title: str) -> Table:
    """A rich table of protocol rows: one line per model and scene, averages in bold."""
    sampled = any("min_ade" in r for r in rows)
    table = Table(title=title)
    for col in ("model", "scene", "n", "ADE", "FDE", *(("minADE", "minFDE") if sampled else ())):
        table.add_column(col, justify="left" if col in ("model", "scene") else "right")
    for r in rows:
        cells = [r["model"], r["scene"], str(r["n"]), f"{r['ade']:.3f}", f"{r['fde']:.3f}"]
        if sampled:
            cells += [
                f"{r.get('min_ade', float('nan')):.3f}",
                f"{r.get('min_fde', float('nan')):.3f}",
            ]
        table.add_row(*cells, style="bold" if r["scene"] == "average" else None)
    return table


def _parse_seeds(text: str) -> list[int]:
    try:
        found = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise ValidationError(
            f"--seeds {text!r}: give comma-separated integers, e.g. 0,1,2",
            details=[{"loc": ["seeds"], "msg": "not integers"}],
        ) from None
    if not found:
        raise ValidationError("--seeds is empty", details=[{"loc": ["seeds"], "msg": "empty"}])
    return found


def spread_table(summary: list[dict[str, Any]], *, title: str) -> Table:
    """Mean ± standard deviation over the seeds of ADE / FDE (and minADE / minFDE)."""
    table = Table(title=title)
    for col in ("model", "scene", "ADE", "FDE", "minADE", "minFDE"):
        table.add_column(col)

    def cell(row: dict[str, Any], key: str) -> str:
        stats = row.get(key)
        return "-" if stats is None else f"{stats['mean']:.3f} ± {stats['std']:.3f}"

    for r in summary:
        table.add_row(
            r["model"], r["scene"], *(cell(r, k) for k in ("ade", "fde", "min_ade", "min_fde")),
            style="bold" if r["scene"] == "average" else None,
        )  # fmt: skip
    return table


def evaluate(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="ETH/UCY root (<root>/<scene>/{train,val,test}); default TRAJOPS_DATA_ROOT.",
        ),
    ] = None,
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated: cv, linear, neural.")
    ] = "cv,linear,neural",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the results as JSON here.")
    ] = None,
    protocol: Annotated[
        str, typer.Option("--protocol", help="Windowing: loso (default) or sgan.")
    ] = "loso",
    samples: Annotated[
        int, typer.Option("--samples", help="K samples per agent; K > 1 adds minADE/minFDE.")
    ] = 1,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Training epochs of the neural model.")
    ] = None,
    scenes: Annotated[
        str, typer.Option("--scenes", help="Comma-separated folds to run.")
    ] = ",".join(SCENES),
    device: Annotated[
        str | None, typer.Option("--device", help="Neural model device: auto, cpu or cuda.")
    ] = None,
    ensemble: Annotated[
        int | None,
        typer.Option("--ensemble", help="Members of the neural model (their mean forecasts)."),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            "--seeds",
            help="Comma-separated seeds (e.g. 0,1,2): the whole protocol once per seed, and "
            "each metric's mean and spread over them. Default: TRAJOPS_SEED only.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Benchmark the models on ETH/UCY, leaving one scene out.

    Each model is fitted on every leave-one-scene-out fold; test ADE/FDE are reported per
    scene and on average.
    """
    from trajops.cli.train import ensemble_params
    from trajops.evaluation.protocol import PROTOCOLS, evaluate_models
    from trajops.evaluation.spread import seed_summary
    from trajops.models import MODEL_NAMES

    settings = load_settings()
    root = data or settings.data_root
    if root is None:
        raise ValidationError(
            "no data: pass --data PATH or set TRAJOPS_DATA_ROOT",
            details=[{"loc": ["data"], "msg": "missing"}],
        )
    if not Path(root).is_dir():
        raise ValidationError(
            f"--data {root}: not a folder", details=[{"loc": ["data"], "msg": "not a folder"}]
        )
    if protocol not in PROTOCOLS:
        raise ValidationError(
            f"unknown --protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}",
            details=[{"loc": ["protocol"], "msg": "unknown"}],
        )
    if samples < 1:
        raise ValidationError(
            "--samples must be at least 1", details=[{"loc": ["samples"], "msg": "< 1"}]
        )
    if epochs is not None and epochs < 1:
        raise ValidationError(
            "--epochs must be at least 1", details=[{"loc": ["epochs"], "msg": "< 1"}]
        )
    names = _parse_list(models, what="model", allowed=MODEL_NAMES)
    folds = _parse_list(scenes, what="scene", allowed=SCENES)
    neural: dict[str, Any] = {"device": device or settings.device, "seed": settings.seed}
    if epochs is not None:
        neural["epochs"] = epochs
    neural.update(ensemble_params("neural", ensemble))
    seed_list = _parse_seeds(seeds) if seeds else [settings.seed]
    runs: dict[int, list[dict[str, Any]]] = {}
    with Progress(console=status_console(), transient=True) as progress:
        task = progress.add_task("evaluating", total=len(names) * len(folds) * len(seed_list))

        def step(message: str) -> None:
            progress.console.print(f"  {message}", highlight=False)
            progress.advance(task)

        for seed in seed_list:
            result = evaluate_models(
                root,
                names,
                protocol=protocol,  # type: ignore[arg-type]
                num_samples=samples,
                scenes=folds,
                model_params={"neural": {**neural, "seed": seed}},
                seed=seed,
                on_progress=step,
            )
            runs[seed] = result.rows
    payload: dict[str, Any] = {
        "protocol": protocol,
        "num_samples": samples,
        "data": str(root),
        "results": runs[seed_list[0]],  # the first seed's rows (all of them: results_by_seed)
        "timings": result.timings,
    }
    if len(seed_list) > 1:
        payload["seeds"] = seed_list
        payload["results_by_seed"] = {str(s): rows for s, rows in runs.items()}
        payload["summary"] = seed_summary(runs)
    if as_json:
        emit_json(payload)
    elif len(seed_list) > 1:
        console.print(spread_table(payload["summary"], title=f"ETH/UCY {protocol}, seeds {seeds}"))
    else:
        console.print(results_table(runs[seed_list[0]], title=f"ETH/UCY {protocol} (K={samples})"))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json_text(payload))
        status_console().print(f"results written to {output}")
