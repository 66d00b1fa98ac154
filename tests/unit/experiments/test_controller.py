"""Controller on a real (SQLite) operational store: routing, metrics, verdicts, rollback, alerts.

Traffic is simulated by routing units through :class:`ExperimentRouter` and writing the rows
serving would write (exposures, feedback with the arm's variant, shadow predictions).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from trajops.errors import ConflictError, NotFoundError
from trajops.experiments import (
    Arm,
    ExperimentController,
    ExperimentRepository,
    ExperimentRouter,
    ExperimentSpec,
    Guardrails,
    exposure_row,
)
from trajops.monitoring.alerts import AlertManager
from trajops.store import Store
from trajops.store.models import Feedback, ShadowPrediction


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


@pytest.fixture
def controller(store: Store) -> ExperimentController:
    return ExperimentController(
        ExperimentRepository(store), alerts=AlertManager(store, [], cooldown_s=0)
    )


def _spec(**kw: object) -> ExperimentSpec:
    base: dict[str, object] = {
        "name": "cv-vs-offset",
        "arms": (Arm("control", "champion", 50), Arm("treatment", "challenger", 50)),
        "min_samples": 50,
    }
    base.update(kw)
    return ExperimentSpec(**base)  # type: ignore[arg-type]


def _traffic(
    store: Store,
    router: ExperimentRouter,
    *,
    n: int,
    ade: dict[str, float],
    latency: dict[str, float] | None = None,
    seed: int = 0,
    offset: int = 0,
) -> None:
    """``n`` one-agent requests, each with feedback; per-arm mean ADE from ``ade``."""
    rng = np.random.default_rng(seed)
    exposures, feedback = [], []
    for i in range(offset, offset + n):
        route = router.route(f"agent-{i}")
        assert route is not None
        lat = (latency or {}).get(route.arm, 5.0)
        exposures.append(
            exposure_row(
                route, request_id=f"r{i}", n_agents=1, latency_ms=float(rng.exponential(lat))
            )
        )
        value = float(rng.lognormal(np.log(ade[route.arm]) - 0.18, 0.6))
        feedback.append(
            Feedback(
                request_id=f"r{i}",
                agent_key=f"k{i}",
                created_at=datetime.now(UTC),
                model_version="1",
                variant=route.variant,
                positions=[[0.0, 0.0]],
                n_steps=1,
                ade=value,
                fde=2 * value,
            )
        )
    from trajops.store.models import ExperimentExposure

    with store.session() as session:
        session.add_all([ExperimentExposure(**r) for r in exposures])
        session.add_all(feedback)


def test_create_conflict_and_unknown(controller: ExperimentController) -> None:
    rec = controller.create(_spec())
    assert rec.active and len(rec.salt) == 32
    with pytest.raises(ConflictError, match="still running"):
        controller.create(_spec(name="second"))
    with pytest.raises(NotFoundError):
        controller.status("nope")


def test_split_counts_metrics_and_srm(store: Store, controller: ExperimentController) -> None:
    rec = controller.create(_spec(min_samples=10_000))
    router = ExperimentRouter(controller.repo, refresh_s=60)
    _traffic(store, router, n=400, ade={"control": 0.5, "treatment": 0.5})
    st = controller.status(rec.id)
    arms = {a["name"]: a for a in st.arms}
    assert arms["control"]["requests"] + arms["treatment"]["requests"] == 400
    assert 150 < arms["treatment"]["requests"] < 250  # 50/50 by weight
    assert arms["control"]["n_feedback"] == arms["control"]["requests"]
    assert arms["treatment"]["fde"] == pytest.approx(2 * arms["treatment"]["ade"])
    assert st.srm_p_value is not None and st.srm_p_value > 0.001
    assert st.verdict == "continue"
    assert {"welch_t", "mann_whitney_u", "msprt"} <= set(st.tests["treatment"])
    assert controller.evaluate(rec.id).action is None
    assert controller.repo.get(rec.id).active


def test_worse_challenger_rolls_back_with_alert(
    store: Store, controller: ExperimentController
) -> None:
    rec = controller.create(_spec())
    router = ExperimentRouter(controller.repo, refresh_s=0)
    _traffic(store, router, n=600, ade={"control": 0.5, "treatment": 0.8})
    st = controller.evaluate(rec.id)
    assert st.verdict == "challenger_worse" and st.action == "rolled_back"
    ended = controller.repo.get(rec.id)
    assert ended.status == "rolled_back" and "significantly worse" in ended.reason
    assert router.route("agent-1") is None  # all traffic back to the control
    alerts = controller.alerts.list(status="firing")  # type: ignore[union-attr]
    assert [a["rule"] for a in alerts] == ["experiment_rollback"]
    assert controller.evaluate(rec.id).action is None  # idempotent once ended


def test_better_challenger_stops_without_auto_promote(
    store: Store, controller: ExperimentController
) -> None:
    rec = controller.create(_spec())
    _traffic(
        store, ExperimentRouter(controller.repo), n=600, ade={"control": 0.8, "treatment": 0.5}
    )
    st = controller.evaluate(rec.id)
    assert (st.verdict, st.action) == ("challenger_better", "stopped")
    assert controller.repo.get(rec.id).verdict == "challenger_better"


def test_guardrail_breach_rolls_back(store: Store, controller: ExperimentController) -> None:
    rec = controller.create(_spec(guardrails=Guardrails(p99_latency_ms=100, min_requests=50)))
    _traffic(
        store,
        ExperimentRouter(controller.repo),
        n=300,
        ade={"control": 0.5, "treatment": 0.5},
        latency={"treatment": 200.0},
    )
    st = controller.evaluate(rec.id)
    assert st.action == "rolled_back"
    assert [b.guardrail for b in st.breaches] == ["p99_latency_ms"]
    assert "guardrail breach" in controller.repo.get(rec.id).reason


def test_srm_alert_fires(store: Store, controller: ExperimentController) -> None:
    rec = controller.create(_spec(min_samples=10_000))
    router = ExperimentRouter(controller.repo)
    _traffic(store, router, n=300, ade={"control": 0.5, "treatment": 0.5})
    with store.session() as session:  # a logging bug drops most control exposures
        from sqlalchemy import delete

        from trajops.store.models import ExperimentExposure

        session.execute(
            delete(ExperimentExposure).where(
                ExperimentExposure.arm == "control", ExperimentExposure.id % 4 != 0
            )
        )
    st = controller.evaluate(rec.id)
    assert st.srm_p_value is not None and st.srm_p_value < 0.001
    firing = controller.alerts.list(status="firing")  # type: ignore[union-attr]
    assert [(a["rule"], a["key"]) for a in firing] == [("srm", f"experiment:{rec.id}")]


def test_shadow_pairs_requests(store: Store, controller: ExperimentController) -> None:
    rec = controller.create(_spec(mode="shadow", min_samples=30))
    router = ExperimentRouter(controller.repo)
    rng = np.random.default_rng(7)
    truth = rng.normal(0, 1, (200, 12, 2))  # (n, T_pred, 2)
    served = truth + rng.normal(0, 0.3, truth.shape)
    shadow = served + 0.2  # the challenger is off by a constant
    rows, fbs = [], []
    for i in range(200):
        route = router.route(f"a{i}")
        assert route is not None and route.shadow_arm == "treatment" and route.arm == "control"
        err = np.linalg.norm(served[i] - truth[i], axis=-1)
        fbs.append(
            Feedback(
                request_id=f"r{i}",
                agent_key=f"k{i}",
                created_at=datetime.now(UTC),
                model_version="1",
                variant=route.variant,
                positions=truth[i].tolist(),
                n_steps=12,
                ade=float(err.mean()),
                fde=float(err[-1]),
            )
        )
        rows.append(
            ShadowPrediction(
                experiment_id=rec.id,
                arm="treatment",
                request_id=f"r{i}",
                agent_key=f"k{i}",
                model_version="2",
                outputs=shadow[i].tolist(),
            )
        )
    with store.session() as session:
        session.add_all(fbs + rows)
    st = controller.status(rec.id)
    arms = {a["name"]: a for a in st.arms}
    assert arms["control"]["n_feedback"] == arms["treatment"]["n_feedback"] == 200
    assert st.srm_p_value is None  # everybody is served by the control
    assert st.tests["treatment"]["paired_t"]["effect"] > 0
    assert st.verdict == "challenger_worse"


def test_router_without_auto_refresh_reads_only_on_refresh(
    controller: ExperimentController,
) -> None:
    router = ExperimentRouter(controller.repo, refresh_s=None)
    assert router.route("a") is None
    rec = controller.create(_spec())
    assert router.route("a") is None  # the hot path does no I/O
    router.refresh()
    route = router.route("a")
    assert route is not None and route.experiment_id == rec.id
    assert route.variant == f"{route.arm}@{rec.id}"
    assert router.route(None) is None  # no unit id: served by default, not counted


def test_invalid_output_detection() -> None:
    from trajops.experiments.guardrails import is_invalid_output

    ok = np.zeros((3, 12, 2))
    assert not is_invalid_output(ok)
    assert is_invalid_output(np.full((1, 12, 2), np.nan))
    assert is_invalid_output(np.full((1, 2, 12, 2), 1e6))
