"""The network of :mod:`trajops.models.neural`: ego encoder, neighbour attention, two heads."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from trajops.models.neural import NeuralConfig


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
        self, ego: torch.Tensor, nbr: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ego ``(B, E)``, nbr ``(B, M, F)``, mask ``(B, M)`` -> offsets ``(B, T_pred, 2)``
        and hypotheses ``(B, modes, T_pred, 2)`` (both in scaled agent coordinates)."""
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
        hyp = self.modes(e.detach()).view(len(e), self.config.modes, self.config.t_pred, 2)
        return offset, hyp
