"""Policy benchmarks: latency from observation to action chunk."""

from __future__ import annotations

import statistics
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from policy import checkpoint
from policy.diffusion.config import DiffusionConfig, PolicyShapes
from policy.diffusion.policy import DiffusionPolicy
from sim.bench import machine
from sim.data.format import STATE, frame_from_obs
from sim.registry import env_id, get_task


def untrained_policy(task: str, robot: str, preset: str) -> DiffusionPolicy:
    """A randomly initialised policy with the shapes ``task`` on ``robot`` gives (for timing)."""
    cfg = DiffusionConfig(preset=preset)
    env = gym.make(env_id(task, robot))
    obs, _ = env.reset(seed=0)
    env.close()
    frame = frame_from_obs(obs)
    dims = {f: len(frame[f]) for f in cfg.obs_features if f in frame}
    action_dim = len(frame[STATE])  # joint targets + gripper, like the state
    shapes = PolicyShapes(task, robot, action_dim, dims, get_task(task).instructed)
    obs_dim = sum(dims.values())
    return DiffusionPolicy(cfg, shapes, -np.ones(obs_dim), np.ones(obs_dim), -np.ones(action_dim),
                           np.ones(action_dim))


def bench_latency(policy: DiffusionPolicy, ks: list[int], steps_list: list[int], repeats: int = 50,
                  scheduler: str | None = None, compile: bool = False) -> dict[str, Any]:
    """p50/p95 ms of observation dict -> K candidate trajectories (and the chunk), per (K, steps).

    Timed path: flatten and normalise the observation, encode, sample K trajectories with
    ``steps`` denoising steps, unnormalise and copy to numpy.
    """
    policy = policy.eval()
    if scheduler:
        policy.cfg.scheduler = scheduler
    if compile:
        policy.denoiser.forward = torch.compile(policy.denoiser.forward, dynamic=False)
    env = gym.make(env_id(policy.shapes.task, policy.shapes.robot))
    obs, _ = env.reset(seed=0)
    env.close()
    dev = policy.obs_norm.centre.device
    results = []
    for k in ks:
        for steps in steps_list:
            def once(k: int = k, steps: int = steps) -> None:
                policy.reset()
                policy.observe(obs)
                traj = policy.sample(policy.observation_window(), policy.instructions, k, steps=steps)
                traj.cpu().numpy()
            for _ in range(3):
                once()
            times = []
            for _ in range(repeats):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                once()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            results.append({"k": k, "steps": steps, "p50_ms": statistics.median(times),
                            "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
                            "repeats": repeats})
    return {"task": policy.shapes.task, "robot": policy.shapes.robot, "scheduler": policy.cfg.scheduler,
            "preset": policy.cfg.preset, "down_dims": policy.cfg.dims,
            "params": sum(p.numel() for p in policy.parameters()), "device": str(dev),
            "threads": torch.get_num_threads(), "compile": compile, "results": results,
            "machine": machine()}


def load_for_bench(ckpt: str | None, task: str, robot: str, preset: str, device: str) -> DiffusionPolicy:
    if ckpt:
        return checkpoint.load_policy(ckpt, device=device)
    return untrained_policy(task, robot, preset).to(device)


def bench_cycle(policy: DiffusionPolicy, world_model, ks: list[int], steps: int | None = None,
                refine: int = 0, repeats: int = 30) -> dict[str, Any]:
    """p50/p95 ms of one whole control cycle for one robot: observation -> K candidates -> dreams ->
    value scores -> chosen chunk (optionally refined), against the time the robot spends executing
    the previous chunk (Ta control steps): the cycle must fit inside it so the robot never waits."""
    from policy.controller import Controller, ControllerConfig
    from policy.dreamers import LearnedDreamer
    from policy.planners.registry import make_planner

    env = gym.make(env_id(policy.shapes.task, policy.shapes.robot))
    obs, _ = env.reset(seed=0)
    budget_ms = policy.cfg.n_action_steps * env.unwrapped.control_dt * 1000
    env.close()
    results = []
    for k in ks:
        ctrl = Controller(policy, LearnedDreamer(world_model), make_planner("value"),
                          ControllerConfig(k=k, refine=refine, steps=steps))
        times, parts = [], []
        for i in range(repeats + 3):
            ctrl.reset()
            t0 = time.perf_counter()
            ctrl.select_action(obs)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000)
                parts.append(ctrl.decisions[-1].timings_ms)
        times.sort()
        results.append({"k": k, "p50_ms": statistics.median(times),
                        "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
                        "parts_p50_ms": {p: statistics.median(t[p] for t in parts) for p in parts[0]},
                        "fits_in_chunk": times[round(0.95 * (len(times) - 1))] < budget_ms})
    return {"task": policy.shapes.task, "robot": policy.shapes.robot,
            "steps": steps or policy.cfg.num_inference_steps, "refine": refine,
            "chunk_execution_ms": budget_ms, "threads": torch.get_num_threads(),
            "device": str(policy.obs_norm.centre.device), "results": results, "machine": machine()}
