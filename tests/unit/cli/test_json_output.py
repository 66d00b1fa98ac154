"""``--json``: one JSON document on stdout per command (its schema checked here), and errors as
the API's ``{"error": {"code", "message", "details"}}`` with the usual exit statuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests._support.cli import CliRunner, Run
from trajops.settings import Settings


def _error(run: Run, *, code: str, status: int) -> dict[str, Any]:
    """The error object of a failed ``--json`` command, its shape and exit status checked."""
    assert run.code == status, (run.stdout, run.stderr)
    assert len(run.stdout.strip().splitlines()) == 1, "one JSON document, nothing else"
    payload = run.json()
    assert list(payload) == ["error"]
    error = payload["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    assert "error:" not in run.stderr, "not rendered twice"
    return error


def test_config_show_json_lists_every_variable_and_the_resolved_uris(
    cli: CliRunner, home: Path
) -> None:
    run = cli("config", "show", "--json")
    assert run.code == 0, run.stderr
    payload = run.json()
    settings = Settings(home=home)
    assert {f"TRAJOPS_{name.upper()}" for name in Settings.model_fields} <= set(payload)
    assert payload["TRAJOPS_HOME"] == str(home)
    assert payload["resolved"] == {
        "tracking_uri": settings.resolved_tracking_uri,
        "registry_uri": settings.resolved_tracking_uri,
        "artifact_root": str(home.resolve() / "artifacts"),
    }
    assert payload["resolved"]["tracking_uri"] == f"sqlite:///{home.resolve() / 'mlflow.db'}"


def test_config_show_table_prints_the_resolved_tracking_and_registry_uris(
    cli: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_uri = f"sqlite:///{home.parent / 'registry.db'}"
    monkeypatch.setenv("TRAJOPS_REGISTRY_URI", registry_uri)
    run = cli("config", "show")
    assert run.code == 0, run.stderr
    resolved = run.stdout.split("resolved", 1)[1]
    assert f"sqlite:///{home.resolve() / 'mlflow.db'}" in resolved
    assert registry_uri in resolved


def test_config_docs_json_reports_what_it_did(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    missing = cli("config", "docs", "--check", "--output", str(out), "--json")
    assert (missing.code, missing.json()) == (1, {"path": str(out), "state": "missing"})
    written = cli("config", "docs", "--output", str(out), "--json")
    assert (written.code, written.json()) == (0, {"path": str(out), "state": "written"})
    checked = cli("config", "docs", "--check", "--output", str(out), "--json")
    assert (checked.code, checked.json()) == (0, {"path": str(out), "state": "up_to_date"})


def test_data_commands_json(cli: CliRunner, home: Path, tmp_path: Path) -> None:
    tracks = tmp_path / "tracks.csv"
    simulated = cli(
        "data", "simulate", "-o", str(tracks), "--agents", "6", "--steps", "40", "--scenes", "2",
        "--json",
    )  # fmt: skip
    assert simulated.code == 0, simulated.stderr
    sim = simulated.json()
    assert sim["path"] == str(tracks) and sim["steps"] == 40 and sim["n_scenes"] == 2
    assert isinstance(sim["digest"], str) and len(sim["digest"]) == 64
    assert isinstance(sim["n_rows"], int) and sim["n_rows"] > 0

    validated = cli("data", "validate", str(tracks), "--json")
    assert validated.code == 0, validated.stderr
    valid = validated.json()
    assert valid["ok"] is True
    assert (valid["digest"], valid["n_rows"], valid["n_agents"]) == (
        sim["digest"],
        sim["n_rows"],
        sim["n_agents"],
    )

    described = cli("data", "stats", str(tracks), "--json")
    assert described.code == 0, described.stderr
    stats = described.json()
    assert (stats["rows"], stats["digest"]) == (sim["n_rows"], sim["digest"])
    assert isinstance(stats["windows"], int) and isinstance(stats["features"], dict)


def test_audit_and_privacy_json(cli: CliRunner, home: Path) -> None:
    erased = cli("privacy", "erase", "--subject", "ped-7", "--json")
    assert erased.code == 0, erased.stderr
    erasure = erased.json()
    assert isinstance(erasure["subject_ref"], str) and "ped-7" not in erasure["subject_ref"]
    assert isinstance(erasure["audit_id"], int)
    assert (erasure["predictions"], erasure["feedback"], erasure["pending_spooled"]) == (0, 0, 0)

    purged = cli("privacy", "purge", "--dry-run", "--json")
    assert purged.code == 0, purged.stderr
    purge = purged.json()
    assert purge["dry_run"] is True and purge["predictions"] == 0
    assert isinstance(purge["cutoff"], str) and isinstance(purge["audit_rows"], int)

    verified = cli("audit", "verify", "--json")
    assert verified.code == 0, verified.stderr
    verify = verified.json()
    assert verify["ok"] is True and verify["checked"] >= 1
    assert verify["head_id"] >= erasure["audit_id"] and len(verify["head_hash"]) == 64
    assert verify["first_bad_id"] is None


def test_user_errors_are_json_with_exit_status_2(
    cli: CliRunner, home: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("scene,frame,agent_id,x,y\ns,0,a,1.0,oops\n")
    error = _error(cli("data", "validate", str(bad), "--json"), code="data_error", status=2)
    assert "bad.csv" in str(error["message"])
    unknown = _error(cli("models", "show", "7", "--json"), code="model_not_found", status=2)
    assert "7" in str(unknown["message"])
    refused = _error(
        cli("experiments", "create", "--name", "x", "--arm", "nonsense", "--json"),
        code="validation_error",
        status=2,
    )
    assert refused["details"]


def test_an_invalid_setting_is_a_json_error_naming_the_variable(
    cli: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAJOPS_PORT", "eighty")
    error = _error(cli("config", "show", "--json"), code="config_error", status=2)
    assert [d["loc"] for d in error["details"]] == [["TRAJOPS_PORT"]]
    plain = cli("config", "show")
    assert plain.code == 2 and plain.stdout == ""
    assert "invalid configuration" in plain.stderr and "TRAJOPS_PORT" in plain.stderr


def test_an_unavailable_dependency_is_a_json_error_with_exit_status_3(
    cli: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAJOPS_TRACKING_URI", "http://127.0.0.1:9")
    error = _error(cli("models", "list", "--json"), code="tracking_unavailable", status=3)
    assert "127.0.0.1:9" in str(error["message"])


def test_without_json_errors_stay_one_line_on_stderr(
    cli: CliRunner, home: Path, tmp_path: Path
) -> None:
    """A --json command earlier in the same process leaves nothing behind for the next one."""
    bad = tmp_path / "bad.csv"
    bad.write_text("scene,frame,agent_id,x,y\ns,0,a,1.0,oops\n")
    assert cli("config", "show", "--json").code == 0
    assert cli("data", "validate", str(bad), "--json").code == 2
    plain = cli("data", "validate", str(bad))
    assert plain.code == 2 and plain.stdout == ""
    assert plain.stderr.startswith("error:") and "bad.csv" in plain.stderr
    with pytest.raises(json.JSONDecodeError):
        json.loads(plain.stderr)
