"""People and keys (admins): users with their roles, API keys with their owners; create,
disable, revoke. Passwords and tokens are shown once, right after they are made."""

from __future__ import annotations

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.dashboard.views._common import load, when
from trajops.dashboard.views.actions import act, flash

ROLES = ("viewer", "operator", "admin")
SCOPES = ("predict", "pin", "feedback", "read", "operate", "admin")


def render(ctx: DashboardContext) -> None:
    st.title("People and keys")
    if not ctx.can("admin"):
        st.info("Only admins manage people and keys.")
        return
    flash()
    _users(ctx)
    _keys(ctx)


def _users(ctx: DashboardContext) -> None:
    st.subheader("Users")
    users = load("users (/v1/users)", ctx.client.users) or []
    st.dataframe(
        [
            {
                "name": u["name"],
                "role": u["role"],
                "source": u["source"],
                "status": u["status"],
                "last login": when(u["last_login_at"]) if u["last_login_at"] else "-",
            }
            for u in users
        ],
        hide_index=True,
    )
    left, right = st.columns(2)
    with left.form("create_user", clear_on_submit=True):
        st.markdown("**New user** (a password is generated and shown once)")
        name = st.text_input("name", key="new_user_name")
        role = st.selectbox("role", ROLES, key="new_user_role")
        create = st.form_submit_button("Create user")
    if create:
        act(
            f"user {name} (password below)",
            lambda: ctx.client.create_user(name.strip(), role),
            shown_once="password",
        )
    active = [u["name"] for u in users if u["status"] == "active" and u["name"] != ctx.user]
    with right.form("disable_user"):
        st.markdown("**Disable a user** (their sessions end, their keys stop)")
        who = st.selectbox("user", active, key="disable_user_name")
        disable = st.form_submit_button("Disable", disabled=not active)
    if disable and who:
        act(f"disabling {who}", lambda: ctx.client.disable_user(who))


def _keys(ctx: DashboardContext) -> None:
    st.subheader("API keys")
    keys = load("API keys (/v1/keys)", ctx.client.keys) or []
    st.dataframe(
        [
            {
                "id": k["id"],
                "name": k["name"],
                "owner": k["owner"] or "-",
                "scopes": ", ".join(k["scopes"]),
                "status": k["status"],
                "last used": when(k["last_used_at"]) if k["last_used_at"] else "-",
            }
            for k in keys
        ],
        hide_index=True,
    )
    left, right = st.columns(2)
    with left.form("create_key", clear_on_submit=True):
        st.markdown("**New key** (its token is shown once)")
        name = st.text_input("name", key="new_key_name")
        scopes = st.multiselect("scopes", SCOPES, default=["predict"], key="new_key_scopes")
        owner = st.text_input("owner (a user name, optional)", key="new_key_owner")
        create = st.form_submit_button("Create key")
    if create:
        act(
            f"key {name} (token below)",
            lambda: ctx.client.create_key(name.strip(), list(scopes), owner.strip()),
            shown_once="token",
        )
    active = [k["id"] for k in keys if k["status"] == "active"]
    with right.form("revoke_key"):
        st.markdown("**Revoke a key**")
        key_id = st.selectbox("key", active, key="revoke_key_id")
        revoke = st.form_submit_button("Revoke", disabled=not active)
    if revoke and key_id:
        act(f"revoking {key_id}", lambda: ctx.client.revoke_key(key_id))
