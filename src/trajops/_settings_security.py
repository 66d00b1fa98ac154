"""The security part of the settings: API keys, rate limits, users, sessions, single sign-on.

:class:`trajops.settings.Settings` derives from :class:`SecuritySettings`: there is one settings
object, read from ``TRAJOPS_*`` variables; this module only keeps its declaration small.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

RoleName = Literal["viewer", "operator", "admin"]
"""A person's role (:class:`trajops.security.policy.Role` has the same values; a test checks)."""
ROLE_NAMES: tuple[str, ...] = get_args(RoleName)


class SecuritySettings(BaseSettings):
    """Fields of :class:`trajops.settings.Settings` about who may do what."""

    # --- security ----------------------------------------------------------------------
    auth_enabled: bool = Field(
        default=True,
        description="Require an API key (`X-API-Key` or `Authorization: Bearer`) on every non-public route.",
    )
    api_key_pepper: SecretStr | None = Field(
        default=None,
        description="Server-side secret mixed into API key hashes. Empty: a random pepper kept in `home`.",
    )
    api_key_cache_s: float = Field(
        default=5.0,
        ge=0,
        description="Seconds a verified API key is cached in-process; a revocation takes effect within this time.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve `/metrics` without an API key (else it needs the admin scope).",
    )
    rate_limit_per_s: float = Field(
        default=50.0,
        ge=0,
        description="Requests per second each API key may sustain (0 disables rate limiting).",
    )
    rate_limit_burst: int = Field(
        default=100,
        ge=1,
        description="Requests an idle API key may send at once (token bucket size).",
    )
    auth_failure_rate_per_s: float = Field(
        default=5.0,
        gt=0,
        description="Failed authentications per second one client address may sustain; beyond its burst it gets 429 until its bucket refills.",
    )
    auth_failure_burst: int = Field(
        default=50,
        ge=1,
        description="Failed authentications one client address may make at once.",
    )

    # --- users and single sign-on -------------------------------------------------------
    dashboard_login: bool = Field(
        default=True,
        description="The dashboard asks people to sign in (`trajops users`, or single sign-on) and each acts with their own role. Off: everyone acts with `dashboard_api_key` (one operator, on loopback).",
    )
    session_ttl_s: float = Field(
        default=8 * 3600.0,
        gt=0,
        description="Lifetime of a signed-in session (the dashboard's, or one from `/v1/auth/login`), in seconds.",
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer URL for single sign-on (its `/.well-known/openid-configuration` is read). Empty: sign-on with passwords only.",
    )
    oidc_client_id: str | None = Field(
        default=None, description="Client id registered at the OpenID Connect provider."
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="Client secret registered at the OpenID Connect provider."
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        description="The service's callback as browsers reach it (`https://host/v1/auth/oidc/callback`), registered at the provider. Empty: derived from each request.",
    )
    oidc_start_url: str | None = Field(
        default=None,
        description="The service's `/v1/auth/oidc/login` as browsers reach it (the dashboard's sign-on button). Empty: under `dashboard_api_url`.",
    )
    oidc_post_login_url: str | None = Field(
        default=None,
        description="Where the browser goes after single sign-on (the dashboard's URL); a one-time `login_code` is appended. Empty: the dashboard URL `http://<dashboard_host>:<dashboard_port>/`.",
    )
    oidc_groups_claim: str = Field(
        default="groups", description="ID token claim that lists the user's groups."
    )
    oidc_role_map: str = Field(
        default="",
        description="Groups to roles, highest wins: `ops-admins=admin,ops=operator,staff=viewer`. A user in none of them is refused unless `oidc_default_role` is set.",
    )
    oidc_default_role: RoleName | None = Field(
        default=None,
        description="Role of a single sign-on user in no mapped group (`viewer`, `operator`, `admin`). Empty: refused.",
    )

    @field_validator("oidc_role_map", mode="after")
    @classmethod
    def _role_map_parses(cls, value: str) -> str:
        parse_role_map(value)  # raises ValueError naming the bad entry
        return value

    @property
    def oidc_enabled(self) -> bool:
        """Single sign-on is configured (issuer and client id)."""
        return bool(self.oidc_issuer and self.oidc_client_id)


def parse_role_map(text: str) -> dict[str, RoleName]:
    """``"admins=admin, ops=operator"`` as ``{group: role}``.

    Raises:
        ValueError: an entry without ``=``, an empty group, or an unknown role (named).
    """
    out: dict[str, RoleName] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        group, sep, role = (p.strip() for p in entry.partition("="))
        if not sep or not group:
            raise ValueError(f"role map entry {entry!r} is not 'group=role'")
        if role not in ROLE_NAMES:
            raise ValueError(
                f"role map entry {entry!r}: unknown role {role!r}; choose from {', '.join(ROLE_NAMES)}"
            )
        out[group] = role  # type: ignore[assignment]  # checked against ROLE_NAMES above
    return out
