"""``trajops models promote / rollback`` and ``experiments create / stop`` on the module's real
registry (``conftest.py``): their ``--json`` documents, and a refused promotion that says what
to do next (``--eval-data``, ``--force``) in both renderings."""

from __future__ import annotations

from pathlib import Path

from tests._support.cli import CliRunner

CHECK_NAMES = ["loads", "smoke", "not_worse"]


def test_promote_and_rollback_json(cli: CliRunner, gate_home: Path) -> None:
    first = cli("models", "promote", "v2", "--reason", "best", "--json")
    assert first.code == 0, first.stderr
    moved = first.json()
    assert moved["alias"] == "champion" and moved["name"] == "trajectory-forecaster"
    assert (moved["version"], moved["previous"], moved["changed"], moved["forced"]) == (
        2,
        None,
        True,
        False,
    )
    assert [c["name"] for c in moved["checks"]] == CHECK_NAMES
    assert all(set(c) == {"name", "passed", "message"} and c["passed"] for c in moved["checks"])
    assert isinstance(moved["candidate_ade"], float) and moved["champion_ade"] is None

    forced = cli("models", "promote", "3", "--force", "--json").json()
    assert (forced["version"], forced["previous"], forced["forced"]) == (3, 2, True)
    assert {c["name"]: c["passed"] for c in forced["checks"]}["not_worse"] is False
    assert forced["candidate_ade"] > forced["champion_ade"]

    again = cli("models", "promote", "3", "--json").json()
    assert (again["changed"], again["checks"]) == (False, [])

    back = cli("models", "rollback", "--json")
    assert back.code == 0, back.stderr
    rolled = back.json()
    assert (rolled["alias"], rolled["version"], rolled["previous"], rolled["changed"]) == (
        "champion",
        2,
        3,
        True,
    )
    shown = cli("models", "show", "champion", "--json").json()
    assert shown["version"] == 2 and shown["aliases"] == ["champion"]


def test_a_refused_promotion_suggests_eval_data_and_force(cli: CliRunner, gate_home: Path) -> None:
    assert cli("models", "promote", "2").code == 0
    refused = cli("models", "promote", "3")
    assert refused.code == 2 and refused.stdout == ""
    assert "refused" in refused.stderr
    assert "--eval-data PATH" in refused.stderr and "--force" in refused.stderr

    as_json = cli("models", "promote", "3", "--json")
    assert as_json.code == 2
    error = as_json.json()["error"]
    assert error["code"] == "promotion_refused"
    assert "--eval-data PATH" in error["message"] and "--force" in error["message"]
    assert error["details"] == [{"loc": ["checks", "not_worse"], "msg": error["details"][0]["msg"]}]
    assert cli("models", "show", "champion", "--json").json()["version"] == 2, "nothing moved"


def test_a_version_that_does_not_load_gets_no_hint(cli: CliRunner, gate_home: Path) -> None:
    refused = cli("models", "promote", "4", "--json")
    assert refused.code == 2
    error = refused.json()["error"]
    assert error["code"] == "promotion_refused"
    assert "--force" not in error["message"] and "--eval-data" not in error["message"]


def test_experiments_create_and_stop_json(cli: CliRunner, gate_home: Path) -> None:
    assert cli("models", "promote", "2").code == 0
    assert cli("models", "promote", "1", "--alias", "challenger").code == 0
    created = cli(
        "experiments", "create", "--name", "ab", "--arm", "control=champion:50",
        "--arm", "treatment=challenger:50", "--json",
    )  # fmt: skip
    assert created.code == 0, created.stderr
    record = created.json()
    assert record["name"] == "ab" and record["status"] == "running"
    assert isinstance(record["id"], str) and record["id"]
    stopped = cli("experiments", "stop", record["id"], "--reason", "enough", "--json")
    assert stopped.code == 0, stopped.stderr
    after = stopped.json()
    assert (after["id"], after["status"]) == (record["id"], "stopped")
    assert after["reason"] == "enough"
    listed = cli("experiments", "list", "--json").json()
    assert [(e["id"], e["status"]) for e in listed] == [(record["id"], "stopped")]
