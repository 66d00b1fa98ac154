"""Alert state (de-duplication, cool-down, resolution) and notifiers against real local receivers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests._support.services import free_port
from trajops.monitoring.alerts import AlertManager, HealthSnapshot, Signal, evaluate_rules
from trajops.monitoring.notifiers import LogNotifier, SmtpNotifier, WebhookNotifier
from trajops.settings import Settings
from trajops.store import Store


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, alert: dict[str, Any]) -> bool:
        self.sent.append(alert)
        return True


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ops.db'}")


def test_dedup_cooldown_and_resolve(store: Store) -> None:
    rec = Recorder()
    manager = AlertManager(store, [rec], cooldown_s=3600)
    signal = Signal("drift", "inputs", True, "drift in mean_speed")
    first = manager.fire(signal)
    second = manager.fire(signal)
    assert first["notified"] and not second["notified"]
    assert len(rec.sent) == 1
    firing = manager.list(status="firing")
    assert len(firing) == 1 and firing[0]["count"] == 2
    manager.apply([Signal("drift", "inputs", False, "ok")])
    assert manager.list(status="firing") == []
    assert rec.sent[-1]["status"] == "resolved"
    manager.fire(signal)  # fires anew after resolution: a new row, notified at once
    assert len(manager.list()) == 2 and len(rec.sent) == 3


def test_zero_cooldown_notifies_every_time(store: Store) -> None:
    rec = Recorder()
    manager = AlertManager(store, [rec], cooldown_s=0)
    for _ in range(3):
        manager.fire(Signal("error_rate", "api", True, "errors"))
    assert len(rec.sent) == 3


def test_rules_fire_on_thresholds_only() -> None:
    settings = Settings(
        alert_min_feedback=10, alert_ade_ratio=1.25, alert_p99_latency_ms=100, alert_error_rate=0.05
    )
    snap = HealthSnapshot(
        drift_persistent=True,
        drifted_features=["mean_speed"],
        online_ade={"3": (50, 0.70), "4": (50, 0.52), "5": (5, 9.0)},
        offline_ade={"3": 0.50, "4": 0.50, "5": 0.50},
        p99_latency_ms=80.0,
        error_rate=0.2,
        model_load_failures=0,
    )
    signals = {(s.rule, s.key): s.firing for s in evaluate_rules(snap, settings)}
    assert signals[("drift", "inputs")] is True
    assert signals[("accuracy_degradation", "version:3")] is True
    assert signals[("accuracy_degradation", "version:4")] is False
    assert ("accuracy_degradation", "version:5") not in signals  # too little feedback
    assert signals[("latency_p99", "predict")] is False
    assert signals[("error_rate", "api")] is True
    assert signals[("model_load_failure", "pool")] is False


def test_webhook_notifier_posts_json_to_a_real_receiver() -> None:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        assert WebhookNotifier(url).send({"rule": "drift", "severity": "warning", "message": "m"})
    finally:
        server.shutdown()
    assert received[0]["rule"] == "drift" and "drift" in received[0]["text"]
    assert not WebhookNotifier(f"http://127.0.0.1:{free_port()}/closed", timeout_s=0.5).send(
        {"rule": "x"}
    )


def test_smtp_notifier_delivers_to_a_real_smtp_server() -> None:
    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            messages.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        notifier = SmtpNotifier(
            host="127.0.0.1", port=port, sender="t@localhost", recipients=["ops@localhost"]
        )
        assert notifier.send({"rule": "latency_p99", "severity": "warning", "message": "slow"})
    finally:
        controller.stop()
    assert messages and messages[0].rcpt_tos == ["ops@localhost"]
    assert b"latency_p99" in messages[0].content


def test_log_notifier_writes_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="trajops.alerts"):
        LogNotifier().send({"rule": "drift", "message": "m"})
    payload = json.loads(caplog.records[-1].getMessage())
    assert payload["event"] == "alert" and payload["rule"] == "drift"
