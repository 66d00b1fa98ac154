"""``trajops experiments``: create, list, inspect, evaluate, stop, promote and roll back A/B tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from trajops._duration import parse_duration
from trajops.cli._common import JsonOpt, console, emit_json, load_settings, opened_store
from trajops.cli.models_cmd import with_cli_hint
from trajops.cli.train import quiet_mlflow
from trajops.errors import PromotionRefused

if TYPE_CHECKING:  # MLflow and scipy load lazily: `trajops --help` stays fast
    from trajops.experiments.controller import ExperimentController
    from trajops.experiments.repository import ExperimentRecord
    from trajops.experiments.status import ExperimentStatus

app = typer.Typer(no_args_is_help=True, help="A/B experiments between registered models.")

IdArg = Annotated[str, typer.Argument(help="Experiment id (from `create` or `list`).")]


@contextmanager
def _controller(*, registry: bool = True) -> Iterator[ExperimentController]:
    from trajops.experiments.controller import ExperimentController
    from trajops.registry.adapter import Registry

    settings = load_settings()
    quiet_mlflow()
    reg = Registry.from_settings(settings) if registry else None
    with opened_store(settings) as store:
        yield ExperimentController.from_settings(settings, store, registry=reg)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Human-readable name.")],
    arm: Annotated[
        list[str],
        typer.Option(
            "--arm",
            help="name=alias_or_version[:weight]; the first arm is the control "
            "(e.g. --arm control=champion:50 --arm treatment=challenger:50).",
        ),
    ],
    mode: Annotated[
        str, typer.Option(help="split: arms share the traffic; shadow: challenger scores a copy.")
    ] = "split",
    unit: Annotated[str, typer.Option(help="Assignment unit: agent, client or scene.")] = "agent",
    metric: Annotated[str, typer.Option(help="Primary metric: ade or fde.")] = "ade",
    alpha: Annotated[float, typer.Option(help="Significance level of the sequential test.")] = 0.05,
    min_samples: Annotated[
        int, typer.Option(help="Scored feedback per arm before any verdict.")
    ] = 100,
    max_samples: Annotated[
        int, typer.Option(help="Scored feedback per arm after which it is inconclusive.")
    ] = 20_000,
    max_duration: Annotated[
        str, typer.Option(help="Longest run before it is inconclusive (e.g. 7d, 12h).")
    ] = "7d",
    tau: Annotated[
        float, typer.Option(help="mSPRT prior scale, as a fraction of the control's metric.")
    ] = 0.1,
    p99_latency_ms: Annotated[float, typer.Option(help="Guardrail: p99 latency (ms).")] = 250.0,
    max_error_rate: Annotated[float, typer.Option(help="Guardrail: failed requests share.")] = 0.02,
    max_invalid_rate: Annotated[
        float, typer.Option(help="Guardrail: share of forecasts with NaN/implausible positions.")
    ] = 0.01,
    auto_promote: Annotated[
        bool, typer.Option("--auto-promote", help="Promote a significant winner through the gate.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start an experiment; prints its id alone on the last line."""
    from trajops.experiments.config import ExperimentSpec, Guardrails, parse_arm

    spec = ExperimentSpec(
        name=name,
        arms=tuple(parse_arm(a) for a in arm),
        mode=mode,  # type: ignore[arg-type]  # validated by the spec
        unit=unit,  # type: ignore[arg-type]
        metric=metric,
        alpha=alpha,
        min_samples=min_samples,
        max_samples=max_samples,
        max_duration_s=parse_duration(max_duration, field="max_duration").total_seconds(),
        auto_promote=auto_promote,
        tau=tau,
        guardrails=Guardrails(
            p99_latency_ms=p99_latency_ms,
            error_rate=max_error_rate,
            invalid_rate=max_invalid_rate,
        ),
    )
    with _controller() as controller:
        record = controller.create(spec)
    if as_json:
        emit_json(record.to_dict())
        return
    versions = record.aliases_at_start.get("versions", {})
    for a in spec.arms:
        pinned = f" (v{versions[a.name]})" if a.name in versions else ""
        console.print(f"  {a.name}: {a.model_ref}{pinned}, weight {a.weight:g}", highlight=False)
    typer.echo(record.id)


