"""Where chunks come from: a policy in this process (``PolicySource``), or over the network.

``plan(request)`` takes the last To observations (one per plan step, oldest first), the To-1
actions already sent before the newest observation (``past``) and the actions already committed
for the steps from the newest observation until the new chunk takes over (``committed``), and
returns the targets for the steps after those: the policy's ``n_action_steps`` (the plan,
``execute_steps``) and the rest of its horizon after them (the reserve a node follows only while
the next chunk is late). The committed steps are inpainted: the new trajectory is denoised with
them held fixed, so it continues what the robot is doing instead of starting afresh (no temporal
ensembling, no jump at the switch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from policy.diffusion.policy import DiffusionPolicy, Observation

INPAINT_GUIDANCE = 0.0
"""Reconstruction guidance towards the committed steps (``Sampler.sample``), off by default.
Offline, at Push start states, weight 2 cut jumps right after the committed steps from 35-47 % of
draws to 0-17 %; but in closed loop through the node the guided chunks turned erratic (p95 step
inside chunks 3 rad) and success fell from 0.75 to 0.35 (BENCHMARKS.md)."""


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
    """A diffusion policy in this process. With ``join_samples`` > 1 it draws that many chunks
    behind the same committed steps in one batch and keeps the one that continues the committed
    motion most smoothly (least acceleration at the join; backward coherence, as in BID)."""

    def __init__(self, policy: DiffusionPolicy, steps: int | None = None, seed: int = 0,
                 guidance: float = INPAINT_GUIDANCE, join_samples: int = 1) -> None:
        if join_samples < 1:
            raise ValueError(f"join_samples must be >= 1, got {join_samples}")
        self.policy = policy
        self.steps = steps
        self.guidance = guidance
        self.join_samples = join_samples
        self.generator = torch.Generator(device=policy.obs_norm.centre.device).manual_seed(seed)

    @property
    def max_committed(self) -> int:
        """The most committed steps a request may carry (leaving at least one new action)."""
        return self.policy.cfg.horizon - self.policy.cfg.n_obs_steps

    @property
    def execute_steps(self) -> int:
        """How many of a chunk's targets are its plan; those after them are reserve."""
        return self.policy.cfg.n_action_steps

    def plan(self, request: PlanRequest) -> np.ndarray:
        known, keep = self._prefix(request)
        p = self.policy
        n = self.join_samples if known is not None else 1
        trajs = p.sample(p.observation_window(), p.instructions, n, known=known, keep=keep, steps=self.steps,
                         generator=self.generator, guidance=self.guidance if known is not None else 0.0)
        trajs = trajs[0].cpu().numpy()
        first_new = p.cfg.n_obs_steps - 1 + len(request.committed)
        best = smoothest_join(trajs, first_new, p.shapes.action_dim - 1) if n > 1 else 0
        return self._after_committed(trajs[best], len(request.committed))

    def _after_committed(self, traj: np.ndarray, d: int) -> np.ndarray:
        """The new actions of a (H, A) trajectory: all those after the past and the committed steps
        (the first ``execute_steps`` are the plan, the rest reserve)."""
        return traj[self.policy.cfg.n_obs_steps - 1 + d:]

    def _prefix(self, request: PlanRequest) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Observe the request's history; the known trajectory and keep mask of its past and
        committed actions (None, None when there are none)."""
        p = self.policy
        to, h = p.cfg.n_obs_steps, p.cfg.horizon
        d = len(request.committed)
        if d > self.max_committed:
            raise ValueError(f"{d} committed steps leave no room in a horizon of {h} (at most "
                             f"{self.max_committed}): inference is slower than the plan allows")
        p.reset()
        for o in list(request.observations)[-to:]:
            p.observe(o)
        return p.known_prefix(request.past, request.committed)


def smoothest_join(trajs: np.ndarray, first_new: int, n_joints: int) -> int:
    """Index of the (n, H, A) trajectory whose arm joints accelerate least where its free steps
    begin (``first_new``; the steps before it are the known prefix, shared by all)."""
    if first_new < 1:
        return 0
    x = trajs[:, max(first_new - 2, 0): first_new + 1, :n_joints]
    jolt = np.diff(x, n=min(2, x.shape[1] - 1), axis=1)[:, -1]
    return int(np.argmin(np.linalg.norm(jolt, axis=-1)))


class ControllerSource(PolicySource):
    """The sample -> dream -> choose controller in this process: K candidates, all holding the same
    past and committed prefix, dreamed by the learned world model and chosen by the planner."""

    def __init__(self, controller, steps: int | None = None, seed: int = 0,
                 guidance: float = INPAINT_GUIDANCE) -> None:
        super().__init__(controller.policy, steps, seed, guidance)
        self.controller = controller
        self.decisions: list = []
        """The last decisions made (for logging and recording)."""

    def plan(self, request: PlanRequest) -> np.ndarray:
        ctrl = self.controller
        ctrl.reset()  # (resets the policy too: the prefix below observes afresh)
        known, keep = self._prefix(request)
        for o in list(request.observations)[-self.policy.cfg.n_obs_steps:]:
            ctrl._history.append([o])
        ctrl._active = np.ones(1, bool)
        extra = {} if known is None else {"known": known, "keep": keep, "guidance": self.guidance}
        decision = ctrl.plan([request.observations[-1]], self.steps, self.generator, **extra)[0]
        self.decisions = [decision]
        return self._after_committed(decision.chosen, len(request.committed))
