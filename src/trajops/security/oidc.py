"""Single sign-on with OpenID Connect: the authorization code flow with PKCE, as a confidential
client of the operator's identity provider.

The service is the client: ``begin`` sends the browser to the provider with a fresh ``state``,
``nonce`` and PKCE verifier, kept in a signed, short-lived cookie (so any replica sharing the
key can finish the flow); ``finish`` exchanges the code, validates the ID token against the
provider's published keys (issuer, audience, expiry, nonce), and maps the user's groups to a
role. Who the person is in trajops is then up to :class:`~trajops.security.users.Users`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from trajops._settings_security import parse_role_map
from trajops.errors import AuthenticationError, ServiceUnavailable
from trajops.security.policy import Role
from trajops.settings import Settings

FLOW_TTL_S = 600.0
"""How long a started sign-in may take at the provider."""
_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
_NAME_CHARS = re.compile(r"[^a-z0-9._@-]+")


@dataclass(frozen=True)
class OidcConfig:
    """Where the provider is and how its groups map to roles."""

    issuer: str
    client_id: str
    client_secret: str | None
    groups_claim: str = "groups"
    role_map: tuple[tuple[str, Role], ...] = ()
    default_role: Role | None = None
    scopes: str = "openid profile email"


@dataclass(frozen=True)
class Identity:
    """A person the provider vouched for."""

    subject: str  # issuer and ``sub``: unique across providers
    name: str
    role: Role
    groups: tuple[str, ...]


def _refused(message: str) -> AuthenticationError:
    return AuthenticationError(message, details=[{"loc": ["oidc"], "msg": "sign-in refused"}])


def user_name(claims: dict[str, Any], subject: str) -> str:
    """A trajops user name from the claims (``preferred_username``, ``email``, else derived)."""
    for claim in ("preferred_username", "email"):
        value = _NAME_CHARS.sub("-", str(claims.get(claim) or "").strip().lower())[:64]
        if len(value) >= 2 and value[0].isalnum():
            return value
    return "sso-" + hashlib.sha256(subject.encode()).hexdigest()[:12]


class OidcClient:
    """The service's side of the sign-in.

    Args:
        config: provider and role mapping.
        signing_key: secret that signs the flow cookie (the API key pepper).
        timeout_s: timeout of each call to the provider.
    """

    def __init__(self, config: OidcConfig, *, signing_key: bytes, timeout_s: float = 10.0) -> None:
        self.config = config
        self._key = signing_key
        self._http = httpx.Client(timeout=timeout_s)
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcClient:
        from trajops.security.keys import load_or_create_pepper

        assert settings.oidc_issuer and settings.oidc_client_id
        secret = settings.oidc_client_secret
        config = OidcConfig(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            groups_claim=settings.oidc_groups_claim,
            role_map=tuple((g, Role(r)) for g, r in parse_role_map(settings.oidc_role_map).items()),
            default_role=Role(settings.oidc_default_role) if settings.oidc_default_role else None,
        )
        return cls(config, signing_key=load_or_create_pepper(settings))

    def close(self) -> None:
        self._http.close()

    # --- the provider ----------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached for an hour)."""
        with self._lock:
            if self._metadata is not None and self._metadata[0] > time.monotonic():
                return self._metadata[1]
        url = f"{self.config.issuer}/.well-known/openid-configuration"
        document = self._get_json(url)
        with self._lock:
            self._metadata = (time.monotonic() + 3600.0, document)
        return document

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailable(
                f"identity provider unreachable at {url} ({type(exc).__name__})"
            ) from None
        return body

    # --- the flow --------------------------------------------------------------------
    def begin(self, redirect_uri: str) -> tuple[str, str]:
        """The provider's authorization URL and the signed flow cookie to set."""
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.config.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        url = f"{self.metadata()['authorization_endpoint']}?{urlencode(params)}"
        flow = {"s": state, "n": nonce, "v": verifier, "r": redirect_uri}
        return url, self._sign({**flow, "exp": time.time() + FLOW_TTL_S})

    def finish(self, *, code: str, state: str, cookie: str | None) -> Identity:
        """The person behind an authorization response.

        Raises:
            AuthenticationError: a missing, forged or expired flow; a state mismatch; a token
                the provider's keys do not validate; no group that maps to a role.
            ServiceUnavailable: the provider cannot be reached.
        """
        flow = self._unsign(cookie)
        if not hmac.compare_digest(str(flow["s"]), state):
            raise _refused("sign-in state does not match; start the sign-in again")
        meta = self.metadata()
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow["r"],
            "code_verifier": flow["v"],
            "client_id": self.config.client_id,
        }
        auth = (self.config.client_id, self.config.client_secret or "")
        try:
            response = self._http.post(meta["token_endpoint"], data=data, auth=auth)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"identity provider unreachable ({type(exc).__name__})"
            ) from None
        try:
            id_token = str(response.json()["id_token"]) if response.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            id_token = None
        if id_token is None:
            raise _refused(f"the identity provider refused the code (HTTP {response.status_code})")
        claims = self._validate(id_token, nonce=str(flow["n"]))
        subject = f"{self.config.issuer}|{claims['sub']}"
        groups = claims.get(self.config.groups_claim) or []
        groups = (groups,) if isinstance(groups, str) else tuple(str(g) for g in groups)
        return Identity(
            subject=subject,
            name=user_name(dict(claims), subject),
            role=self.role_for(groups),
            groups=groups,
        )

    def role_for(self, groups: tuple[str, ...]) -> Role:
        """The highest role any of ``groups`` maps to, else the default role.

        Raises:
            AuthenticationError: no mapped group and no default role.
        """
        roles = [role for group, role in self.config.role_map if group in groups]
        if roles:
            return max(roles, key=_RANK.__getitem__)
        if self.config.default_role is not None:
            return self.config.default_role
        raise _refused(
            "your identity provider groups grant no trajops role; ask an admin to map one "
            "(TRAJOPS_OIDC_ROLE_MAP)"
        )

    def _validate(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        registry = jwt.JWTClaimsRegistry(
            leeway=30,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            keys = KeySet.import_key_set(self._get_json(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
            token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256", "PS256", "EdDSA"])
            registry.validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise _refused(f"the identity provider's ID token is not valid ({exc})") from None
        return dict(token.claims)

    # --- the signed flow cookie -------------------------------------------------------
    def _sign(self, payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def _unsign(self, cookie: str | None) -> dict[str, Any]:
        body, _, mac = (cookie or "").partition(".")
        expected = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
        if not body or not hmac.compare_digest(mac, expected):
            raise _refused("no sign-in in progress in this browser; start the sign-in again")
        payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body))
        if float(payload.get("exp", 0)) < time.time():
            raise _refused("the sign-in took too long; start it again")
        return payload
