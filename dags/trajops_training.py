"""``trajops_training`` (on demand) and ``trajops_retraining`` (weekly and on a drift alert).

Both run the same chain, each task one function of :mod:`trajops.pipelines`:
extract -> validate -> features -> candidates -> train (mapped over model types) -> evaluate
-> register -> promote (gated; challenger, or champion for a first model) -> A/B experiment.
Without a ``source``, extract harvests the production windows the operational store holds
(the service's own scored forecasts and reported ground truth) and the gate scores on the most
recent ones the candidate never saw; the simulator is the source only where there are too few.
XCom carries only small metadata; the data lives in the run's workspace
(``TRAJOPS_PIPELINE_ROOT``) and in MLflow. Retries, back-off, timeouts and the failure
callback come from ``TRAJOPS_PIPELINE_*`` settings (see docs/airflow.md).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, task

from trajops.pipelines import DRIFT_ALERT_ASSET, DRIFT_ALERT_NAME, data, training
from trajops.pipelines.failure import default_args, notify_failure

RUN_KEY = "{{ dag.dag_id }}/{{ run_id }}"
PARAMS = {
    "source": Param(
        None,
        type=["null", "string"],
        description="Tracks file/folder or ETH/UCY root; empty: production data (a harvest "
        "of the operational store), or simulated crowds where there is too little of it.",
    ),
    "since": Param(
        None,
        type=["null", "string"],
        description="How far back a harvest reaches (30d, an ISO date); empty: all kept.",
    ),
    "fold": Param(None, type=["null", "string"], description="ETH/UCY held-out scene."),
    "models": Param(
        ["cv", "linear", "neural"],
        type="array",
        items={"type": "string", "enum": ["cv", "linear", "neural"]},
        minItems=1,
        description="Model types to train as candidates.",
    ),
    "epochs": Param(8, type="integer", minimum=1, description="Epochs of the neural model."),
    "seed": Param(None, type=["null", "integer"], description="Empty: derived from the run."),
    "sim_scenes": Param(6, type="integer", minimum=3, description="Simulated scenes."),
    "sim_agents": Param(16, type="integer", minimum=2, description="Simulated agents per scene."),
    "sim_steps": Param(160, type="integer", minimum=20, description="Simulated steps per scene."),
    "challenger_traffic": Param(
        10.0, type="number", exclusiveMinimum=0, exclusiveMaximum=100, description="A/B share, %."
    ),
    "auto_promote": Param(False, type="boolean", description="Promote a significant winner."),
}


def training_chain() -> None:
    """The task graph of both DAGs (wiring only)."""
    extracted = task(data.extract, task_id="extract")(
        run_key=RUN_KEY,
        source="{{ params.source }}",
        fold="{{ params.fold }}",
        seed="{{ params.seed }}",
        sim_scenes="{{ params.sim_scenes }}",
        sim_agents="{{ params.sim_agents }}",
        sim_steps="{{ params.sim_steps }}",
        since="{{ params.since }}",
    )
    validated = task(data.validate, task_id="validate")(run_key=RUN_KEY)
    features = task(data.build_features, task_id="build_features")(run_key=RUN_KEY)
    models = task(training.candidates, task_id="candidates")(models="{{ params.models }}")
    trained = (
        task(training.train_candidate, task_id="train", map_index_template="{{ model }}")
        .partial(run_key=RUN_KEY, epochs="{{ params.epochs }}")
        .expand(model=models)
    )
    evaluation = task(training.evaluate_candidates, task_id="evaluate")(
        run_key=RUN_KEY, trained=trained
    )
    registered = task(training.register_best, task_id="register")(
        run_key=RUN_KEY, evaluation=evaluation
    )
    promotion = task(training.promote_candidate, task_id="promote")(
        run_key=RUN_KEY, registered=registered
    )
    task(training.start_experiment, task_id="start_experiment")(
        run_key=RUN_KEY,
        promotion=promotion,
        challenger_traffic="{{ params.challenger_traffic }}",
        auto_promote="{{ params.auto_promote }}",
    )
    extracted >> validated >> features >> models


COMMON = {
    "start_date": datetime(2026, 1, 1),
    "catchup": False,
    "max_active_runs": 1,
    "render_template_as_native_obj": True,
    "default_args": default_args(),
    "on_failure_callback": notify_failure,  # the run as a whole failed
    "params": PARAMS,
}

with DAG(
    "trajops_training",
    schedule=None,
    description="Train candidates, register the best, promote it (gated), start an A/B test.",
    tags=["trajops", "training"],
    **COMMON,
):
    training_chain()

with DAG(
    "trajops_retraining",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"),
        assets=Asset(name=DRIFT_ALERT_NAME, uri=DRIFT_ALERT_ASSET),
    ),
    description="Retrain weekly and whenever the monitoring DAG signals persistent drift.",
    tags=["trajops", "training", "retraining"],
    **COMMON,
):
    training_chain()
