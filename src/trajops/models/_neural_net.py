"""The network of :mod:`trajops.models.neural`: ego encoder, neighbour attention, two heads
(a path and hypotheses, or an endpoint and endpoints decoded into paths), its training loss;
and the torch helpers it trains with (device choice, thread scope, mirror augmentation)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from trajops.errors import ConfigError
from trajops.models._neural_config import NeuralConfig


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


def xy_features(t_obs: int) -> int:
    """How many leading features of ``ego`` and ``nbr`` are coordinates (interleaved x, y):
    the observed positions, then the steps between them."""
    return t_obs * 2 + (t_obs - 1) * 2


def flip_y(x: torch.Tensor, n_xy: int) -> torch.Tensor:
    """``x`` ``(..., F)`` reflected across the heading axis: y -> -y in the first ``n_xy``
    features (interleaved x, y); the rest unchanged."""
    sign = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
    sign[1:n_xy:2] = -1.0
    return x * sign


def mirror(
    ego: torch.Tensor,
    nbr: torch.Tensor,
    target: torch.Tensor,
    *,
    t_obs: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reflect a random half of the batch across the heading axis (y -> -y)."""
    flip = torch.as_tensor(rng.random(len(ego)) < 0.5, device=ego.device)[:, None]
    n_xy = xy_features(t_obs)
    return (
        torch.where(flip, flip_y(ego, n_xy), ego),
        torch.where(flip[:, :, None], flip_y(nbr, n_xy), nbr),
        torch.where(flip[:, :, None], flip_y(target, 2), target),
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
    """Ego encoder + neighbour attention + CV-offset head + multi-hypothesis head; with
    ``config.goal`` the heads predict endpoints and a decoder the path to each."""

    def __init__(self, config: NeuralConfig) -> None:
        super().__init__()
        h, t_obs, t_pred = config.hidden, config.t_obs, config.t_pred
        self.config = config
        self.ego = mlp([xy_features(t_obs) + 1, h, h], config.dropout)  # + log speed scale
        d = h
        if config.neighbours > 0:
            self.nbr = mlp([xy_features(t_obs) + t_obs, h, h])  # + seen mask
            self.query = nn.Linear(h, h)
            self.null_key = nn.Parameter(torch.zeros(1, 1, h))
            if config.social_heads > 1:
                self.value = nn.Linear(h, h)
            d = 2 * h
        out = 2 if config.goal else t_pred * 2
        self.head = mlp([d, h, h, out], config.dropout)
        self.modes = mlp([d, h, config.modes * out])
        if config.goal:
            self.path = mlp([d + 2, h, h, (t_pred - 1) * 2], config.dropout)

    def encode(self, ego: torch.Tensor, nbr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ego ``(B, E)``, nbr ``(B, M, F)``, mask ``(B, M)`` -> the scene's encoding
        ``(B, D)``: the agent's, and what it attends to among its neighbours."""
        e = self.ego(ego)  # (B, H)
        if self.config.neighbours == 0:
            return e
        keys = self.nbr(nbr)  # (B, M, H)
        keys = torch.cat([self.null_key.expand(len(e), 1, -1), keys], dim=1)  # (B, M+1, H)
        valid = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)  # (B, M+1)
        b, m, h = keys.shape
        heads = self.config.social_heads
        if heads == 1:  # the original network, operation for operation (same digits)
            score = (keys @ self.query(e).unsqueeze(-1)).squeeze(-1) / h**0.5
            score = score.masked_fill(~valid, float("-inf"))
            social = (torch.softmax(score, dim=1).unsqueeze(-1) * keys).sum(dim=1)  # (B, H)
            return torch.cat([e, social], dim=-1)
        values = self.value(keys).view(b, m, heads, h // heads)
        q = self.query(e).view(b, 1, heads, h // heads)
        score = (keys.view(b, m, heads, h // heads) * q).sum(-1) / (h // heads) ** 0.5
        score = score.masked_fill(~valid[:, :, None], float("-inf"))  # (B, M+1, heads)
        social = (torch.softmax(score, dim=1).unsqueeze(-1) * values).sum(dim=1)
        return torch.cat([e, social.reshape(b, h)], dim=-1)

    def decode(self, e: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        """The path ``(..., T_pred, 2)`` from encodings ``(..., D)`` to endpoints ``(..., 2)``."""
        inner = self.path(torch.cat([e, end], dim=-1)).unflatten(-1, (-1, 2))
        return torch.cat([inner, end.unsqueeze(-2)], dim=-2)

    def _offset(self, e: torch.Tensor) -> torch.Tensor:
        if self.config.goal:
            return self.decode(e, self.head(e))
        return self.head(e).view(len(e), self.config.t_pred, 2)

    def _raw_modes(self, e: torch.Tensor) -> torch.Tensor:
        """The multi-hypothesis head on the detached encoding (sample 0 stays untouched):
        ``(B, modes, T_pred, 2)`` paths, or ``(B, modes, 1, 2)`` endpoints with ``goal``."""
        return self.modes(e.detach()).view(len(e), self.config.modes, -1, 2)

    def _hypotheses(self, e: torch.Tensor) -> torch.Tensor:
        """``(B, modes, T_pred, 2)``: the head's paths, or its endpoints decoded into paths."""
        raw = self._raw_modes(e)
        if self.config.goal:
            encodings = e.detach().unsqueeze(1).expand(-1, self.config.modes, -1)
            return self.decode(encodings, raw[:, :, 0])
        return raw

    def forward(
        self,
        ego: torch.Tensor,
        nbr: torch.Tensor,
        mask: torch.Tensor,
        hypotheses: bool = True,
        mirror_test: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ego ``(B, E)``, nbr ``(B, M, F)``, mask ``(B, M)`` -> offsets ``(B, T_pred, 2)``
        and hypotheses ``(B, modes, T_pred, 2)`` (both in scaled agent coordinates); without
        ``hypotheses`` the multi-hypothesis head is skipped (about a quarter of the network's
        arithmetic) and None comes back in its place. With ``mirror_test`` the offset is the
        mean of the scene's and its mirror image's (reflected back), both in one pass."""
        if not mirror_test:
            e = self.encode(ego, nbr, mask)
            return self._offset(e), self._hypotheses(e) if hypotheses else None
        n_xy, b = xy_features(self.config.t_obs), len(ego)
        both = self.encode(
            torch.cat([ego, flip_y(ego, n_xy)]),
            torch.cat([nbr, flip_y(nbr, n_xy)]),
            torch.cat([mask, mask]),
        )
        offsets = self._offset(both)
        offset = (offsets[:b] + flip_y(offsets[b:], 2)) / 2
        return offset, self._hypotheses(both[:b]) if hypotheses else None

    def loss(
        self,
        ego: torch.Tensor,
        nbr: torch.Tensor,
        mask: torch.Tensor,
        target: torch.Tensor,
        scale: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss of a batch and its deterministic part, the mean Euclidean error
        in metres (scaled units times the agent's ``scale`` ``(B,)``). The hypotheses are
        trained winner-takes-all: on the whole path, or with ``goal`` on the endpoint, while
        the decoder also learns the path to the true endpoint."""
        e = self.encode(ego, nbr, mask)
        s = scale[:, None]
        det = (torch.linalg.vector_norm(self._offset(e) - target, dim=-1) * s).mean()
        raw = self._raw_modes(e)
        if self.config.goal:
            taught = self.decode(e, target[:, -1])
            wta = torch.linalg.vector_norm(raw[:, :, 0] - target[:, None, -1], dim=-1) * s
            extra = (torch.linalg.vector_norm(taught - target, dim=-1) * s).mean()
        else:
            wta = (torch.linalg.vector_norm(raw - target[:, None], dim=-1) * s[:, None]).mean(-1)
            extra = torch.zeros((), device=e.device)
        return det + extra + wta.min(dim=1).values.mean(), det


def forward_members(
    nets: Iterable[nn.Module],
    ego: torch.Tensor,
    nbr: torch.Tensor,
    mask: torch.Tensor,
    *,
    hypotheses: bool = True,
    mirror_test: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Members' mean offset ``(B, T_pred, 2)`` and their hypotheses interleaved member by
    member ``(B, E * modes, T_pred, 2)`` (None without ``hypotheses``); ``mirror_test`` as
    :meth:`SocialNet.forward`."""
    outs = [net(ego, nbr, mask, hypotheses, mirror_test) for net in nets]
    offset = torch.stack([o for o, _ in outs]).mean(dim=0)
    if not hypotheses:
        return offset, None
    hyp = torch.stack([h for _, h in outs], dim=2)  # (B, modes, E, T_pred, 2)
    return offset, hyp.flatten(1, 2)
