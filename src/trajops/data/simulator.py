"""Synthetic crowds from a social-force model (Helbing & Molnar 1995; Helbing et al. 2000).

Each agent is pulled towards its current goal at its desired speed (relaxation time ``tau``)
and pushed away from other agents by an exponential, anisotropic repulsion (agents react more
to what is in front of them); optional walls along ``y = 0`` and ``y = scene_size`` turn the
square scene into a corridor. Agents walk through a few interior waypoints, then head for an
exit on the border and leave; new agents enter from the border so the scene keeps about
``n_agents`` walkers and the output holds both finished and ongoing tracks.

The model is integrated with semi-implicit Euler sub-steps of at most ``max_substep_s``
and recorded every ``step_s`` seconds. Everything is vectorised over agents; only time is a
Python loop.

Frame convention: frame id = recorded step index * ``FRAME_STEP`` (10), as in ETH/UCY, *for
any* ``step_s``. With ``step_s = 0.5`` the frames still step by 10 while 0.5 s pass between
them: that is how drift monitoring simulates a time-step shift the data cannot reveal by itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from trajops.data.readers import FRAME_STEP, validate_tracks
from trajops.errors import ValidationError


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of the crowd simulator. ``speed_factor``, ``step_s`` and ``position_noise`` are the
    drift knobs; the named presets below set them for drift-injection scenarios."""

    n_agents: int = 32
    """Agents walking in a scene at the same time (density = n_agents / scene_size**2)."""
    scene_size: float = 20.0
    """Side of the square scene, in metres."""
    speed_mean: float = 1.3
    """Mean desired speed, m/s (pedestrians: about 1.3)."""
    speed_std: float = 0.25
    """Std of the desired speed across agents, m/s."""
    speed_factor: float = 1.0
    """Multiplies every desired speed (drift knob)."""
    n_steps: int = 200
    """Recorded steps per scene."""
    step_s: float = 0.4
    """Seconds between two recorded steps (frame ids still step by 10)."""
    max_substep_s: float = 0.1
    """Longest integration sub-step, in seconds."""
    position_noise: float = 0.02
    """Std of the Gaussian noise added to recorded positions, in metres (sensor noise)."""
    force_noise: float = 0.05
    """Std of the random fluctuation force, m/s^2 per sqrt(s) (individual wobble)."""
    relaxation_s: float = 0.5
    """Time an agent takes to adapt its velocity to the desired one (tau), in seconds."""
    repulsion_strength: float = 2.1
    """Agent-agent repulsion at contact, m/s^2 (A)."""
    repulsion_range: float = 0.3
    """Decay length of the agent-agent repulsion, in metres (B)."""
    agent_radius: float = 0.3
    """Body radius, in metres."""
    anisotropy: float = 0.35
    """Weight of repulsion from agents behind (0: ignore them, 1: isotropic)."""
    walls: bool = False
    """Walls along y = 0 and y = scene_size (a corridor; agents enter and leave left/right)."""
    wall_strength: float = 5.0
    """Wall repulsion at contact, m/s^2."""
    wall_range: float = 0.2
    """Decay length of the wall repulsion, in metres."""
    turn_std: float = 0.35
    """Std of the heading change towards the next waypoint, in radians."""
    goal_radius: float = 0.5
    """Distance at which a goal counts as reached, in metres."""
    exit_prob: float = 0.5
    """Chance that an agent heads for the exit after reaching a waypoint."""
    n_scenes: int = 1
    """Independent scenes (each its own ``scene`` value and random stream)."""
    scene_prefix: str = "sim"
    """Scene names are ``<scene_prefix>-<index:03d>``."""
    seed: int = 0
    """Seed of ``np.random.default_rng``; equal seeds give equal output."""

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("n_agents", self.n_agents >= 1, "must be at least 1"),
            ("n_steps", self.n_steps >= 1, "must be at least 1"),
            ("n_scenes", self.n_scenes >= 1, "must be at least 1"),
            ("scene_size", self.scene_size >= 4.0, "must be at least 4 m"),
            ("step_s", 0 < self.step_s <= 5.0, "must be in (0, 5] seconds"),
            ("max_substep_s", 0 < self.max_substep_s <= 0.2, "must be in (0, 0.2] seconds"),
            ("speed_mean", self.speed_mean > 0, "must be positive"),
            ("speed_std", self.speed_std >= 0, "must be non-negative"),
            ("speed_factor", self.speed_factor > 0, "must be positive"),
            ("position_noise", self.position_noise >= 0, "must be non-negative"),
            ("force_noise", self.force_noise >= 0, "must be non-negative"),
            ("relaxation_s", self.relaxation_s > 0, "must be positive"),
            ("anisotropy", 0 <= self.anisotropy <= 1, "must be in [0, 1]"),
            ("exit_prob", 0 < self.exit_prob <= 1, "must be in (0, 1]"),
        ]
        bad = [(name, msg) for name, ok, msg in checks if not ok]
        for name, value in vars(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                bad.append((name, "must be a finite number"))
        if bad:
            raise ValidationError(
                "invalid simulation config: " + "; ".join(f"{n} {m}" for n, m in bad),
                details=[{"loc": ["simulation", n], "msg": m} for n, m in bad],
            )

    @property
    def density(self) -> float:
        """Agents per square metre."""
        return self.n_agents / self.scene_size**2

    @property
    def frame_step(self) -> int:
        """Frame ids between recorded steps (always ``FRAME_STEP``, whatever ``step_s``)."""
        return FRAME_STEP

    def with_overrides(self, **overrides: Any) -> SimulationConfig:
        """A copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    # --- named presets (drift scenarios) ----------------------------------------------------
    @classmethod
    def pedestrians(cls, **overrides: Any) -> SimulationConfig:
        """Walking pedestrians, about 1.3 +/- 0.25 m/s, 0.4 s steps: the reference population."""
        return cls().with_overrides(**overrides)

    @classmethod
    def faster_population(cls, **overrides: Any) -> SimulationConfig:
        """Joggers and cyclists, about 3.5 +/- 0.5 m/s, on a larger square (covariate drift)."""
        return cls(speed_mean=3.5, speed_std=0.5, scene_size=48.0, relaxation_s=0.8).with_overrides(
            **overrides
        )

    @classmethod
    def dense_crowd(cls, **overrides: Any) -> SimulationConfig:
        """Four times the reference density: more interactions, slower walking."""
        return cls(n_agents=128).with_overrides(**overrides)

    @classmethod
    def time_step_shift(cls, **overrides: Any) -> SimulationConfig:
        """Pedestrians recorded every 0.5 s while the frame ids still say 0.4 s."""
        return cls(step_s=0.5).with_overrides(**overrides)

    @classmethod
    def noisy_sensor(cls, **overrides: Any) -> SimulationConfig:
        """Pedestrians seen through a noisy tracker (15 cm position noise)."""
        return cls(position_noise=0.15).with_overrides(**overrides)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SimulationConfig:
        """The preset called ``name`` (one of :data:`PRESETS`), with overrides."""
        if name not in PRESETS:
            raise ValidationError(
                f"unknown simulation preset {name!r}; expected one of {', '.join(PRESETS)}",
                details=[{"loc": ["preset"], "msg": f"unknown preset {name!r}"}],
            )
        return PRESETS[name](**overrides)


PRESETS: dict[str, Callable[..., SimulationConfig]] = {
    "pedestrians": SimulationConfig.pedestrians,
    "faster_population": SimulationConfig.faster_population,
    "dense_crowd": SimulationConfig.dense_crowd,
    "time_step_shift": SimulationConfig.time_step_shift,
    "noisy_sensor": SimulationConfig.noisy_sensor,
}
"""Named simulation presets for drift injection."""


class _Crowd:
    """The state of one scene: fixed slots of agents, refilled as agents leave."""

    def __init__(self, cfg: SimulationConfig, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        n = cfg.n_agents
        self.pos = np.zeros((n, 2))  # (A, 2)
        self.vel = np.zeros((n, 2))  # (A, 2)
        self.goal = np.zeros((n, 2))  # (A, 2)
        self.v0 = np.zeros(n)  # (A,) desired speed
        self.exiting = np.zeros(n, bool)  # (A,) heading for the border
        self.active = np.zeros(n, bool)  # (A,)
        self.ids = np.full(n, -1, np.int64)  # (A,)
        self.next_id = 0
        self._spawn(np.arange(n), inside=True)

    # --- goals and agents entering ----------------------------------------------------------
    def _rotate(self, heading: np.ndarray, sigma: float) -> np.ndarray:
        """Unit headings ``(M, 2)`` turned by a random angle ~ N(0, sigma) radians."""
        theta = self.rng.normal(0.0, sigma, heading.shape[0])  # (M,)
        c, s = np.cos(theta), np.sin(theta)
        out = np.stack(
            [c * heading[:, 0] - s * heading[:, 1], s * heading[:, 0] + c * heading[:, 1]], -1
        )
        return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-9)

    def _ray_to_border(self, pos: np.ndarray, ray: np.ndarray, *, beyond: float) -> np.ndarray:
        """Distance ``(M,)`` along unit ``ray`` from ``pos`` to ``beyond`` metres past the border."""
        size = self.cfg.scene_size
        bound = np.where(ray > 0, size + beyond, -beyond)  # (M, 2)
        safe = np.where(np.abs(ray) > 1e-9, ray, 1.0)
        t = np.where(np.abs(ray) > 1e-9, (bound - pos) / safe, np.inf)  # (M, 2)
        if self.cfg.walls:  # a corridor is left through its ends only
            t[:, 1] = np.inf
        return np.asarray(t.min(axis=1))

    def _next_goals(self, pos: np.ndarray, heading: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Next goals ``(M, 2)`` roughly ahead of ``pos`` along unit ``heading``, and which are exits.

        The goal is a waypoint 0.5-1 scene sizes ahead (turned by ~N(0, turn_std)), cut 2 m short
        of the border; where that leaves too little room, or by chance (``exit_prob``), the
        agent heads on out of the scene instead. Walking mostly straight on with gentle turns is
        what makes the windows learnable.
        """
        size, m = self.cfg.scene_size, pos.shape[0]
        ray = self._rotate(heading, self.cfg.turn_std)  # (M, 2)
        room = self._ray_to_border(pos, ray, beyond=-2.0)  # (M,)
        dist = np.minimum(self.rng.uniform(0.5, 1.0, m) * size, room)
        leave = (dist < 0.25 * size) | (self.rng.random(m) < self.cfg.exit_prob)
        dist = np.where(leave, self._ray_to_border(pos, ray, beyond=1.0), dist)
        goal = np.clip(pos + dist[:, None] * ray, -1.0, size + 1.0)
        if self.cfg.walls:  # never aim into a wall (a near-vertical ray in the corridor)
            goal[:, 1] = np.clip(goal[:, 1], 1.0, size - 1.0)
        return goal, leave

    def _border_points(self, m: int) -> np.ndarray:
        """Random entry points ``(M, 2)`` 0.3 m inside the border (walls: left/right ends)."""
        size = self.cfg.scene_size
        side = self.rng.integers(0, 2 if self.cfg.walls else 4, m)
        t = self.rng.uniform(1.0, size - 1.0, m)
        lo, hi = 0.3, size - 0.3
        x = np.select([side == 0, side == 1, side == 2], [lo, hi, t], default=t)
        y = np.select([side == 0, side == 1, side == 2], [t, t, lo], default=hi)
        return np.stack([x, y], axis=-1)

    def _spawn(self, slots: np.ndarray, *, inside: bool = False) -> None:
        """Put new agents into ``slots``: inside the scene at start, on the border afterwards."""
        if len(slots) == 0:
            return
        cfg, m = self.cfg, len(slots)
        if inside:
            start = self.rng.uniform(1.0, cfg.scene_size - 1.0, (m, 2))
        else:
            start = self._border_points(m)
            # Enter only where there is room; the others try again on the next sub-step.
            others = self.pos[self.active]  # (B, 2)
            if len(others):
                gap = np.linalg.norm(start[:, None] - others[None], axis=-1).min(axis=1)  # (M,)
                room = gap > 2.5 * cfg.agent_radius
                slots, start, m = slots[room], start[room], int(room.sum())
                if m == 0:
                    return
        v0 = self.rng.normal(cfg.speed_mean, cfg.speed_std, m)
        v0 = np.clip(v0, 0.3 * cfg.speed_mean, 2.0 * cfg.speed_mean) * cfg.speed_factor
        # Enter walking towards the middle of the scene (at start: in any direction).
        towards = cfg.scene_size / 2 - start if not inside else self.rng.normal(size=(m, 2))
        goal, leave = self._next_goals(start, self._rotate(towards, 0.4))
        if not inside:  # a newcomer crosses at least part of the scene before it may leave
            leave[:] = False
        heading = goal - start
        heading /= np.maximum(np.linalg.norm(heading, axis=-1, keepdims=True), 1e-9)
        self.pos[slots], self.goal[slots], self.v0[slots] = start, goal, v0
        self.vel[slots] = heading * v0[:, None]
        self.exiting[slots], self.active[slots] = leave, True
        self.ids[slots] = np.arange(self.next_id, self.next_id + m)
        self.next_id += m

    # --- one integration sub-step -----------------------------------------------------------
    def forces(self) -> np.ndarray:
        """Social force per unit mass on every slot: ``(A, 2)`` in m/s^2."""
        cfg = self.cfg
        to_goal = self.goal - self.pos  # (A, 2)
        e_goal = to_goal / np.maximum(np.linalg.norm(to_goal, axis=-1, keepdims=True), 1e-9)
        force = (self.v0[:, None] * e_goal - self.vel) / cfg.relaxation_s  # (A, 2)

        diff = self.pos[:, None] - self.pos[None]  # (A, A, 2): from j to i
        dist = np.linalg.norm(diff, axis=-1)  # (A, A)
        pair = self.active[:, None] & self.active[None]
        np.fill_diagonal(pair, False)
        dist = np.where(pair, np.maximum(dist, 1e-3), np.inf)
        n_ij = diff / dist[..., None]  # (A, A, 2) unit vector j -> i (0 for no pair)
        mag = cfg.repulsion_strength * np.exp((2 * cfg.agent_radius - dist) / cfg.repulsion_range)
        # Anisotropy: cos(phi) between i's heading and the direction towards j.
        speed = np.linalg.norm(self.vel, axis=-1, keepdims=True)  # (A, 1)
        e_vel = self.vel / np.maximum(speed, 1e-9)  # (A, 2)
        cos_phi = -(e_vel[:, None] * n_ij).sum(axis=-1)  # (A, A)
        weight = cfg.anisotropy + (1 - cfg.anisotropy) * (1 + cos_phi) / 2
        force += ((mag * weight)[..., None] * n_ij).sum(axis=1)

        if cfg.walls:
            y = self.pos[:, 1]
            up = np.exp((cfg.agent_radius - np.maximum(y, 0.0)) / cfg.wall_range)
            down = np.exp((cfg.agent_radius - np.maximum(cfg.scene_size - y, 0.0)) / cfg.wall_range)
            force[:, 1] += cfg.wall_strength * (up - down)
        return force

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds, then retire agents that left and let new ones in."""
        cfg = self.cfg
        noise = self.rng.standard_normal(self.pos.shape) * cfg.force_noise / math.sqrt(dt)
        self.vel += (self.forces() + noise) * dt
        speed = np.linalg.norm(self.vel, axis=-1, keepdims=True)  # (A, 1)
        cap = 1.3 * self.v0[:, None]  # Helbing's maximum speed
        self.vel *= np.minimum(1.0, cap / np.maximum(speed, 1e-9))
        self.pos += self.vel * dt
        if cfg.walls:
            self.pos[:, 1] = np.clip(self.pos[:, 1], 0.05, cfg.scene_size - 0.05)

        reached = self.active & (np.linalg.norm(self.goal - self.pos, axis=-1) < cfg.goal_radius)
        outside = ((self.pos < -0.5) | (self.pos > cfg.scene_size + 0.5)).any(axis=-1)
        leaving = self.active & (outside | (reached & self.exiting))
        self.active &= ~leaving
        turn = reached & ~leaving
        if turn.any():
            idx = np.flatnonzero(turn)
            vel = self.vel[idx]  # (M, 2)
            ahead = vel / np.maximum(np.linalg.norm(vel, axis=-1, keepdims=True), 1e-9)
            self.goal[idx], self.exiting[idx] = self._next_goals(self.pos[idx], ahead)
        self._spawn(np.flatnonzero(~self.active))


def _simulate_scene(cfg: SimulationConfig, rng: np.random.Generator, scene: str) -> pd.DataFrame:
    n_sub = max(1, math.ceil(cfg.step_s / cfg.max_substep_s - 1e-9))
    dt = cfg.step_s / n_sub
    crowd = _Crowd(cfg, rng)
    pos = np.empty((cfg.n_steps, cfg.n_agents, 2))  # (T, A, 2)
    ids = np.empty((cfg.n_steps, cfg.n_agents), np.int64)  # (T, A)
    seen = np.empty((cfg.n_steps, cfg.n_agents), bool)  # (T, A)
    for t in range(cfg.n_steps):
        if t > 0:
            for _ in range(n_sub):
                crowd.step(dt)
        pos[t], ids[t], seen[t] = crowd.pos, crowd.ids, crowd.active
    pos += rng.normal(0.0, cfg.position_noise, pos.shape) if cfg.position_noise > 0 else 0.0
    step_idx = np.broadcast_to(np.arange(cfg.n_steps)[:, None], seen.shape)
    return pd.DataFrame(
        {
            "scene": scene,
            "frame": (step_idx[seen] * FRAME_STEP).astype(np.int64),
            "agent_id": ids[seen].astype(str),
            "x": pos[seen][:, 0],
            "y": pos[seen][:, 1],
        }
    )


def simulate(config: SimulationConfig | None = None) -> pd.DataFrame:
    """Simulate ``config.n_scenes`` crowd scenes.

    Args:
        config: simulator knobs; :meth:`SimulationConfig.pedestrians` by default.

    Returns:
        A validated tracks frame (``scene, frame, agent_id, x, y``), frame = step * 10.
        Agent ids are unique within a scene; an agent that left never comes back.
    """
    cfg = config or SimulationConfig.pedestrians()
    streams = np.random.default_rng(cfg.seed).spawn(cfg.n_scenes)
    scenes = [
        _simulate_scene(cfg, rng, f"{cfg.scene_prefix}-{i:03d}") for i, rng in enumerate(streams)
    ]
    return validate_tracks(pd.concat(scenes, ignore_index=True), source="<simulator>")