@app.command("list")
def list_cmd(
    status: Annotated[
        str | None, typer.Option(help="Only experiments in this status (e.g. running).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Experiments, newest first."""
    with _controller(registry=False) as controller:
        records = controller.repo.list(status=status)
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        console.print("no experiments yet; start one with `trajops experiments create`")
        return
    table = Table(title="experiments")
    for col in ("id", "name", "status", "mode", "arms", "verdict", "created"):
        table.add_column(col, overflow="fold")
    for r in records:
        arms = ", ".join(f"{a.name}={a.model_ref}:{a.weight:g}" for a in r.spec.arms)
        table.add_row(
            r.id,
            r.spec.name,
            r.status,
            r.spec.mode,
            arms,
            r.verdict,
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


def _print_status(st: ExperimentStatus) -> None:
    rec = st.experiment
    console.print(
        f"[bold]{rec.id}[/bold] {rec.spec.name!r}: {rec.status}, {rec.spec.mode}, unit "
        f"{rec.spec.unit}, verdict [bold]{st.verdict}[/bold]",
        highlight=False,
    )
    table = Table()
    for col in ("arm", "model", "weight", "requests", "errors", "p99 ms", "n fb", "ADE", "FDE"):
        table.add_column(col)

    def fmt(v: float | None, spec: str = ".3f") -> str:
        return "-" if v is None else format(v, spec)

    for a in st.arms:
        table.add_row(
            a["name"],
            a["model_ref"],
            f"{a['weight']:g}",
            str(a["requests"]),
            str(a["errors"]),
            fmt(a["latency_p99_ms"], ".1f"),
            str(a["n_feedback"]),
            fmt(a["ade"]),
            fmt(a["fde"]),
        )
    console.print(table)
    srm = "-" if st.srm_p_value is None else f"{st.srm_p_value:.3g}"
    console.print(f"sample-ratio-mismatch p = {srm}", highlight=False)
    for arm, tests in st.tests.items():
        seq = tests["msprt"]
        console.print(
            f"{arm} vs control: effect {fmt(seq['effect'], '+.4f')} m, always-valid p = "
            f"{seq['p_value']:.3g}, CI [{fmt(seq['ci_low'], '.4f')}, {fmt(seq['ci_high'], '.4f')}]",
            highlight=False,
        )
    for b in st.breaches:
        console.print(f"[red]guardrail[/red] {b.message}", highlight=False)
    if st.action:
        console.print(f"action: [bold]{st.action}[/bold]")


@app.command("status")
def status(experiment_id: IdArg, as_json: JsonOpt = False) -> None:
    """Arms, tests, verdict and SRM p-value of an experiment.

    Read-only: counts and metrics per arm, the sequential tests, the verdict and the
    sample-ratio-mismatch p-value.
    """
    with _controller(registry=False) as controller:
        st = controller.status(experiment_id)
    if as_json:
        emit_json(st.to_dict())
    else:
        _print_status(st)


@app.command("evaluate")
def evaluate(experiment_id: IdArg, as_json: JsonOpt = False) -> None:
    """Compute the status and act on it (roll back, promote, stop).

    Promotes only an experiment created with --auto-promote.
    """
    with _controller() as controller:
        st = controller.evaluate(experiment_id)
    if as_json:
        emit_json(st.to_dict())
    else:
        _print_status(st)


def _report(record: ExperimentRecord, *, as_json: bool) -> None:
    if as_json:
        emit_json(record.to_dict())
    else:
        console.print(f"{record.id}: {record.status} ({record.reason})", highlight=False)


@app.command("stop")
def stop(
    experiment_id: IdArg,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why; kept with it.")
    ] = "stopped by hand",
    as_json: JsonOpt = False,
) -> None:
    """Stop routing traffic to the challengers (registry unchanged)."""
    with _controller(registry=False) as controller:
        record = controller.stop(experiment_id, reason=reason)
    _report(record, as_json=as_json)


@app.command("promote")
def promote(
    experiment_id: IdArg,
    arm: Annotated[str | None, typer.Option(help="Challenger arm (default: the first).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Bypass failed gate checks.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Promote a challenger arm's version to champion through the gate."""
    with _controller() as controller:
        try:
            record = controller.promote(experiment_id, arm=arm, force=force)
        except PromotionRefused as exc:
            raise with_cli_hint(exc, suggest_eval_data=False) from None
    _report(record, as_json=as_json)


@app.command("rollback")
def rollback(
    experiment_id: IdArg,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why; kept with it.")
    ] = "rolled back by hand",
    as_json: JsonOpt = False,
) -> None:
    """Stop, send all traffic to the control, restore moved aliases.

    An alert is raised.
    """
    with _controller() as controller:
        record = controller.rollback(experiment_id, reason=reason)
    _report(record, as_json=as_json)
