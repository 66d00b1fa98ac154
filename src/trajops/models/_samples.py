"""K > 1 samples from the multi-hypothesis heads: which hypotheses become samples.

One member's ``modes`` hypotheses are its samples in order. An ensemble has ``members x
modes`` of them (interleaved member by member), and the members' heads, trained
winner-takes-all from different seeds, do not order their modes alike. The selections:

* ``first`` (the default): the first member's modes. Each member's head already quantises the
  future like k-means does (winner-takes-all), and one member's quantisation covers it best.
* ``interleave``: the first hypotheses of every member (the code before ``first``): keeps some
  modes of each member and drops the rest, which is why it scored worst.
* ``cluster`` / ``medoid``: k-means over all members' hypotheses, one sample per cluster (its
  mean, or the hypothesis nearest it).

Then, but for an ensemble's ``cluster`` and ``medoid``, the hypothesis nearest the
deterministic forecast is left out while others remain: sample 0 already stands there.

``bench/ensemble_samples.py`` chose both on every fold's validation split: ``first`` (3
members, minADE@20 0.1696 against 0.1716 for ``cluster``, 0.1739 ``medoid``, 0.1867
``interleave``), then leaving the nearest out (0.1696 -> 0.1677); docs/benchmarks.md.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from trajops.errors import ConfigError

SampleSelection = Literal["interleave", "first", "cluster", "medoid"]


def check_selection(value: str) -> None:
    """Raise :class:`ConfigError` naming the choices unless ``value`` is a selection."""
    if value not in get_args(SampleSelection):
        choices = ", ".join(get_args(SampleSelection))
        raise ConfigError(f"samples must be one of {choices}, got {value!r}")


LLOYD_STEPS = 10
"""Lloyd iterations of :func:`cluster_trajectories` (assignments settle in 5-8 here)."""


def cluster_trajectories(
    trajectories: np.ndarray, k: int, *, steps: int = LLOYD_STEPS, chunk: int = 4096
) -> np.ndarray:
    """``k`` representatives of each agent's trajectories, deterministically.

    k-means with the squared distance summed over the whole trajectory: seeds by
    farthest-point sampling from the trajectory nearest the agent's mean, then ``steps``
    Lloyd iterations; a cluster left empty keeps its centre.

    Args:
        trajectories: ``(N, H, T, 2)``, H >= k.
        k: clusters per agent.

    Returns:
        ``(N, k, T, 2)`` cluster means, in the order their seeds were picked.
    """
    n, h = trajectories.shape[:2]
    if not 1 <= k <= h:
        raise ValueError(f"k must be between 1 and {h}, got {k}")
    out = np.empty((n, k, *trajectories.shape[2:]), dtype=np.float64)
    for start in range(0, n, chunk):
        x = trajectories[start : start + chunk].reshape(-1, h, trajectories[0, 0].size)
        out[start : start + chunk] = _kmeans(x.astype(np.float64), k, steps).reshape(
            len(x), k, *trajectories.shape[2:]
        )
    return out


def _kmeans(x: np.ndarray, k: int, steps: int) -> np.ndarray:
    """Centres ``(n, k, D)`` of the points ``x (n, H, D)`` of each of n agents."""
    n = len(x)
    rows = np.arange(n)
    first = ((x - x.mean(axis=1, keepdims=True)) ** 2).sum(-1).argmin(axis=1)  # (n,)
    seeds = [first]
    nearest = ((x - x[rows, first][:, None]) ** 2).sum(-1)  # (n, H) to the nearest seed
    for _ in range(k - 1):
        far = nearest.argmax(axis=1)
        seeds.append(far)
        nearest = np.minimum(nearest, ((x - x[rows, far][:, None]) ** 2).sum(-1))
    centres = x[rows[:, None], np.stack(seeds, axis=1)]  # (n, k, D)
    sq = (x**2).sum(-1)[:, :, None]  # (n, H, 1)
    labels = np.arange(k)
    for _ in range(steps):
        dist = sq - 2 * x @ centres.transpose(0, 2, 1) + (centres**2).sum(-1)[:, None]  # (n, H, k)
        member = (dist.argmin(axis=2)[:, :, None] == labels).astype(np.float64)  # (n, H, k)
        counts = member.sum(axis=1)[:, :, None]  # (n, k, 1)
        sums = member.transpose(0, 2, 1) @ x  # (n, k, D)
        centres = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
    return centres


def pick_hypotheses(
    hyp: np.ndarray,
    extra: int,
    *,
    members: int,
    selection: SampleSelection,
    det: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``extra`` samples after the deterministic one, from hypotheses ``(N, H, T, 2)``
    (an ensemble's interleaved member by member).

    Args:
        det: the deterministic forecast ``(N, T, 2)`` in the hypotheses' units. Given, and with
            hypotheses to spare, the one nearest it is left out: sample 0 already gives it.

    Returns:
        ``(N, extra, T, 2)`` samples and a mask ``(extra,)`` of those that repeat an earlier
        hypothesis (more samples asked than hypotheses: the caller jitters them).
    """
    n_hyp = hyp.shape[1]
    if members > 1 and selection == "first":
        hyp, n_hyp = hyp[:, ::members], n_hyp // members  # the first member's modes
    if selection in ("cluster", "medoid") and members > 1 and extra < n_hyp:
        centres = cluster_trajectories(hyp, extra)
        if selection == "medoid":  # the hypothesis nearest each centre
            d = ((hyp[:, None] - centres[:, :, None]) ** 2).sum(axis=(-1, -2))  # (N, extra, H)
            centres = np.take_along_axis(hyp, d.argmin(axis=2)[:, :, None, None], axis=1)
        return centres.astype(np.float64), np.zeros(extra, dtype=bool)
    if det is not None and extra < n_hyp:
        nearest = ((hyp - det[:, None]) ** 2).sum(axis=(-1, -2)).argmin(axis=1)  # (N,)
        keep = np.arange(n_hyp)[None] != nearest[:, None]  # (N, H): the others, in order
        hyp, n_hyp = hyp[keep].reshape(len(hyp), n_hyp - 1, *hyp.shape[2:]), n_hyp - 1
    pick = np.arange(extra) % n_hyp
    return hyp[:, pick].astype(np.float64), np.arange(extra) >= n_hyp


def jitter_repeats(samples: np.ndarray, repeated: np.ndarray, rng: np.random.Generator) -> None:
    """Move the repeated samples ``(N, K, T, 2)`` (metres; ``repeated`` ``(K,)``) in place by
    a random offset growing to 0.1 m (one standard deviation) at the last step, so no two
    samples coincide."""
    if not repeated.any():
        return
    t = samples.shape[2]
    jitter = rng.standard_normal((len(samples), int(repeated.sum()), 1, 2)) * 0.1
    samples[:, repeated] += jitter * np.arange(1, t + 1)[None, None, :, None] / t
