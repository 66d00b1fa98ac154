"""``trajops cards``: the model card and the performance (bias and fairness) card of a version."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trajops.cli._common import JsonOpt, json_text, load_settings
from trajops.errors import ValidationError

if TYPE_CHECKING:  # MLflow loads lazily: `trajops --help` stays fast
    from trajops.cards.breakdown import PerformanceConfig
    from trajops.cards.store import VersionCards

app = typer.Typer(no_args_is_help=True, help="Model cards and performance (fairness) cards.")

RefArg = Annotated[str, typer.Argument(help="Version number (3, v3) or alias (champion).")]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="File to write; default: stdout.")
]


def _version_cards() -> VersionCards:
    from trajops.cards.store import VersionCards
    from trajops.cli.train import quiet_mlflow
    from trajops.registry.adapter import Registry

    quiet_mlflow()
    return VersionCards(Registry.from_settings(load_settings()))


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output}", err=True)


@app.command("model")
def model(ref: RefArg, output: OutputOpt = None, as_json: JsonOpt = False) -> None:
    """The model card of a version, as markdown or JSON.

    Intended use, data and lineage, metrics per scene and horizon, performance by group,
    limitations.
    """
    cards = _version_cards()
    if as_json:
        _emit(json_text(cards.facts(ref).to_dict()), output)
    else:
        _emit(cards.markdown(ref, kind="model"), output)


def _config(
    *,
    groupings: str | None,
    min_samples: int | None,
    underserved_ratio: float | None,
    directions: int | None,
    linear_fde: float | None,
    confidence: float | None,
    bootstrap: int | None,
    seed: int | None,
) -> PerformanceConfig | None:
    from trajops.cards.breakdown import PerformanceConfig

    given: dict[str, object] = {
        "min_samples": min_samples,
        "underserved_ratio": underserved_ratio,
        "directions": directions,
        "linear_fde_m": linear_fde,
        "confidence": confidence,
        "n_boot": bootstrap,
        "seed": seed,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if groupings is not None:
        changes["groupings"] = tuple(g.strip() for g in groupings.split(",") if g.strip())
    if not changes:
        return None
    return replace(PerformanceConfig(), **changes)  # type: ignore[arg-type]


@app.command("performance")
def performance(
    ref: Annotated[
        str | None, typer.Argument(help="Version number or alias (or use --evaluation).")
    ] = None,
    evaluation: Annotated[
        Path | None,
        typer.Option(
            "--evaluation",
            help="Per-window errors (.parquet/.csv, the run artifact performance/windows.parquet).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
    groupings: Annotated[
        str | None,
        typer.Option(help="Comma-separated: scene, speed, density, direction, path (default all)."),
    ] = None,
    min_samples: Annotated[
        int | None, typer.Option(help="Windows below which a group is under-sampled (30).")
    ] = None,
    underserved_ratio: Annotated[
        float | None,
        typer.Option(help="Group ADE / overall ADE above which it is underserved (1.25)."),
    ] = None,
    directions: Annotated[int | None, typer.Option(help="Direction sectors: 4 or 8.")] = None,
    linear_fde: Annotated[
        float | None,
        typer.Option(help="Metres a linear path's CV extrapolation may miss by (0.5)."),
    ] = None,
    confidence: Annotated[
        float | None, typer.Option(help="Level of the bootstrap intervals (0.95).")
    ] = None,
    bootstrap: Annotated[int | None, typer.Option(help="Bootstrap resamples (1000).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the bootstrap (0).")] = None,
) -> None:
    """Error by group: disparity, CIs, underserved groups.

    Disparity ratios and confidence intervals per group, flags for underserved and
    under-sampled groups.

    With a version and no group option the card logged at training is shown; any group option
    recomputes it from the run's per-window errors.
    """
    from trajops.cards.performance import performance_card
    from trajops.cards.render import render_performance_card
    from trajops.cards.store import read_window_table

    if (ref is None) == (evaluation is None):
        raise ValidationError(
            "give exactly one of VERSION or --evaluation FILE",
            details=[{"loc": ["evaluation"], "msg": "exactly one of VERSION / --evaluation"}],
        )
    config = _config(
        groupings=groupings,
        min_samples=min_samples,
        underserved_ratio=underserved_ratio,
        directions=directions,
        linear_fde=linear_fde,
        confidence=confidence,
        bootstrap=bootstrap,
        seed=seed,
    )
    if evaluation is not None:
        frame = read_window_table(evaluation)
        card = performance_card(
            frame, config, title=f"`{evaluation.name}`", source={"file": str(evaluation)}
        )
    else:
        card = _version_cards().performance(str(ref), config)
    if as_json:
        _emit(json_text(card.to_dict()), output)
    else:
        _emit(render_performance_card(card), output)
