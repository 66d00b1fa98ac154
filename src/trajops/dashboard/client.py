"""The prediction service's HTTP API as the dashboard uses it: with the signed-in person's
session (or, with sign-in off, the dashboard's API key).

Every call answers parsed JSON (or text) or raises a :class:`~trajops.errors.TrajopsError` whose
message says what to fix: the service unreachable, the sign-in or key refused, a role without
the scope. Every change the dashboard makes (promote, roll back, experiments, people, keys)
goes through the API, so it is authorised and audited there, never against the store.
"""

from __future__ import annotations

from typing import Any

import httpx

from trajops.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    ServiceUnavailable,
    TrajopsError,
    ValidationError,
)
from trajops.security.sessions import is_session_token

LOGIN = "/v1/auth/login"


class ServiceClient:
    """Client of one prediction service.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        api_key: a session token or API key, sent as ``X-API-Key``; ``None`` sends none.
        timeout_s: timeout of each call.
    """

    def __init__(self, base_url: str, *, api_key: str | None, timeout_s: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValidationError(
                f"dashboard API URL must start with http:// or https://, got {base_url!r}",
                details=[{"loc": ["dashboard_api_url"], "msg": "not an http(s) URL"}],
            )
        self.base_url = base_url.rstrip("/")
        self.session = is_session_token(api_key)
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def signed_in(self, token: str) -> ServiceClient:
        """A client of the same service that acts with ``token`` (a session)."""
        return ServiceClient(self.base_url, api_key=token, timeout_s=self._http.timeout.read or 10)

    def close(self) -> None:
        self._http.close()

    # --- transport --------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return self._request("GET", path, params=params)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"prediction service at {self.base_url} unreachable ({type(exc).__name__}); "
                "check TRAJOPS_DASHBOARD_API_URL and that `trajops serve` runs"
            ) from None
        if response.status_code < 400:
            return response
        message = _error_message(response)
        if response.status_code == 401:
            if self.session or path.startswith("/v1/auth"):  # a person's sign-in
                raise AuthenticationError(message + ("; sign in again" if self.session else ""))
            raise AuthenticationError(
                f"{path}: the service refused the dashboard's API key ({message}); "
                "set TRAJOPS_DASHBOARD_API_KEY to a valid key"
            )
        if response.status_code == 403:
            raise PermissionDenied(
                f"{path}: your role does not allow this ({message})"
                if self.session
                else f"{path}: the dashboard's API key lacks the scope ({message}); "
                "create one with `trajops keys create --scopes read,operate`"
            )
        if response.status_code == 404:
            raise NotFoundError(f"{path}: {message}")
        if response.status_code == 409:
            raise ConflictError(message)
        if response.status_code == 422:
            raise ValidationError(f"{path}: {message}")
        error = TrajopsError(f"{path}: HTTP {response.status_code}: {message}")
        error.status_code = response.status_code
        raise error

    def _json(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        method: str = "GET",
        body: Any = None,
    ) -> Any:
        response = self._request(method, path, params=params, body=body)
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

    def performance(self, window: str = "1h", *, by: str | None = None) -> dict[str, Any]:
        """``/v1/monitoring/performance``: online ADE/FDE and miss rate per version next to the
        offline figures; ``by="scene"``: one row per version, variant and scene pseudonym."""
        params = {"window": window} if by is None else {"window": window, "by": by}
        out: dict[str, Any] = self._json("/v1/monitoring/performance", params)
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

    # --- people -----------------------------------------------------------------------
    def login(self, username: str, password: str) -> dict[str, Any]:
        """A session for ``username`` (``token``, ``user``, ``scopes``, ``expires_at``)."""
        body = {"username": username, "password": password}
        out: dict[str, Any] = self._json(LOGIN, method="POST", body=body)
        return out

    def redeem(self, code: str) -> dict[str, Any]:
        """The session a single sign-on's one-time ``login_code`` stands for."""
        out: dict[str, Any] = self._json(
            "/v1/auth/oidc/exchange", method="POST", body={"code": code}
        )
        return out

    def logout(self) -> None:
        self._request("POST", "/v1/auth/logout")

    def users(self) -> list[dict[str, Any]]:
        return list(self._json("/v1/users"))

    def create_user(self, name: str, role: str) -> dict[str, Any]:
        """A new user; the answer holds the generated ``password`` (shown once)."""
        out: dict[str, Any] = self._json(
            "/v1/users", method="POST", body={"name": name, "role": role}
        )
        return out

    def disable_user(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json(f"/v1/users/{name}/disable", method="POST")
        return out

    def keys(self) -> list[dict[str, Any]]:
        return list(self._json("/v1/keys"))

    def create_key(self, name: str, scopes: list[str], owner: str | None) -> dict[str, Any]:
        """A new API key; the answer holds its ``token`` (shown once)."""
        body = {"name": name, "scopes": scopes, "owner": owner or None}
        out: dict[str, Any] = self._json("/v1/keys", method="POST", body=body)
        return out

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json(f"/v1/keys/{key_id}/revoke", method="POST")
        return out

    # --- actions ----------------------------------------------------------------------
    def promote(self, version: str, *, alias: str, reason: str, force: bool) -> dict[str, Any]:
        """Move ``alias`` to ``version`` through the promotion gate."""
        body = {"alias": alias, "reason": reason, "force": force}
        out: dict[str, Any] = self._json(f"/v1/models/{version}/promote", method="POST", body=body)
        return out

    def rollback(self, *, alias: str, reason: str) -> dict[str, Any]:
        body = {"alias": alias, "reason": reason}
        out: dict[str, Any] = self._json("/v1/models/rollback", method="POST", body=body)
        return out

    def start_experiment(self, spec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._json("/v1/experiments", method="POST", body=spec)
        return out

    def end_experiment(self, experiment_id: str, *, how: str, reason: str) -> dict[str, Any]:
        """``how``: ``stop`` (challengers stop) or ``rollback`` (and aliases restored)."""
        out: dict[str, Any] = self._json(
            f"/v1/experiments/{experiment_id}/{how}", method="POST", body={"reason": reason}
        )
        return out


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase
