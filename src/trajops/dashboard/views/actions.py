"""What an operator does from the dashboard: promote and roll back models, start and end A/B
experiments. Every action is a call to the service's API with the person's own session, so the
service authorises it and writes it to the audit trail; a viewer sees the controls disabled
with the reason."""

from __future__ import annotations

from typing import Any

import streamlit as st

from trajops.dashboard.context import DashboardContext
from trajops.errors import TrajopsError

ALIASES = ("champion", "challenger")


def _read_only_note(ctx: DashboardContext) -> bool:
    """True (after a note) when this person may not act."""
    if ctx.can("operate"):
        return False
    st.info(f"Read-only: {ctx.user or 'this key'} has no operator role; ask an admin.")
    return True


FLASH = "trajops_flash"
"""Key of the last action's outcome, shown once after the page re-reads its data."""


def act(what: str, action: Any, *, shown_once: str | None = None) -> None:
    """Run one API call, then re-run the page so it shows the new state, with the outcome
    (and ``shown_once(result)``'s key, a password or a token) on top; a refusal is shown
    with the service's reason."""
    try:
        result = action()
    except TrajopsError as exc:
        st.error(f"{what} refused: {exc.message}")
        return
    secret = str(result[shown_once]) if shown_once else None
    st.session_state[FLASH] = (f"{what}: done", secret)
    st.rerun()


def flash() -> None:
    """The outcome of the action that led here, once."""
    done = st.session_state.pop(FLASH, None)
    if done is None:
        return
    message, secret = done
    st.success(message)
    if secret is not None:
        st.code(secret, language=None)
        st.caption("Store this now: it is not shown again.")


def model_actions(ctx: DashboardContext, versions: list[Any]) -> None:
    """Promote a version to an alias through the gate, or roll an alias back."""
    st.subheader("Actions")
    read_only = _read_only_note(ctx)
    left, right = st.columns(2)
    with left.form("promote"):
        st.markdown("**Promote** (the gate scores the version first)")
        newest_first = sorted((str(v) for v in versions), key=int, reverse=True)
        version = st.selectbox("version", newest_first, key="promote_version")
        alias = st.selectbox("alias", ALIASES, key="promote_alias")
        reason = st.text_input("reason", key="promote_reason")
        force = st.checkbox("force past failed checks (recorded)", key="promote_force")
        go = st.form_submit_button("Promote", disabled=read_only)
    if go and version:
        act(
            f"promotion of v{version} to {alias}",
            lambda: ctx.client.promote(version, alias=alias, reason=reason, force=force),
        )
    with right.form("rollback"):
        st.markdown("**Roll back** (to the version the alias held before)")
        alias_back = st.selectbox("alias", ALIASES, key="rollback_alias")
        reason_back = st.text_input("reason", key="rollback_reason")
        back = st.form_submit_button("Roll back", disabled=read_only)
    if back:
        act(
            f"rollback of {alias_back}",
            lambda: ctx.client.rollback(alias=alias_back, reason=reason_back),
        )


def start_experiment(ctx: DashboardContext) -> None:
    """Start a two-arm experiment: champion against challenger (or two versions)."""
    read_only = _read_only_note(ctx)
    with st.form("start_experiment"):
        st.markdown("**Start an experiment**")
        name = st.text_input("name", key="exp_name")
        control = st.text_input("control model", value="champion", key="exp_control")
        challenger = st.text_input("challenger model", value="challenger", key="exp_challenger")
        share = st.slider("challenger share (%)", 1, 50, 10, key="exp_share")
        mode = st.selectbox("mode", ("split", "shadow"), key="exp_mode")
        go = st.form_submit_button("Start", disabled=read_only)
    if go:
        spec = {
            "name": name or f"{control}-vs-{challenger}",
            "mode": mode,
            "arms": [
                {"name": "control", "model": control, "weight": 100 - share},
                {"name": "challenger", "model": challenger, "weight": share},
            ],
        }
        act("start of the experiment", lambda: ctx.client.start_experiment(spec))


def end_experiment(ctx: DashboardContext, status: dict[str, Any]) -> None:
    """Stop a running experiment, or roll it back (aliases restored, alert raised)."""
    if status["status"] != "running":
        return
    read_only = _read_only_note(ctx)
    reason = st.text_input("reason", key=f"end_reason_{status['id']}")
    left, right = st.columns(2)
    if left.button("Stop experiment", disabled=read_only, key=f"stop_{status['id']}"):
        act(
            "stop of the experiment",
            lambda: ctx.client.end_experiment(status["id"], how="stop", reason=reason),
        )
    if right.button("Roll back experiment", disabled=read_only, key=f"rb_{status['id']}"):
        act(
            "rollback of the experiment",
            lambda: ctx.client.end_experiment(status["id"], how="rollback", reason=reason),
        )
