"""``trajops demo``: the whole job on embedded defaults in about a minute.

Simulate crowds, train the three forecasters (briefly), register them, promote the best to
``champion`` and the runner-up to ``challenger`` through the gate, print the registry and how
to browse the runs (``trajops ui``), create an API key and print it with a ready-to-paste
``curl`` example, then (unless ``--no-serve``) serve the champion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from trajops.cli._common import console, load_settings
from trajops.cli.models_cmd import versions_table
from trajops.cli.train import quiet_mlflow, results_table, step_progress
from trajops.cli.ui import UI_HOST, UI_PORT
from trajops.errors import PromotionRefused
from trajops.models import MODEL_NAMES
from trajops.settings import Settings

if TYPE_CHECKING:  # MLflow and the models load lazily: `trajops --help` stays fast
    from trajops.registry.adapter import Registry
    from trajops.training.run import TrainResult

DEMO_EXPERIMENT = "trajops-demo"


def _promote(registry: Registry, settings: Settings, result: TrainResult, alias: str) -> None:
    from trajops.registry.promotion import promote

    assert result.version is not None
    try:
        outcome = promote(
            registry,
            version=result.version,
            alias=alias,
            tolerance=settings.promotion_tolerance,
            reason=f"trajops demo: {result.model} ranked by test ADE",
        )
    except PromotionRefused as exc:
        # A champion from an earlier demo may be better on the gate's set: keep it.
        console.print(f"[yellow]{alias} not moved:[/yellow] {exc.message}", highlight=False)
        return
    if outcome.changed:
        console.print(f"{alias} -> v{outcome.version} ({result.model})")


def run_demo(
    settings: Settings,
    *,
    epochs: int,
    seed: int,
    scenes: int,
    agents: int,
    steps: int,
) -> list[TrainResult]:
    """Train, register and promote the demo models; returns the trainings, best first."""
    from trajops.data.simulator import SimulationConfig
    from trajops.registry.adapter import Registry
    from trajops.tracking.datasets import simulated_splits
    from trajops.training.run import STEPS, TrainSpec, train_run

    splits = simulated_splits(
        SimulationConfig(n_scenes=scenes, n_agents=agents, n_steps=steps, seed=seed)
    )
    console.print(
        f"simulated {splits.train['agent_id'].nunique() + splits.test['agent_id'].nunique()} "
        f"agents in {scenes} scenes; tracking to {settings.resolved_tracking_uri}"
    )
    results = []
    for name in MODEL_NAMES:
        spec = TrainSpec(
            model=name,
            epochs=epochs if name == "neural" else None,
            seed=seed,
            experiment=DEMO_EXPERIMENT,
            register=True,
            run_name=f"demo-{name}",
        )
        with step_progress(len(STEPS), label=name) as on_step:
            results.append(train_run(settings, spec, splits, on_step=on_step))
    ranked = sorted(results, key=lambda r: r.metrics["test_ade"])
    console.print(results_table(ranked, title="demo trainings (best first)"))
    registry = Registry.from_settings(settings)
    _promote(registry, settings, ranked[0], "champion")
    if len(ranked) > 1:
        _promote(registry, settings, ranked[1], "challenger")
    console.print(versions_table(registry.list_versions(), title=f"registry: {registry.name}"))
    return ranked


def demo(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the champion afterwards.")
    ] = True,
    epochs: Annotated[int, typer.Option(help="Epochs of the neural model.")] = 8,
    seed: Annotated[int | None, typer.Option(help="Seed (default: TRAJOPS_SEED).")] = None,
    scenes: Annotated[int, typer.Option(help="Simulated scenes (split by scene).")] = 5,
    agents: Annotated[int, typer.Option(help="Simulated agents per scene.")] = 16,
    steps: Annotated[int, typer.Option(help="Simulated steps per scene.")] = 150,
) -> None:
    """Simulate, train, register and promote; then serve.

    The whole job on embedded defaults: simulate crowds, train cv, linear and neural,
    register them, promote champion and challenger through the gate, create an API key and
    print it with a curl example, then (unless --no-serve) serve the champion.
    """
    quiet_mlflow()
    settings = load_settings()
    run_demo(
        settings,
        epochs=epochs,
        seed=settings.seed if seed is None else seed,
        scenes=scenes,
        agents=agents,
        steps=steps,
    )
    print_access(settings, serving=serve)
    if serve:
        from trajops.serving.server import run_server

        run_server(settings)


def print_access(settings: Settings, *, serving: bool) -> str:
    """Print how to reach what the demo built: the MLflow UI, the service, and a new API key
    with a ready-to-paste ``curl`` (the key alone on its line). Returns the key."""
    console.print(
        f"browse the runs and the registry in the MLflow UI: `trajops ui` "
        f"(http://{UI_HOST}:{UI_PORT})",
        highlight=False,
    )
    admin = create_demo_admin(settings)
    if admin is not None:
        console.print(
            f"operations dashboard: `trajops dashboard` (http://127.0.0.1:"
            f"{settings.dashboard_port}), sign in as [bold]{admin[0]}[/bold] with the password "
            "on the next line (shown once):",
            highlight=False,
        )
        typer.echo(admin[1])
    token = create_demo_key(settings)
    base = f"http://{settings.host}:{settings.port}"
    if serving:
        console.print(
            f"serving the champion on {base} (POST /v1/predict, docs at /docs); Ctrl-C stops",
            highlight=False,
        )
    else:
        console.print(f"serve the champion on {base} with `trajops serve`, then:", highlight=False)
    console.print(
        "API key for this demo (scopes predict, feedback; shown once, only its hash is stored):"
    )
    typer.echo(token)
    typer.echo(curl_example(base, token))
    console.print(
        "or stream a tracker's frames (forecasts once an agent has 2.8 s of track; the service "
        "scores them itself as the agents walk on; docs/production-loop.md):"
    )
    typer.echo(tracks_example(base, token))
    return token


def create_demo_admin(settings: Settings) -> tuple[str, str] | None:
    """An ``admin`` user for the dashboard when the store has no user yet: ``(name,
    password)``; None when people exist already (a demo run again keeps them)."""
    from trajops.cli._common import opened_store
    from trajops.cli.keys import audit_event
    from trajops.security.users import Users, generate_password

    with opened_store(settings) as store:
        users = Users(store)
        if users.list():
            return None
        password = generate_password()
        user = users.create(name="admin", role="admin", password=password)
        audit_event(store, "users.create", {"user": user.name, "role": user.role.value})
    return user.name, password


def create_demo_key(settings: Settings) -> str:
    """A ``predict,feedback`` key in the configured store (audited like ``keys create``)."""
    from trajops.cli._common import opened_store
    from trajops.security.audit import AuditRecord, append_audit
    from trajops.security.keys import ApiKeys

    with opened_store(settings) as store:
        info, token = ApiKeys.from_settings(settings, store).create_key(
            name="demo", scopes="predict,feedback"
        )
        append_audit(
            store,
            [
                AuditRecord(
                    route="trajops demo",
                    method="CLI",
                    status=0,
                    event="keys.create",
                    key_id=info.id,
                    details={"key_id": info.id, "scopes": sorted(info.scopes)},
                )
            ],
        )
    return token


def curl_example(base: str, token: str) -> str:
    """A ready-to-paste ``curl`` prediction for one walker, authenticated with ``token``."""
    positions = ", ".join(f"[{0.5 * i:.1f}, 0.0]" for i in range(8))
    body = f'{{"agents": [{{"agent_id": "ped-1", "positions": [{positions}]}}]}}'
    return (
        f"curl -s -X POST {base}/v1/predict -H 'Content-Type: application/json' "
        f"-H 'X-API-Key: {token}' -d '{body}'"
    )


def tracks_example(base: str, token: str) -> str:
    """A ready-to-paste ``curl`` frame for ``/v1/tracks`` (send one every 0.4 s)."""
    body = (
        '{"scene_id": "demo-crossing", "t": \'"$(date +%s.%N)"\', '
        '"agents": [{"agent_id": "ped-1", "position": [1.0, 2.0]}]}'
    )
    return (
        f"curl -s -X POST {base}/v1/tracks -H 'Content-Type: application/json' "
        f"-H 'X-API-Key: {token}' -d '{body}'"
    )
