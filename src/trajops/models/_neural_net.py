"""The network of :mod:`trajops.models.neural`: ego encoder, neighbour attention, two heads;
and the torch helpers it trains with (device choice, thread scope, mirror augmentation)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from trajops.errors import ConfigError

if TYPE_CHECKING:
    from trajops.models.neural import NeuralConfig

ARCHITECTURE = (
    "hidden",
    "neighbours",
    "modes",
    "speed_scale",
    "min_scale",
    "dropout",
    "ensemble",
    "t_obs",
    "t_pred",
)
"""Config fields that shape the network or its inputs: weights of one config fit another only
when these are equal (a fine-tuned model keeps its source's)."""


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a config error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; expected auto, cpu or cuda")
    return torch.device(device)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` torch intra-op threads inside the block (0: unchanged), then restore."""
    old = torch.get_num_threads()
    if n <= 0 or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def mirror(
    ego: torch.Tensor,
    nbr: torch.Tensor,
    target: torch.Tensor,
    *,
    t_obs: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reflect a random half of the batch across the heading axis (y -> -y)."""
    device = ego.device
    flip = torch.as_tensor(rng.random(len(ego)) < 0.5, device=device)
    sign_xy = torch.tensor([1.0, -1.0], device=device)
    n_xy = t_obs * 2 + (t_obs - 1) * 2  # coordinate features come first, interleaved x, y
    ego_f = ego.clone()
    ego_f[:, :n_xy] = (ego[:, :n_xy].reshape(len(ego), n_xy // 2, 2) * sign_xy).reshape(
        len(ego), n_xy
    )
    nbr_f = nbr.clone()
    b, m = nbr.shape[:2]
    nbr_f[..., :n_xy] = (nbr[..., :n_xy].reshape(b, m, n_xy // 2, 2) * sign_xy).reshape(b, m, n_xy)
    f = flip[:, None]
    return (
        torch.where(f, ego_f, ego),
        torch.where(f[:, :, None], nbr_f, nbr),
        torch.where(f[:, :, None], target * sign_xy, target),
    )


def augment(
    config: NeuralConfig,
    ego: torch.Tensor,
    nbr: torch.Tensor,
    target: torch.Tensor,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A training batch augmented as ``config`` says: mirrored (:func:`mirror`), and with
    ``speed_jitter`` scaled. Inputs and targets are in units of the agent's speed, so scaling
    a whole scene by ``exp(u)`` moves only the log speed feature (the last of ``ego``; exact
    for agents faster than ``min_scale``)."""
    if config.mirror:
        ego, nbr, target = mirror(ego, nbr, target, t_obs=config.t_obs, rng=rng)
    if config.speed_jitter > 0:
        u = rng.uniform(-config.speed_jitter, config.speed_jitter, len(ego))
        ego = ego.clone()
        ego[:, -1] += torch.as_tensor(u, dtype=ego.dtype, device=ego.device)
    return ego, nbr, target


def mlp(sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class SocialNet(nn.Module):
    """Ego encoder + neighbour attention + CV-offset head + multi-hypothesis head."""

    def __init__(self, config: NeuralConfig) -> None:
        super().__init__()
        h, t_obs, t_pred = config.hidden, config.t_obs, config.t_pred
        self.config = config
        ego_in = t_obs * 2 + (t_obs - 1) * 2 + 1  # positions, steps, log speed scale
        self.ego = mlp([ego_in, h, h], config.dropout)
        social = config.neighbours > 0
        if social:
            nbr_in = t_obs * 2 + (t_obs - 1) * 2 + t_obs  # positions, steps, seen mask
            self.nbr = mlp([nbr_in, h, h])
            self.query = nn.Linear(h, h)
            self.null_key = nn.Parameter(torch.zeros(1, 1, h))
        self.head = mlp([h * (2 if social else 1), h, h, t_pred * 2], config.dropout)
        self.modes = mlp([h * (2 if social else 1), h, config.modes * t_pred * 2])

    def forward(
        self, ego: torch.Tensor, nbr: torch.Tensor, mask: torch.Tensor, hypotheses: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ego ``(B, E)``, nbr ``(B, M, F)``, mask ``(B, M)`` -> offsets ``(B, T_pred, 2)``
        and hypotheses ``(B, modes, T_pred, 2)`` (both in scaled agent coordinates); without
        ``hypotheses`` the multi-hypothesis head is skipped (about a quarter of the network's
        arithmetic) and None comes back in its place."""
        e = self.ego(ego)  # (B, H)
        if self.config.neighbours > 0:
            keys = self.nbr(nbr)  # (B, M, H)
            keys = torch.cat([self.null_key.expand(len(e), 1, -1), keys], dim=1)  # (B, M+1, H)
            valid = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)  # (B, M+1)
            score = (keys @ self.query(e).unsqueeze(-1)).squeeze(-1) / keys.shape[-1] ** 0.5
            score = score.masked_fill(~valid, float("-inf"))
            social = (torch.softmax(score, dim=1).unsqueeze(-1) * keys).sum(dim=1)  # (B, H)
            e = torch.cat([e, social], dim=-1)
        offset = self.head(e).view(len(e), self.config.t_pred, 2)
        if not hypotheses:
            return offset, None
        hyp = self.modes(e.detach()).view(len(e), self.config.modes, self.config.t_pred, 2)
        return offset, hyp


def forward_members(
    nets: Iterable[nn.Module],
    ego: torch.Tensor,
    nbr: torch.Tensor,
    mask: torch.Tensor,
    *,
    hypotheses: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Members' mean offset ``(B, T_pred, 2)`` and their hypotheses interleaved member by
    member ``(B, E * modes, T_pred, 2)`` (None without ``hypotheses``)."""
    outs = [net(ego, nbr, mask, hypotheses) for net in nets]
    offset = torch.stack([o for o, _ in outs]).mean(dim=0)
    if not hypotheses:
        return offset, None
    hyp = torch.stack([h for _, h in outs], dim=2)  # (B, modes, E, T_pred, 2)
    return offset, hyp.flatten(1, 2)
