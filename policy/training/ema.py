"""Exponential moving average of weights, with Diffusion Policy's warm-up schedule."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``decay(step) = min(max_decay, 1 - (1 + step / inv_gamma) ** -power)``, clipped at 0.

    ``model`` is a separate copy whose weights track the training model's; it is what gets
    evaluated and saved as the policy.
    """

    def __init__(self, model: nn.Module, power: float = 0.75, max_decay: float = 0.9999,
                 inv_gamma: float = 1.0) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.power, self.max_decay, self.inv_gamma = power, max_decay, inv_gamma
        self.step = 0

    def decay(self) -> float:
        value = 1 - (1 + self.step / self.inv_gamma) ** -self.power
        return max(0.0, min(self.max_decay, value))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.decay()
        ema_params = list(self.model.parameters())
        params = list(model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1 - d)
        for eb, b in zip(self.model.buffers(), model.buffers(), strict=True):
            eb.copy_(b)
        self.step += 1
