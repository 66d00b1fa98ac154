"""Markdown rendering shared by the cards: tables, number formats, the performance card page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trajops.cards.performance import GroupStat, PerformanceCard

GROUPING_TITLES = {
    "scene": "By scene",
    "speed": "By observed speed",
    "density": "By crowd density (neighbours within {radius:g} m)",
    "direction": "By walking direction (scene frame)",
    "path": "Linear vs non-linear paths",
}


def table(rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; the first row is the header (``|`` in cells is escaped)."""
    head, *body = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def metres(value: float | None) -> str:
    """``0.412`` for a value in metres, ``-`` for none."""
    return "-" if value is None else f"{value:.3f}"


def interval(ci: tuple[float, float] | None) -> str:
    """``[0.401, 0.433]`` or ``-``."""
    return "-" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def ratio(value: float | None) -> str:
    """``1.42x`` or ``-``."""
    return "-" if value is None else f"{value:.2f}x"


def _flags(stat: GroupStat) -> str:
    if stat.n == 0:
        return "no windows"
    out = []
    if stat.underserved:
        out.append("**underserved**")
    if stat.under_sampled:
        out.append("under-sampled")
    return ", ".join(out) or "-"


def _grouping_title(name: str, config: dict[str, Any]) -> str:
    return GROUPING_TITLES.get(name, name).format(radius=float(config.get("density_radius", 2.0)))


def render_performance_card(card: PerformanceCard) -> str:
    """The performance card as a markdown page."""
    cfg = card.config
    level = f"{float(cfg['confidence']):.0%}"
    source = ", ".join(f"{k} `{v}`" for k, v in card.source.items() if v not in (None, ""))
    parts = [
        f"# Performance card: {card.title}",
        "",
        f"Source: {source or 'not recorded'}.",
        "",
        f"Overall: ADE **{card.ade:.3f} m** ({level} CI {interval(card.ade_ci)}), "
        f"FDE {card.fde:.3f} m, over {card.n} test windows of {card.n_agents} agents.",
        "",
        "## How to read this card",
        "",
        f"- ADE/FDE: mean / final displacement error in metres; CI: {level} cluster bootstrap "
        f"over agents ({cfg['n_boot']} resamples, seed {cfg['seed']}).",
        "- x overall: the group's ADE divided by the overall ADE.",
        f"- **underserved**: ADE above {float(cfg['underserved_ratio']):g}x the overall ADE and "
        "the whole CI above the overall ADE.",
        f"- under-sampled: fewer than {cfg['min_samples']} windows; shown, not trusted, left out "
        "of the disparity ratio.",
        "- disparity: worst / best group ADE among the groups that are not under-sampled.",
        f"- linear path: a constant-velocity extrapolation ends within {float(cfg['linear_fde_m']):g} m "
        f"of the true final position; standing: observed speed below "
        f"{float(cfg['standing_speed']):g} m/s.",
        "",
        "## Flags",
        "",
    ]
    flagged = card.flagged
    if not flagged:
        parts.append("No group is underserved or under-sampled.")
    for stat in flagged:
        if stat.n == 0:
            parts.append(f"- {stat.grouping} `{stat.group}`: not evaluated (no test windows)")
            continue
        what = "underserved" if stat.underserved else "under-sampled"
        parts.append(
            f"- {stat.grouping} `{stat.group}`: {what} (n={stat.n}, ADE {metres(stat.ade)} m, "
            f"{ratio(stat.ratio_to_overall)} overall)"
        )
    parts += ["", "## Disparity", ""]
    parts.append(
        table(
            [("grouping", "disparity (worst / best)", "worst group", "best group")]
            + [(g.name, ratio(g.disparity), g.worst or "-", g.best or "-") for g in card.groupings]
        )
    )
    for grouping in card.groupings:
        parts += ["", f"## {_grouping_title(grouping.name, cfg)}", ""]
        parts.append(
            table(
                [
                    (
                        "group",
                        "windows",
                        "agents",
                        "ADE (m)",
                        f"{level} CI",
                        "FDE (m)",
                        "x overall",
                        "flags",
                    )
                ]
                + [
                    (
                        s.group,
                        str(s.n),
                        str(s.n_agents),
                        metres(s.ade),
                        interval(s.ade_ci),
                        metres(s.fde),
                        ratio(s.ratio_to_overall),
                        _flags(s),
                    )
                    for s in grouping.groups
                ]
            )
        )
    parts += [
        "",
        "## Caveats",
        "",
        "- The groups are kinematic and situational (where, how fast, how crowded, which way, "
        "how straight). The data holds no demographic attributes, so this card cannot show "
        "whether errors differ by age, disability or any protected characteristic; slow "
        "walkers and dense crowds are the closest proxies and deserve attention when flagged.",
        "- Errors are in metres, and a faster walker covers more ground in 4.8 s: fast speed "
        "groups have larger errors by nature. Compare them with care (or relative to distance "
        "walked) before calling them underserved.",
        "- Groups are defined from the test windows themselves; linearity uses the true future.",
        "- Intervals describe sampling noise of this test set only, not a change of scenes.",
        "",
    ]
    return "\n".join(parts)
