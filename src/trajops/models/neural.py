"""Scene-aware neural forecaster (PyTorch) that corrects constant velocity in the agent frame.

Every window is moved into its agent frame (see :mod:`trajops.data.augment`). An MLP encodes
the agent's observed track; another encodes each of the nearest neighbours' observed tracks,
and an attention step (the agent's encoding queries its neighbours) pools them. A head
predicts the offset of the future from constant-velocity extrapolation, trained with the
Euclidean (ADE) loss and early-stopped on the validation split. A second, multi-hypothesis
head trained winner-takes-all gives K > 1 diverse samples without touching the
deterministic forecast (sample 0). The forecast is the mean of the scene's and its mirror
image's (``mirror_test``). Endpoint-conditioned decoding and multi-head attention are options,
off by default (:class:`~trajops.models._neural_config.NeuralConfig`).

Fine-tuning: :meth:`NeuralForecaster.fine_tune` builds a model with a fitted model's
architecture, feature scaling and weights; its :meth:`~NeuralForecaster.fit` starts from those
weights and keeps them when no epoch beats them on validation.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from trajops.data.augment import AgentFrame, agent_frame
from trajops.data.windows import WindowSet
from trajops.errors import ModelLoadError, ValidationError
from trajops.models import _samples
from trajops.models._neural_config import (
    ARCHITECTURE,
    SAVED_BEFORE,
    NeuralConfig,
    check_config,
)
from trajops.models._neural_net import (
    SocialNet,
    augment,
    forward_members,
    resolve_device,
    torch_threads,
)
from trajops.models.base import check_obs

__all__ = ["NeuralConfig", "NeuralForecaster"]


class NeuralForecaster:
    """Agent-frame, scene-aware MLP forecaster; see the module docstring."""

    name: ClassVar[str] = "neural"
    batchable: ClassVar[bool] = True  # one forward costs about the same for 1 scene or 30

    def __init__(self, config: NeuralConfig | None = None, **overrides: Any) -> None:
        self.config = NeuralConfig(**{**asdict(config or NeuralConfig()), **overrides})
        check_config(self.config)
        self.device = resolve_device(self.config.device)
        self.nets: nn.ModuleList | None = None
        self.init_state: list[dict[str, torch.Tensor]] | None = None
        """Per-member CPU state dicts :meth:`fit` starts from (set by :meth:`fine_tune`)."""

    @property
    def neighbour_slots(self) -> int:
        """Neighbours the network reads per agent (the nearest; callers build no more)."""
        return self.config.neighbours

    @classmethod
    def fine_tune(cls, source: NeuralForecaster, **overrides: Any) -> NeuralForecaster:
        """An unfitted model whose :meth:`fit` starts from ``source``'s weights.

        The config is ``source``'s (architecture and feature scaling included) with
        ``overrides`` for the training knobs (``epochs``, ``lr``, ``seed``, ``device`` ...).

        Raises:
            ValidationError: ``source`` is not fitted, or an override changes a field of
                :data:`ARCHITECTURE` (the weights would not fit the network).
        """
        if source.nets is None:
            raise ValidationError("cannot fine-tune from an unfitted neural model")
        base = asdict(source.config)
        clash = sorted(k for k in ARCHITECTURE if k in overrides and overrides[k] != base[k])
        if clash:
            raise ValidationError(
                "fine-tuning keeps the source model's architecture; cannot change "
                + ", ".join(f"{k} ({base[k]!r} -> {overrides[k]!r})" for k in clash),
                details=[{"loc": ["model_params", k], "msg": "architecture"} for k in clash],
            )
        model = cls(NeuralConfig(**{**base, **overrides}))
        model.init_state = [
            {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            for net in source.nets
        ]
        return model

    # --- features -----------------------------------------------------------------------
    def _features(
        self, obs: np.ndarray, neighbours: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, AgentFrame]:
        """Scaled agent-frame inputs: ego ``(N, E)``, nbr ``(N, M, F)``, mask ``(N, M)``,
        scale ``(N,)`` and the frame (to go back to world coordinates)."""
        cfg = self.config
        n = len(obs)
        frame = agent_frame(obs)
        o = frame.to_agent(obs)  # (N, T_obs, 2)
        speed = np.linalg.norm(np.diff(obs, axis=1), axis=-1).mean(axis=1)  # (N,) past steps only
        scale = np.maximum(speed, cfg.min_scale) if cfg.speed_scale else np.ones(n)
        s = scale[:, None, None]
        ego = np.concatenate(
            [
                (o / s).reshape(n, cfg.t_obs * 2),
                (np.diff(o, axis=1) / s).reshape(n, (cfg.t_obs - 1) * 2),
                np.log(scale)[:, None],
            ],
            axis=1,
        )
        m = cfg.neighbours
        nb = np.full((n, m, cfg.t_obs, 2), np.nan)
        if m > 0 and neighbours is not None and neighbours.shape[1] > 0:
            k = min(m, neighbours.shape[1])
            nb[:, :k] = frame.to_agent(
                np.asarray(neighbours, np.float64)[:, :k]
            )  # (N, k, T_obs, 2)
        seen = ~np.isnan(nb[..., 0])  # (N, M, T_obs)
        nb = np.nan_to_num(nb / s[:, None], nan=0.0)
        steps = (
            np.diff(nb, axis=2) * (seen[:, :, 1:] & seen[:, :, :-1])[..., None]
        )  # (N, M, T_obs-1, 2)
        nbr = np.concatenate(
            [
                nb.reshape(n, m, cfg.t_obs * 2),
                steps.reshape(n, m, (cfg.t_obs - 1) * 2),
                seen.astype(np.float64),
            ],
            axis=2,
        )
        # Clip far neighbours (in speed units) so one outlier cannot dominate the encoding.
        nbr = np.clip(nbr, -50.0, 50.0)
        return ego, nbr, seen.any(axis=2), scale, frame

    def _tensors(self, *arrays: np.ndarray) -> list[torch.Tensor]:
        out = []
        for a in arrays:
            dtype = torch.bool if a.dtype == bool else torch.float32
            out.append(torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=self.device))
        return out

    def _targets(
        self, windows: WindowSet, frame: AgentFrame, scale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scaled agent-frame future offsets from CV ``(N, T_pred, 2)`` and the CV part."""
        o = frame.to_agent(windows.obs)
        vel = o[:, -1] - o[:, -2]  # (N, 2)
        steps = np.arange(1, self.config.t_pred + 1)[None, :, None]
        cv = vel[:, None] * steps  # (N, T_pred, 2)
        return (frame.to_agent(windows.fut) - cv) / scale[:, None, None], cv

    # --- Forecaster protocol ------------------------------------------------------------
    def fit(self, train: WindowSet, val: WindowSet | None = None) -> dict[str, Any]:
        """Train with Adam on the Euclidean loss; early-stop on validation ADE (metres).

        Returns:
            ``{"train_loss": [...], "val_loss": [...], "best_epoch": int, "seconds": float}``;
            without ``val`` the last epoch is kept and ``val_loss`` is empty.
        """
        cfg = self.config
        if len(train) == 0:
            raise ValidationError(
                "no training windows", details=[{"loc": ["train"], "msg": "empty"}]
            )
        with torch_threads(cfg.num_threads):
            return self._fit(train, val)

    def _fit(self, train: WindowSet, val: WindowSet | None) -> dict[str, Any]:
        cfg = self.config
        start = time.perf_counter()
        ego, nbr, mask, scale, frame = self._features(
            check_obs(train.obs, cfg.t_obs), train.neighbours
        )
        target, _ = self._targets(train, frame, scale)
        data = self._tensors(ego, nbr, mask, scale, target)
        val_data = None
        if val is not None and len(val) > 0:
            v = self._features(check_obs(val.obs, cfg.t_obs), val.neighbours)
            v_target, _ = self._targets(val, v[4], v[3])
            val_data = self._tensors(v[0], v[1], v[2], v[3], v_target)
        members: list[dict[str, Any]] = []
        nets = []
        first = cfg.seed * cfg.ensemble  # two seeds' ensembles share no member
        for i in range(cfg.ensemble):
            net, history = self._fit_member(data, val_data, seed=first + i, member=i)
            nets.append(net)
            members.append(history)
        self.nets = nn.ModuleList(nets)
        out: dict[str, Any] = {**members[0], "seconds": time.perf_counter() - start}
        if cfg.ensemble > 1:
            out["members"] = members
            if val_data is not None:
                out["ensemble_val_loss"] = self._val_ade(val_data)
        return out

    def _fit_member(
        self,
        data: list[torch.Tensor],
        val_data: list[torch.Tensor] | None,
        *,
        seed: int,
        member: int,
    ) -> tuple[SocialNet, dict[str, Any]]:
        """Train one network; returns it (best validation state) and its history. A
        fine-tuned member starts from its source weights, which compete as epoch -1."""
        cfg = self.config
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        t_ego, t_nbr, t_mask, t_scale, t_target = data
        net = SocialNet(cfg).to(self.device)
        history: dict[str, Any] = {"train_loss": [], "val_loss": [], "best_epoch": 0}
        best, best_state, waited = float("inf"), None, 0
        if self.init_state is not None:
            net.load_state_dict(self.init_state[member])
            if val_data is not None:
                best, best_state = self._val_ade(val_data, [net]), copy.deepcopy(net.state_dict())
                history["best_epoch"] = -1
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
        n = len(t_ego)
        for epoch in range(cfg.epochs):
            net.train()
            order = torch.as_tensor(rng.permutation(n), device=self.device)
            total = 0.0
            for i in range(0, n, cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                b_ego, b_nbr, b_target = augment(cfg, t_ego[idx], t_nbr[idx], t_target[idx], rng)
                loss, det = net.loss(b_ego, b_nbr, t_mask[idx], b_target, t_scale[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(det.detach()) * len(idx)
            sched.step()
            history["train_loss"].append(total / n)
            if val_data is None:
                history["best_epoch"] = epoch
                continue
            val_ade = self._val_ade(val_data, [net])
            history["val_loss"].append(val_ade)
            if val_ade < best - 1e-5:
                best, best_state, waited = val_ade, copy.deepcopy(net.state_dict()), 0
                history["best_epoch"] = epoch
            else:
                waited += 1
                if waited >= cfg.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        return net, history

    def _val_ade(self, data: list[torch.Tensor], nets: Any = None) -> float:
        nets = nets if nets is not None else self.nets
        assert nets is not None
        ego, nbr, mask, scale, target = data
        for net in nets:
            net.eval()
        with torch.inference_mode():
            total = 0.0
            for i in range(0, len(ego), 4096):
                sl = slice(i, i + 4096)
                offset, _ = forward_members(
                    nets,
                    ego[sl],
                    nbr[sl],
                    mask[sl],
                    hypotheses=False,
                    mirror_test=self.config.mirror_test,
                )
                total += float(
                    (torch.linalg.vector_norm(offset - target[sl], dim=-1) * scale[sl, None]).sum()
                )
        return total / (len(ego) * self.config.t_pred)

    def predict(
        self,
        obs: np.ndarray,
        *,
        neighbours: np.ndarray | None = None,
        num_samples: int = 1,
        seed: int | None = None,
    ) -> np.ndarray:
        """Forecast ``(N, T_pred, 2)``, or ``(N, K, T_pred, 2)`` for K > 1: sample 0 is the
        deterministic forecast, the rest are hypotheses (cycled with small noise when K - 1
        exceeds ``modes``; chosen as ``config.samples`` says, see :mod:`._samples`)."""
        if self.nets is None:
            raise ValidationError("the neural model is not fitted; call fit() first")
        cfg = self.config
        obs = check_obs(obs, cfg.t_obs)
        if len(obs) == 0:  # an empty request: nothing to transform
            tail = (cfg.t_pred, 2) if num_samples <= 1 else (num_samples, cfg.t_pred, 2)
            return np.zeros((0, *tail), np.float32)
        if neighbours is not None and (neighbours.ndim != 4 or neighbours.shape[0] != len(obs)):
            raise ValidationError(
                f"neighbours must be (N, K, {cfg.t_obs}, 2), got {neighbours.shape}"
            )
        ego, nbr, mask, scale, frame = self._features(obs, neighbours)
        o = frame.to_agent(obs)
        steps = np.arange(1, cfg.t_pred + 1)[None, :, None]
        cv = (o[:, -1] - o[:, -2])[:, None] * steps  # (N, T_pred, 2)
        with torch_threads(cfg.inference_threads), torch.inference_mode():
            offset, hyp = forward_members(
                self.nets,
                *self._tensors(ego, nbr, mask),
                hypotheses=num_samples > 1,
                mirror_test=cfg.mirror_test,
            )
        s = scale[:, None, None]
        det = cv + offset.cpu().numpy().astype(np.float64) * s  # (N, T_pred, 2) agent frame
        if num_samples <= 1:
            return frame.to_world(det).astype(np.float32)
        assert hyp is not None
        picked, repeated = _samples.pick_hypotheses(
            hyp.cpu().numpy(),
            num_samples - 1,
            members=cfg.ensemble,
            selection=cfg.samples,
            det=offset.cpu().numpy(),
        )
        hyps = cv[:, None] + picked * s[:, None]  # (N, K-1, T_pred, 2)
        _samples.jitter_repeats(hyps, repeated, np.random.default_rng(seed))
        samples = np.concatenate([det[:, None], hyps], axis=1)  # (N, K, T_pred, 2)
        return frame.to_world(samples).astype(np.float32)

    def params(self) -> dict[str, Any]:
        """Every hyper-parameter, for tracking."""
        return asdict(self.config)

    def save(self, path: Path) -> None:
        """Write ``config.json`` and ``weights.pt`` (a CPU state dict) into the folder ``path``."""
        if self.nets is None:
            raise ValidationError("cannot save an unfitted neural model")
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(self.params()))
        torch.save({k: v.cpu() for k, v in self.nets.state_dict().items()}, path / "weights.pt")

    @classmethod
    def load(cls, path: Path, *, device: str | None = None) -> NeuralForecaster:
        """Read a model written by :meth:`save`, optionally onto another ``device``."""
        try:
            cfg = json.loads((path / "config.json").read_text())
            state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load neural model from {path}: {exc}") from None
        if device is not None:
            cfg["device"] = device
        model = cls(NeuralConfig(**{**SAVED_BEFORE, **cfg}))
        model.nets = nn.ModuleList(
            SocialNet(model.config) for _ in range(model.config.ensemble)
        ).to(model.device)
        try:
            model.nets.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelLoadError(f"weights in {path} do not match its config: {exc}") from None
        model.nets.eval()
        return model
