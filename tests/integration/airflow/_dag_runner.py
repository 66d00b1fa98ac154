"""Runs trajops DAGs with ``dag.test()`` in a process of its own and prints what happened.

Airflow configures logging, settings and its ORM when imported, so the tests never import it
into the pytest process: they run this script with ``AIRFLOW_*`` / ``TRAJOPS_*`` variables set
and read one ``RESULT`` JSON line per action from its output.

Usage: ``python _dag_runner.py '<JSON list of actions>'``; an action is ``{"action": "dagbag"}``,
``{"action": "test", "dag_id": ..., "logical_date": ISO, "conf": {...}}`` (``run_after`` is the
logical date, so running the same action again reruns the same Airflow run id, like a clear),
or ``{"action": "call", "function": "module:name", "kwargs": {...}}`` (test set-up between runs).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from datetime import datetime
from typing import Any

MARKER = "TRAJOPS-DAG-RESULT "


def _describe(dag: Any) -> dict[str, Any]:
    args = dag.default_args
    return {
        "schedule": repr(dag.schedule) if dag.schedule is not None else None,
        "timetable": type(dag.timetable).__name__,
        "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
        "mapped": sorted(t.task_id for t in dag.tasks if getattr(t, "is_mapped", False)),
        "callables": sorted(
            {
                f"{fn.__module__}.{fn.__qualname__}"
                for t in dag.tasks
                if (fn := getattr(t, "python_callable", None) or _partial_callable(t))
            }
        ),
        "outlets": {t.task_id: [o.uri for o in t.outlets] for t in dag.tasks if t.outlets},
        "retries": args.get("retries"),
        "retry_delay_s": args["retry_delay"].total_seconds(),
        "backoff": args.get("retry_exponential_backoff"),
        "max_retry_delay_s": args["max_retry_delay"].total_seconds(),
        "timeout_s": args["execution_timeout"].total_seconds(),
        "on_failure_callback": args["on_failure_callback"].__qualname__,
        "params": sorted(dag.params.keys()),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
    }


def _partial_callable(t: Any) -> Any:
    return getattr(t, "partial_kwargs", {}).get("python_callable")


def _dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def _test(bag: Any, action: dict[str, Any]) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = bag.get_dag(action["dag_id"])
    logical = datetime.fromisoformat(action["logical_date"])
    dr = dag.test(logical_date=logical, run_after=logical, run_conf=action.get("conf"))
    with create_session() as session:
        tis = [
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": str(ti.state),
                "try_number": ti.try_number,
            }
            for ti in dr.get_task_instances(session=session)
        ]
        rows = session.scalars(
            XComModel.get_many(run_id=dr.run_id, dag_ids=dr.dag_id, key="return_value")
        ).all()
        xcom = {
            f"{x.task_id}" + (f"[{x.map_index}]" if x.map_index >= 0 else ""): (
                XComModel.deserialize_value(x)
            )
            for x in rows
        }
    return {"state": str(dr.state), "run_id": dr.run_id, "tasks": tis, "xcom": xcom}


def main(actions: list[dict[str, Any]]) -> None:
    bag = _dagbag()
    for action in actions:
        if action["action"] == "call":
            module, _, name = action["function"].partition(":")
            result = {
                "returned": getattr(importlib.import_module(module), name)(**action["kwargs"])
            }
        elif action["action"] == "dagbag":
            result: dict[str, Any] = {
                "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                "dags": {dag_id: _describe(dag) for dag_id, dag in bag.dags.items()},
            }
        else:
            try:
                result = _test(bag, action)
            except Exception as exc:  # a refused run (bad params) is a result to assert on
                if not action.get("expect_error"):
                    raise
                result = {"error": f"{type(exc).__name__}: {exc}"}
        print(MARKER + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
