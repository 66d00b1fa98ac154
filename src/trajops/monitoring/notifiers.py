"""Alert notifiers: structured log, webhook (JSON POST) and SMTP. A failing notifier never raises."""

from __future__ import annotations

import json
import logging
import smtplib
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from trajops.settings import Settings

log = logging.getLogger("trajops.alerts")


class Notifier(Protocol):
    name: str

    def send(self, alert: dict[str, Any]) -> bool:
        """Deliver one alert; True on success."""
        ...


class LogNotifier:
    """Writes each alert as one JSON line on the ``trajops.alerts`` logger."""

    name = "log"

    def send(self, alert: dict[str, Any]) -> bool:
        log.warning(json.dumps({"event": "alert", **alert}, default=str, sort_keys=True))
        return True


class WebhookNotifier:
    """POSTs the alert as JSON to a URL (Slack-compatible receivers accept a ``text`` field)."""

    name = "webhook"

    def __init__(self, url: str, *, timeout_s: float = 3.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def send(self, alert: dict[str, Any]) -> bool:
        body = {
            "text": f"[{alert.get('severity')}] {alert.get('rule')}: {alert.get('message')}",
            **alert,
        }
        try:
            response = httpx.post(
                self.url,
                content=json.dumps(body, default=str),
                timeout=self.timeout_s,
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()
            return True
        except httpx.HTTPError as exc:
            log.error("webhook notifier failed: %s", exc.__class__.__name__)
            return False


class SmtpNotifier:
    """Sends the alert as a plain-text e-mail through an SMTP relay."""

    name = "smtp"

    def __init__(
        self, *, host: str, port: int, sender: str, recipients: list[str], timeout_s: float = 5.0
    ) -> None:
        self.host, self.port, self.sender, self.recipients = host, port, sender, recipients
        self.timeout_s = timeout_s

    def send(self, alert: dict[str, Any]) -> bool:
        msg = EmailMessage()
        msg["Subject"] = f"[trajops {alert.get('severity')}] {alert.get('rule')}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(json.dumps(alert, default=str, indent=2, sort_keys=True))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.send_message(msg)
            return True
        except (OSError, smtplib.SMTPException) as exc:
            log.error("smtp notifier failed: %s", exc.__class__.__name__)
            return False


def notifiers_from_settings(settings: Settings) -> list[Notifier]:
    """The log notifier always; webhook and SMTP when configured."""
    out: list[Notifier] = [LogNotifier()]
    if settings.alert_webhook_url:
        out.append(WebhookNotifier(settings.alert_webhook_url))
    if settings.smtp_host and settings.smtp_recipients:
        out.append(
            SmtpNotifier(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_sender,
                recipients=settings.smtp_recipients,
            )
        )
    return out
