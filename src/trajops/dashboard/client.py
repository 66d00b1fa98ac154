"""The prediction service's HTTP API as the dashboard reads it (an admin API key).

Every call answers parsed JSON (or text) or raises a :class:`~trajops.errors.TrajopsError` whose
message says what to fix: the service unreachable, the key refused, the key lacking the admin
scope. The dashboard never writes through the API.
"""

from __future__ import annotations

from typing import Any

import httpx

from trajops.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDenied,
    ServiceUnavailable,
    TrajopsError,
    ValidationError,
)


class ServiceClient:
    """Read-only client of one prediction service.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        api_key: key sent as ``X-API-Key`` (the monitoring routes and ``/metrics`` need the
            ``admin`` scope); ``None`` sends none.
        timeout_s: timeout of each call.
    """

    def __init__(self, base_url: str, *, api_key: str | None, timeout_s: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValidationError(
                f"dashboard API URL must start with http:// or https://, got {base_url!r}",
                details=[{"loc": ["dashboard_api_url"], "msg": "not an http(s) URL"}],
            )
        self.base_url = base_url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    # --- transport --------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"prediction service at {self.base_url} unreachable ({type(exc).__name__}); "
                "check TRAJOPS_DASHBOARD_API_URL and that `trajops serve` runs"
            ) from None
        if response.status_code < 400:
            return response
        message = _error_message(response)
        if response.status_code == 401:
            raise AuthenticationError(
                f"{path}: the service refused the dashboard's API key ({message}); "
                "set TRAJOPS_DASHBOARD_API_KEY to a valid key"
            )
        if response.status_code == 403:
            raise PermissionDenied(
                f"{path}: the dashboard's API key lacks the admin scope ({message}); "
                "create one with `trajops keys create --scopes admin`"
            )
        if response.status_code == 404:
            raise NotFoundError(f"{path}: {message}")
        if response.status_code == 422:
            raise ValidationError(f"{path}: {message}")
        error = TrajopsError(f"{path}: HTTP {response.status_code}: {message}")
        error.status_code = response.status_code
        raise error

    def _json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self._get(path, params)
        try:
            return response.json()
        except ValueError:
            raise ServiceUnavailable(
                f"{path}: the service answered something other than JSON"
            ) from None

    # --- routes -----------------------------------------------------------------------
    def readiness(self) -> dict[str, Any]:
        """``/readyz``: readiness per dependency (a 503 body is an answer too)."""
        try:
            response = self._http.get("/readyz")
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"prediction service at {self.base_url} unreachable ({type(exc).__name__})"
            ) from None
        body: dict[str, Any] = response.json()
        return body

    def models(self) -> dict[str, Any]:
        """``/v1/models``: loaded versions, aliases and load times of the serving process."""
        out: dict[str, Any] = self._json("/v1/models")
        return out

    def performance(self, window: str = "1h") -> dict[str, Any]:
        """``/v1/monitoring/performance``: online ADE/FDE per version next to the offline one."""
        out: dict[str, Any] = self._json("/v1/monitoring/performance", {"window": window})
        return out

    def drift_reports(self, limit: int = 50) -> list[dict[str, Any]]:
        """Stored drift runs, newest first."""
        return list(self._json("/v1/monitoring/drift", {"limit": limit})["reports"])

    def drift_report_html(self, report_id: int) -> str:
        """The Evidently HTML report of one drift run."""
        return self._get(f"/v1/monitoring/drift/{int(report_id)}/report").text

    def alerts(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Alerts, most recently seen first (``status``: ``firing`` or ``resolved``)."""
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return list(self._json("/v1/monitoring/alerts", params)["alerts"])

    def experiments(self) -> list[dict[str, Any]]:
        """Experiments, newest first."""
        return list(self._json("/v1/experiments"))

    def experiment_status(self, experiment_id: str) -> dict[str, Any]:
        """Arms with counts and metrics, tests, verdict, SRM p-value of one experiment."""
        out: dict[str, Any] = self._json(f"/v1/experiments/{experiment_id}")
        return out

    def metrics_text(self) -> str:
        """``/metrics``: the Prometheus exposition of the process that answers."""
        return self._get("/metrics").text


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase
