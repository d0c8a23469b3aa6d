"""Per-dimension min-max normalisation to [-1, 1] from dataset statistics."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

MIN_RANGE = 1e-4
"""Dimensions that vary less than this in the data are centred, not stretched."""


class MinMaxNormalizer(nn.Module):
    """``normalize(x) = 2 (x - min) / (max - min) - 1`` over the last axis; a no-op scale for
    near-constant dimensions so they map to 0 instead of blowing up noise."""

    def __init__(self, low: np.ndarray | Tensor, high: np.ndarray | Tensor) -> None:
        super().__init__()
        low = torch.as_tensor(np.asarray(low, dtype=np.float32)).reshape(-1)
        high = torch.as_tensor(np.asarray(high, dtype=np.float32)).reshape(-1)
        if low.shape != high.shape:
            raise ValueError(f"min and max shapes differ: {tuple(low.shape)} vs {tuple(high.shape)}")
        if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ValueError("normalisation statistics contain NaN or inf")
        span = high - low
        constant = span < MIN_RANGE
        self.register_buffer("centre", (high + low) / 2)
        self.register_buffer("half_range", torch.where(constant, torch.ones_like(span), span / 2))

    @property
    def dim(self) -> int:
        return self.centre.shape[0]

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.centre) / self.half_range

    def unnormalize(self, y: Tensor) -> Tensor:
        return y * self.half_range + self.centre


def obs_action_normalizers(obs_low, obs_high, action_low, action_high, obs_dim: int,
                           action_dim: int) -> tuple[MinMaxNormalizer, MinMaxNormalizer]:
    """The observation and action normalisers of a model, checked against its shapes."""
    obs_norm, action_norm = MinMaxNormalizer(obs_low, obs_high), MinMaxNormalizer(action_low, action_high)
    if obs_norm.dim != obs_dim or action_norm.dim != action_dim:
        raise ValueError(f"statistics widths ({obs_norm.dim}, {action_norm.dim}) do not "
                         f"match the shapes ({obs_dim}, {action_dim})")
    return obs_norm, action_norm
