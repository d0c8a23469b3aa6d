"""Where chunks come from: a policy in this process (``PolicySource``), or over the network.

``plan(request)`` takes the last To observations (one per plan step, oldest first), the To-1
actions already sent before the newest observation (``past``) and the actions already committed
for the steps from the newest observation until the new chunk takes over (``committed``), and
returns the targets for the steps after those. The committed steps are inpainted: the new
trajectory is denoised with them held fixed, so it continues what the robot is doing instead of
starting afresh (no temporal ensembling, no jump at the switch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from policy.diffusion.policy import DiffusionPolicy, Observation


@dataclass
class PlanRequest:
    observations: list[Observation]
    """The last To observations, oldest first (fewer at the start: the first is repeated)."""
    past: np.ndarray
    """(p, A) actions sent before the newest observation, oldest first (p <= To-1)."""
    committed: np.ndarray
    """(d, A) actions that will execute from the newest observation's step before the new chunk."""
    meta: dict[str, Any] = field(default_factory=dict)


class ChunkSource(Protocol):
    def plan(self, request: PlanRequest) -> np.ndarray:
        """(n, A) targets for the steps after ``committed``."""


class PolicySource:
    """A diffusion policy in this process."""

    def __init__(self, policy: DiffusionPolicy, steps: int | None = None, seed: int = 0) -> None:
        self.policy = policy
        self.steps = steps
        self.generator = torch.Generator(device=policy.obs_norm.centre.device).manual_seed(seed)

    @property
    def max_committed(self) -> int:
        """The most committed steps a request may carry (leaving at least one new action)."""
        return self.policy.cfg.horizon - self.policy.cfg.n_obs_steps

    def plan(self, request: PlanRequest) -> np.ndarray:
        p = self.policy
        to, h, a_dim = p.cfg.n_obs_steps, p.cfg.horizon, p.shapes.action_dim
        d = len(request.committed)
        if d > self.max_committed:
            raise ValueError(f"{d} committed steps leave no room in a horizon of {h} (at most "
                             f"{self.max_committed}): inference is slower than the plan allows")
        p.reset()
        obs = list(request.observations)[-to:]
        for o in obs:
            p.observe(o)
        window = p.observation_window()
        known = torch.zeros(1, h, a_dim, device=window.device)
        keep = torch.zeros(h, dtype=torch.bool, device=window.device)
        past = np.asarray(request.past, dtype=np.float32).reshape(-1, a_dim)[-(to - 1):] if to > 1 else \
            np.zeros((0, a_dim), np.float32)
        if len(past):
            known[0, to - 1 - len(past): to - 1] = torch.as_tensor(past)
            keep[to - 1 - len(past): to - 1] = True
        if d:
            known[0, to - 1: to - 1 + d] = torch.as_tensor(np.asarray(request.committed, dtype=np.float32))
            keep[to - 1: to - 1 + d] = True
        traj = p.sample(window, p.instructions, 1, known=known if keep.any() else None,
                        keep=keep if keep.any() else None, steps=self.steps, generator=self.generator)
        traj = traj[0, 0].cpu().numpy()
        n = min(p.cfg.n_action_steps, h - (to - 1) - d)
        return traj[to - 1 + d: to - 1 + d + n]
