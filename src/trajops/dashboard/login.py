"""Signing in to the dashboard: a password form (and a single sign-on button when configured),
the session kept in this browser session, signing out.

The session lives in Streamlit's per-connection state: it is not written to a cookie, so a
reload of the page asks to sign in again (the service's session itself lasts
``TRAJOPS_SESSION_TTL_S``). A single sign-on comes back with a one-time ``login_code`` in the
URL, redeemed here at once and removed from the address bar.
"""

from __future__ import annotations

import contextlib
import html
import re
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from trajops.dashboard.client import ServiceClient
from trajops.dashboard.context import DashboardContext
from trajops.errors import TrajopsError

SESSION = "trajops_session"
"""Key of the signed-in session in ``st.session_state``."""


def _plain(text: str) -> str:
    """``text`` (from a URL) with Markdown's special characters escaped, at most 300 long."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~])", r"\\\1", text[:300])


def _keep(ctx: DashboardContext, session: dict[str, Any]) -> None:
    client = ctx.client.signed_in(str(session["token"]))
    st.session_state[SESSION] = {**session, "client": client}


def _expired(session: dict[str, Any]) -> bool:
    return datetime.fromisoformat(str(session["expires_at"])) <= datetime.now(UTC)


def forget() -> None:
    """Drop this browser session's sign-in (after sign-out, expiry or a refused session)."""
    session = st.session_state.pop(SESSION, None)
    if session is not None:
        session["client"].close()


def current(ctx: DashboardContext) -> DashboardContext | None:
    """``ctx`` acting as the signed-in person; None when nobody is (the caller shows
    :func:`render`). With sign-in off, ``ctx`` itself."""
    if not ctx.config.login:
        return ctx
    session = st.session_state.get(SESSION)
    if session is None:
        return None
    if _expired(session):
        forget()
        return None
    client: ServiceClient = session["client"]
    return ctx.as_user(client, user=str(session["user"]), scopes=frozenset(session["scopes"]))


def _redeem_sso(ctx: DashboardContext) -> None:
    """Turn a single sign-on's ``login_code`` (or ``login_error``) in the URL into a session
    (or a message), and take it out of the address bar."""
    params = st.query_params
    if "login_error" in params:  # anyone can craft this URL: shown as plain text only
        st.error(f"Single sign-on failed: {_plain(params['login_error'])}")
        del params["login_error"]
    code = params.get("login_code")
    if code:
        del params["login_code"]
        try:
            _keep(ctx, ctx.client.redeem(code))
        except TrajopsError as exc:
            st.error(f"Single sign-on failed: {exc.message}")
            return
        st.rerun()


def render(ctx: DashboardContext) -> None:
    """The sign-in page."""
    st.title("trajops operations")
    _redeem_sso(ctx)
    st.subheader("Sign in")
    with st.form("login", clear_on_submit=False):
        username = st.text_input("User name", key="login_username")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if not username or not password:
            st.error("Enter a user name and a password.")
        else:
            try:
                session = ctx.client.login(username.strip(), password)
            except TrajopsError as exc:
                st.error(f"Sign-in refused: {exc.message}")
            else:
                _keep(ctx, session)
                st.rerun()
    if ctx.config.sso_url:
        # A plain link in this tab (st.link_button opens a new one): the provider sends the
        # browser back here with the login code.
        href = html.escape(ctx.config.sso_url, quote=True)
        st.markdown(
            f'<a href="{href}" target="_self">Sign in with single sign-on</a>',
            unsafe_allow_html=True,
        )
    st.caption(
        "Accounts are created by an admin (`trajops users create NAME --role viewer`). "
        "Viewers read; operators also promote, roll back and run experiments; admins also "
        "manage people and keys."
    )


def role_of(scopes: frozenset[str]) -> str:
    """The role a session's scopes stand for."""
    if "admin" in scopes:
        return "admin"
    return "operator" if "operate" in scopes else "viewer"


def sidebar(ctx: DashboardContext) -> None:
    """Who is signed in, with what role, and the sign-out button."""
    if ctx.user is None:
        return
    st.caption(f"Signed in as **{ctx.user}** ({role_of(ctx.scopes or frozenset())})")
    if st.button("Sign out", key="logout"):
        with contextlib.suppress(TrajopsError):  # dropped here either way; it expires anyway
            ctx.client.logout()
        forget()
        st.rerun()
