"""Benchmarks of the simulation layer: expert success, env step cost, collection rate."""

from __future__ import annotations

import math
import platform
import statistics
import tempfile
import time
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from sim.collection import collect, rollouts
from sim.registry import env_id


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def machine() -> dict[str, Any]:
    import os
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "mujoco": mujoco.__version__}


def bench_expert(task: str, robot: str, episodes: int, seed: int = 0, num_envs: int = 2,
                 noise: float = 0.0, perturb: float = 0.0) -> dict[str, Any]:
    """Success of the scripted expert over ``episodes`` seeded episodes."""
    t0 = time.perf_counter()
    outcomes: dict[int, bool] = {}
    lengths = []
    for ep in rollouts(task, robot, episodes, seed, num_envs, noise, perturb):
        outcomes[ep.seed] = ep.success
        lengths.append(ep.length)
    wins = sum(outcomes.values())
    lo, hi = wilson_interval(wins, episodes)
    return {"bench": "expert", "task": task, "robot": robot, "episodes": episodes,
            "success_rate": wins / episodes, "ci95": [lo, hi], "mean_length": float(np.mean(lengths)),
            "noise": noise, "perturb": perturb, "seed": seed,
            "failed_seeds": sorted(s for s, ok in outcomes.items() if not ok),
            "seconds": time.perf_counter() - t0, "machine": machine()}


def bench_throughput(task: str, robot: str, steps: int = 1000, repeats: int = 5,
                     collect_episodes: int = 20, num_envs: int = 2) -> dict[str, Any]:
    """Env step time against the bare ``mj_step`` calls it makes, measured side by side."""
    env = gym.make(env_id(task, robot)).unwrapped
    env.reset(seed=0)
    action = env.robot.home_action
    model, data, n_sub = env.scene.model, env.scene.data, env.n_substeps
    env_times, raw_times = [], []
    for _ in range(repeats):
        env.reset(seed=0)
        t = time.perf_counter()
        for _ in range(steps):
            env.step(action)
        env_times.append((time.perf_counter() - t) / steps)
        env.reset(seed=0)
        t = time.perf_counter()
        for _ in range(steps):
            for _ in range(n_sub):
                mujoco.mj_step(model, data)
        raw_times.append((time.perf_counter() - t) / steps)
    env.close()
    env_step, raw_step = statistics.median(env_times), statistics.median(raw_times)
    out: dict[str, Any] = {
        "bench": "throughput", "task": task, "robot": robot, "substeps_per_step": n_sub,
        "env_step_ms_p50": env_step * 1e3, "raw_mj_step_x_substeps_ms_p50": raw_step * 1e3,
        "overhead_ratio": env_step / raw_step, "env_steps_per_s": 1 / env_step,
        "machine": machine(),
    }
    if collect_episodes:
        with tempfile.TemporaryDirectory() as tmp:
            r = collect(task, robot, collect_episodes, f"{tmp}/ds", num_envs=num_envs,
                        progress=False)
        out.update({"collect_episodes": collect_episodes, "collect_num_envs": num_envs,
                    "collect_frames_per_s": r.frames_per_second,
                    "collect_episodes_per_s": collect_episodes / r.seconds})
    return out
