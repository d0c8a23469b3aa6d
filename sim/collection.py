"""Runs the scripted experts in parallel (gymnasium vector envs) and records episodes.

Episode ``i`` always uses reset seed ``seed + i`` and expert seed ``(seed, i)``, whatever the
number of parallel environments, so a collection is reproducible.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from tqdm import tqdm

from robots.registry import get_robot
from sim import keys
from sim.data.format import ACTION, DONE, OBS_FEATURES, REWARD, STATE, SUCCESS, frame_from_obs
from sim.data.writer import DemoWriter
from sim.experts import EXPERTS
from sim.registry import env_id, get_task
from sim.workspace import WORKSPACES

TASK_DESCRIPTIONS = {
    "reach": "move the gripper to the green sphere",
    "push": "push the red cube onto the green target",
    "pick_place": "pick up the red cube and place it on the green target",
}


@dataclass
class Episode:
    """One finished rollout: per-frame arrays, its seed and outcome."""

    index: int
    seed: int
    success: bool
    frames: dict[str, list[Any]] = field(default_factory=dict)
    instruction: str | None = None

    @property
    def length(self) -> int:
        return len(self.frames[ACTION])


def _split(obs: dict[str, Any], i: int) -> dict[str, Any]:
    return {k: v[i] for k, v in obs.items()}


def rollouts(task: str, robot: str, episodes: int, seed: int = 0, num_envs: int = 2,
             noise: float = 0.0, perturb: float = 0.0,
             env_kwargs: dict[str, Any] | None = None) -> Iterator[Episode]:
    """Yield expert episodes (in completion order) from ``num_envs`` parallel environments."""
    get_task(task)
    if episodes < 1 or num_envs < 1:
        raise ValueError(f"need episodes >= 1 and num_envs >= 1, got {episodes}, {num_envs}")
    num_envs = min(num_envs, episodes)
    rb, ws = get_robot(robot), WORKSPACES[robot]
    envs = gym.make_vec(env_id(task, robot), num_envs=num_envs,
                        vectorization_mode="async" if num_envs > 1 else "sync",
                        vector_kwargs=_vector_kwargs(num_envs),
                        **(env_kwargs or {}))
    control_dt = envs.get_attr("control_dt")[0]
    experts = [EXPERTS[task](rb, ws, control_dt, noise=noise, perturb=perturb) for _ in range(num_envs)]
    current: list[Episode | None] = [None] * num_envs  # the episode each slot is running
    frame_keys = (*_FRAME_KEYS, ACTION, REWARD, DONE, SUCCESS)
    next_ep = 0
    try:
        obs: dict[str, Any] = {}
        while True:
            # Start the next episodes in idle slots, each with its own seed.
            mask = np.zeros(num_envs, dtype=bool)
            seeds: list[int | None] = [None] * num_envs
            for k in range(num_envs):
                if current[k] is None and next_ep < episodes:
                    current[k] = Episode(next_ep, seed + next_ep, False,
                                         {n: [] for n in frame_keys})
                    mask[k], seeds[k] = True, seed + next_ep
                    next_ep += 1
            if mask.any():
                new_obs, _ = envs.reset(seed=seeds, options={"reset_mask": mask})
                obs = _merge(obs, new_obs, mask) if obs else new_obs
                for k in np.flatnonzero(mask):
                    o, ep = _split(obs, k), current[k]
                    ep.instruction = o.get(keys.INSTRUCTION)
                    experts[k].reset(o, np.random.default_rng([seed, ep.index]))
            if all(ep is None for ep in current):
                return
            actions = np.stack([experts[k].act(_split(obs, k)) if current[k] is not None
                                else _hold(obs, k) for k in range(num_envs)]).astype(np.float32)
            next_obs, reward, term, trunc, info = envs.step(actions)
            for k, ep in enumerate(current):
                if ep is None:
                    continue
                done = bool(term[k] or trunc[k])
                _record(ep, _split(obs, k), actions[k], reward[k], done, bool(info["success"][k]))
                if done:
                    ep.success = bool(info["success"][k])
                    current[k] = None
                    yield ep
            obs = next_obs
    finally:
        envs.close()


def _vector_kwargs(num_envs: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"autoreset_mode": AutoresetMode.DISABLED}
    if num_envs > 1:
        kwargs["shared_memory"] = False  # text observations (Sort) cannot live in shared memory
    return kwargs


def _hold(obs: dict[str, Any], k: int) -> np.ndarray:
    return np.append(obs[keys.JOINT_POS][k], obs[keys.GRIPPER][k])


def _merge(old: dict[str, Any], new: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    out = {}
    for key, v in new.items():
        if isinstance(v, np.ndarray):
            out[key] = np.where(mask.reshape(-1, *([1] * (v.ndim - 1))), v, old[key])
        else:
            out[key] = tuple(n if m else o for n, o, m in zip(v, old[key], mask, strict=True))
    return out


_FRAME_KEYS = (STATE, *OBS_FEATURES.values())


def _record(ep: Episode, obs: dict[str, Any], action: np.ndarray, reward: float, done: bool,
            success: bool) -> None:
    f = ep.frames
    for feature, value in frame_from_obs(obs).items():
        f[feature].append(value)
    f[ACTION].append(action)
    f[REWARD].append([reward])
    f[DONE].append([done])
    f[SUCCESS].append([success])


def dataset_features(task: str, robot: str, sample: Episode) -> dict[str, dict[str, Any]]:
    """LeRobot feature declarations for what ``rollouts`` records."""
    rb = get_robot(robot)
    names = [*rb.joint_names, rb.gripper_joint]
    feats: dict[str, dict[str, Any]] = {
        STATE: {"dtype": "float32", "shape": [len(names)], "names": names},
        ACTION: {"dtype": "float32", "shape": [len(names)], "names": names},
    }
    for feature, values in sample.frames.items():
        if feature.startswith("observation.") and feature != STATE and values:
            feats[feature] = {"dtype": "float32", "shape": [len(values[0])], "names": None}
    feats[REWARD] = {"dtype": "float32", "shape": [1], "names": None}
    feats[DONE] = {"dtype": "bool", "shape": [1], "names": None}
    feats[SUCCESS] = {"dtype": "bool", "shape": [1], "names": None}
    return feats


@dataclass
class CollectResult:
    out: str
    task: str
    robot: str
    episodes: int
    frames: int
    success_rate: float
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds


def collect(task: str, robot: str, episodes: int, out: str | Path, seed: int = 0,
            num_envs: int = 2, noise: float = 0.0, perturb: float = 0.0, overwrite: bool = False,
            progress: bool = True, on_episode: Callable[[Episode], None] | None = None) -> CollectResult:
    """Collect ``episodes`` expert demonstrations into a LeRobot v3 dataset at ``out``."""
    fps = 10
    writer: DemoWriter | None = None
    pending: dict[int, Episode] = {}
    next_write, frames, successes = 0, 0, 0
    t0 = time.perf_counter()
    bar = tqdm(total=episodes, desc=f"collect {task}/{robot}", unit="ep", disable=not progress)
    for ep in rollouts(task, robot, episodes, seed, num_envs, noise, perturb):
        if writer is None:
            writer = DemoWriter(out, fps, robot, dataset_features(task, robot, ep), overwrite,
                                env_task=task)
        pending[ep.index] = ep
        while next_write in pending:  # write in episode order, whatever finished first
            e = pending.pop(next_write)
            arrays = {k: np.asarray(v) for k, v in e.frames.items()}
            writer.add_episode(arrays, e.instruction or TASK_DESCRIPTIONS[task],
                               {"success": e.success, "seed": e.seed})
            frames += e.length
            successes += e.success
            next_write += 1
        bar.update(1)
        bar.set_postfix(success=f"{successes / max(next_write, 1):.2f}")
        if on_episode:
            on_episode(ep)
    bar.close()
    assert writer is not None
    writer.close()
    return CollectResult(str(out), task, robot, episodes, frames, successes / episodes,
                         time.perf_counter() - t0)
