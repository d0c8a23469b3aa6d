"""How a fresh chunk joins the actions it must continue, measured offline in closed loop.

A real-time node asks for the next chunk ``d`` steps before the current one runs out: the past
action and the ``d`` committed ones are fixed, and the new chunk starts right after them. If the
policy continues them, the step from the last committed action to the first new one (the join)
is as large as the steps inside a chunk; if it picks another mode, the join jumps.

Here the policy drives episodes in process, chunk by chunk. Whenever ``d`` steps of the current
chunk remain, it also draws ``draws`` fresh trajectories from that very state, holding the last
sent action and those ``d`` committed steps, exactly as the node's request would, and records the
join, which joints its change falls on, and the steps inside each draw. ``d = 0`` draws at each
chunk boundary, holding the past action only (``inpaint_past``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from policy.diffusion.policy import DiffusionPolicy
from sim.env import ReverieEnv


def _steps(traj: np.ndarray, n_joints: int) -> np.ndarray:
    """(..., n, A) -> (..., n-1) L2 change of the arm joints per step."""
    return np.linalg.norm(np.diff(traj[..., :n_joints], axis=-2), axis=-1)


def measure_joins(policy: DiffusionPolicy, episodes: int, seed: int,
                  committed: tuple[int, ...] = (0, 1, 2, 3, 4, 5), draws: int = 16,
                  steps: int | None = None, guidance: float = 0.0, generator_seed: int = 0) -> dict[str, Any]:
    """Join and inside-chunk steps of fresh chunks behind ``d`` committed steps, per ``d``."""
    to, ta, h = policy.cfg.n_obs_steps, policy.cfg.n_action_steps, policy.cfg.horizon
    if to < 2:
        raise ValueError("measuring joins needs n_obs_steps >= 2 (a past action in the trajectory)")
    if min(committed) < 0 or max(committed) >= ta or h - (to - 1) - max(committed) < 2:
        raise ValueError(f"committed steps must lie in [0, {ta - 1}] (n_action_steps - 1), got {committed}")
    if episodes < 1 or draws < 1:
        raise ValueError(f"episodes and draws must be >= 1, got {episodes}, {draws}")
    n_joints = policy.shapes.action_dim - 1
    gen = torch.Generator().manual_seed(generator_seed)
    joins: dict[int, list[float]] = {d: [] for d in committed}
    per_joint: dict[int, list[np.ndarray]] = {d: [] for d in committed}
    insides: dict[int, list[float]] = {d: [] for d in committed}
    executed_inside: list[float] = []
    successes = 0
    for ep in range(episodes):
        env = ReverieEnv(policy.shapes.task, policy.shapes.robot)
        try:
            obs, _ = env.reset(seed=seed + ep)
            policy.reset()
            chunk, p, past, done = None, ta, None, False
            while not done:
                policy.observe(obs)
                if p == ta:  # the current chunk is spent: plan the next (holding the past action)
                    if past is not None and 0 in committed:
                        _draw(policy, past, np.zeros((0, past.shape[0])), 0, draws, steps, guidance, gen,
                              joins, insides, n_joints, per_joint)
                    traj = policy.candidates(1, steps=steps, generator=gen)[0, 0].numpy()
                    chunk, p = traj[to - 1: to - 1 + ta], 0
                    executed_inside += _steps(chunk, n_joints).tolist()
                d = ta - p
                if past is not None and d in committed and d > 0:
                    _draw(policy, past, chunk[p:], d, draws, steps, guidance, gen, joins, insides, n_joints,
                          per_joint)
                action = chunk[p]
                p += 1
                policy.record_sent(action[None])
                past = action
                obs, _, term, trunc, info = env.step(action)
                done = term or trunc
            successes += bool(info.get("success", False))
        finally:
            env.close()
    ref = float(np.percentile(executed_inside, 95))
    rows = []
    for d in committed:
        j, i = np.asarray(joins[d]), np.asarray(insides[d])
        rows.append({"committed": d, "draws": len(j),
                     "join_p50": float(np.median(j)), "join_p95": float(np.percentile(j, 95)),
                     "inside_p95": float(np.percentile(i, 95)),
                     "join_over_inside_p95": float(np.percentile(j, 95) / np.percentile(i, 95)),
                     "share_join_above_executed_inside_p95": float(np.mean(j > ref)),
                     "join_p95_per_joint": np.percentile(np.concatenate(per_joint[d]), 95, axis=0).tolist()})
    return {"episodes": episodes, "seed": seed, "draws_per_state": draws, "guidance": guidance,
            "steps": steps or policy.cfg.num_inference_steps,
            "prefix_conditioning": policy.cfg.prefix_conditioning,
            "success_rate_of_driving_policy": successes / episodes,
            "executed_inside_p95": ref, "per_committed": rows}


def _draw(policy: DiffusionPolicy, past: np.ndarray, committed: np.ndarray, d: int, draws: int,
          steps: int | None, guidance: float, gen: torch.Generator, joins: dict, insides: dict,
          n_joints: int, per_joint: dict) -> None:
    """Draw fresh trajectories behind the past action and ``d`` committed steps; record their joins
    and the steps among the new actions the node would execute."""
    to, ta, h = policy.cfg.n_obs_steps, policy.cfg.n_action_steps, policy.cfg.horizon
    known, keep = policy.known_prefix(past, committed[:d])
    trajs = policy.sample(policy.observation_window(), policy.instructions, draws, known=known, keep=keep,
                          steps=steps, generator=gen, guidance=guidance)[0].numpy()
    j = to - 1 + d  # index of the first new action
    n = min(ta, h - j)
    change = np.abs(trajs[:, j, :n_joints] - trajs[:, j - 1, :n_joints])
    joins[d] += np.linalg.norm(change, axis=-1).tolist()
    per_joint[d].append(change)
    insides[d] += _steps(trajs[:, j: j + n], n_joints).ravel().tolist()
