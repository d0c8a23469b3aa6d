"""Closed-loop evaluation: a policy drives many seeded episodes in lockstep, batched.

Besides success it reports how far the joint targets move per control step, inside a chunk and
at chunk boundaries: a boundary figure well above the inside one means the arm jerks whenever
a new chunk starts.

Episode i is reset with seed ``seed + i``. The default seeds lie far from the training
collection's (0..episodes-1), so evaluation scenes are ones the policy has not seen.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from policy.controller import Controller, Decision
from policy.decision_stats import DecisionStats
from policy.diffusion.policy import DiffusionPolicy
from policy.dream_error import ExecutedDreamError, positions
from policy.recording.recorder import Recorder
from sim import keys
from sim.bench import wilson_interval
from sim.env import ReverieEnv

EVAL_SEED = 1_000_000
"""First seed of test episodes (`reverie eval`)."""
VALIDATION_SEED = 2_000_000
"""First seed of the evaluations during training, kept apart from the test seeds so that
watching (or choosing by) the learning curve never peeks at the test episodes."""


def evaluate(policy: DiffusionPolicy, episodes: int = 100, seed: int = EVAL_SEED, *,
             batch: int = 50, steps: int | None = None, video: str | Path | None = None,
             progress: bool = True, generator_seed: int = 0, controller: Controller | None = None,
             displace: Displacement | None = None,
             on_decisions: Callable[[list[Decision]], None] | None = None,
             task_kwargs: dict[str, Any] | None = None, recorder: Recorder | None = None,
             lead: int = 0) -> dict[str, Any]:
    """Success rate (95 % Wilson interval), mean time to success and per-seed outcomes.

    With a ``controller`` the episodes are driven by sample -> dream -> choose (its policy must be
    ``policy``) and the result gains a ``controller`` section, including the executed dream's error
    against what really happened per dream step; ``displace`` moves the cube mid-episode (a harder
    setting); ``task_kwargs`` go to the task (e.g. Sort's ``phrasing``); ``recorder`` records the
    episodes whose seeds it names to rerun. ``lead`` > 0 plans each chunk that many control steps
    before it takes over, holding the steps that execute meanwhile, as the deployment node does
    while inference runs (``DiffusionPolicy.select_action``): the node's latency without its clock."""
    if controller is not None and controller.policy is not policy:
        raise ValueError("the controller must drive the policy being evaluated")
    if lead and controller is not None:
        raise ValueError("lead applies to the plain policy; to measure the controller under latency run "
                         "`reverie bench deploy ... planner=value` (the node)")
    if episodes < 1 or batch < 1:
        raise ValueError(f"episodes and batch must be >= 1, got {episodes}, {batch}")
    task, robot = policy.shapes.task, policy.shapes.robot
    gen = torch.Generator(device=policy.obs_norm.centre.device).manual_seed(generator_seed)
    outcomes: list[dict[str, Any]] = []
    frames: list[np.ndarray] = []
    t0 = time.perf_counter()
    stats, dream_error = DecisionStats(), ExecutedDreamError()
    bar = tqdm(total=episodes, desc=f"eval {task}/{robot}", unit="ep", disable=not progress)
    for start in range(0, episodes, batch):
        seeds = list(range(seed + start, seed + min(start + batch, episodes)))
        record = video is not None and start == 0
        outcomes += _run_wave(policy, task, robot, seeds, steps, gen, frames if record else None,
                              controller, displace, task_kwargs, recorder, dream_error, lead)
        if controller is not None:
            stats.add(controller.decisions)
            if on_decisions is not None:
                on_decisions(controller.decisions)
        bar.update(len(seeds))
        bar.set_postfix(success=f"{np.mean([o['success'] for o in outcomes]):.2f}")
    bar.close()
    if video is not None:
        write_video(frames, video)
    wins = [o for o in outcomes if o["success"]]
    inside = [d for o in outcomes for d in o.pop("_inside")]
    boundary = [d for o in outcomes for d in o.pop("_boundary")]
    lo, hi = wilson_interval(len(wins), len(outcomes))
    extra: dict[str, Any] = {}
    if controller is not None:
        extra["controller"] = {"planner": controller.planner.name, "dreamer": controller.dreamer.name,
                               **dataclasses.asdict(controller.cfg), **stats.summary(),
                               "executed_dream_error": dream_error.summary()}
        if hasattr(controller.planner, "stats"):
            extra["controller"]["planner_stats"] = controller.planner.stats.summary()
        if hasattr(controller.dreamer, "diverged"):  # the physics dreamer's unstable rollouts, held
            extra["controller"]["dreamer_rollouts"] = {"total": controller.dreamer.rollouts,
                                                       "diverged": controller.dreamer.diverged}
    if displace is not None:
        extra["displace"] = dataclasses.asdict(displace)
    if task_kwargs:
        extra["task_kwargs"] = task_kwargs
    if lead:
        extra["lead"] = lead
    return {**extra,
        "task": task, "robot": robot, "episodes": len(outcomes), "seed": seed,
        "inference_steps": steps or policy.cfg.num_inference_steps, "scheduler": policy.cfg.scheduler,
        "success_rate": len(wins) / len(outcomes), "ci95": [lo, hi],
        "mean_time_to_success_s": float(np.mean([o["time_s"] for o in wins])) if wins else None,
        "joint_step_rad": {"within_chunk": float(np.mean(inside)) if inside else None,
                           "at_chunk_boundary": float(np.mean(boundary)) if boundary else None},
        "seconds": time.perf_counter() - t0, "per_seed": outcomes,
    }


@dataclass
class Displacement:
    """At control step ``step`` each episode's cube jumps ``cm`` centimetres in a direction drawn
    from the episode's seed (clipped to the workspace)."""

    step: int = 30
    cm: float = 6.0

    def __post_init__(self) -> None:
        if self.step < 1 or self.cm <= 0:
            raise ValueError(f"displacement needs step >= 1 and cm > 0, got {self.step}, {self.cm}")

    def offset(self, seed: int) -> np.ndarray:
        angle = np.random.default_rng(seed).uniform(0, 2 * np.pi)
        return self.cm / 100 * np.array([np.cos(angle), np.sin(angle)])


def _run_wave(policy: DiffusionPolicy, task: str, robot: str, seeds: list[int], steps: int | None,
              gen: torch.Generator, frames: list[np.ndarray] | None, controller: Controller | None = None,
              displace: Displacement | None = None, task_kwargs: dict[str, Any] | None = None,
              recorder: Recorder | None = None,
              dream_error: ExecutedDreamError | None = None, lead: int = 0) -> list[dict[str, Any]]:
    recorded = [recorder is not None and recorder.records(s) for s in seeds]
    images = [recorded[i] and recorder.images for i in range(len(seeds))]
    envs = [ReverieEnv(task, robot, task_kwargs=task_kwargs,
                       render_mode="rgb_array" if (frames is not None and i == 0) or images[i] else None)
            for i in range(len(seeds))]
    try:
        obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)]
        paths = [[positions(o)] for o in obs]  # real tool and object positions, per step
        for i in np.flatnonzero(recorded):
            recorder.begin_episode(seeds[i], envs[i].scene, envs[i].control_dt, envs[i].task.cubes,
                                   obs[i].get(keys.INSTRUCTION))
            recorder.log_state(seeds[i], 0, envs[i].scene.data, obs[i],
                               envs[i].render() if images[i] else None)
        seen = 0
        if controller is None:
            policy.reset()
        else:
            controller.reset(envs)
        done = [False] * len(envs)
        result: list[dict[str, Any]] = [{"seed": s, "success": False, "steps": 0, "time_s": None,
                                         "_inside": [], "_boundary": []} for s in seeds]
        ta, n_joints, t, previous = policy.cfg.n_action_steps, policy.shapes.action_dim - 1, 0, None
        while not all(done):
            if displace is not None and t == displace.step:
                for i, env in enumerate(envs):
                    if not done[i]:
                        obs[i] = env.displace(displace.offset(seeds[i]))
            if controller is None:
                actions = policy.select_action(obs, lead, steps=steps, generator=gen)
            else:
                actions = controller.select_action(obs, steps=steps, generator=gen, active=~np.asarray(done))
                for d in controller.decisions[seen:]:
                    if d.active and recorded[d.row]:
                        recorder.log_decision(seeds[d.row], d)
                seen = len(controller.decisions)
            if previous is not None:  # how far the arm's targets jump per step, by where the step falls
                jump = np.linalg.norm(actions[:, :n_joints] - previous[:, :n_joints], axis=1)
                side = "_boundary" if t % ta == 0 else "_inside"
                for i in np.flatnonzero(~np.asarray(done)):
                    result[i][side].append(float(jump[i]))
            previous, t = actions, t + 1
            for i, env in enumerate(envs):
                if done[i]:
                    continue
                obs[i], _, term, trunc, info = env.step(actions[i])
                result[i]["steps"] += 1
                paths[i].append(positions(obs[i]))
                if recorded[i]:
                    recorder.log_state(seeds[i], t, env.scene.data, obs[i],
                                       env.render() if images[i] else None)
                if frames is not None and i == 0:
                    frames.append(env.render())
                if term or trunc:
                    done[i] = True
                    result[i]["success"] = bool(info["success"])
                    if controller is not None:
                        controller.end_episode(i, result[i]["success"], obs[i], seeds[i])
                    if info["success"]:
                        result[i]["time_s"] = result[i]["steps"] * env.control_dt
        if controller is not None and dream_error is not None:
            for i in range(len(seeds)):
                mine = [d for d in controller.decisions if d.row == i and d.active]
                ee = np.stack([p[0] for p in paths[i]])
                objects = np.stack([p[1] for p in paths[i]]) if paths[i][0][1] is not None else None
                dream_error.add(mine, ee, objects)
        return result
    finally:
        for env in envs:
            env.close()


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 10) -> Path:
    """Frames (H, W, 3) uint8 -> an animated GIF (Pillow) or, with PyAV installed, an MP4."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise ValueError("no frames to write")
    if path.suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    elif path.suffix == ".mp4":
        try:
            import av
        except ImportError:
            raise ValueError("writing .mp4 needs PyAV (`pip install av`); or ask for a .gif") from None
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.height, stream.width = frames[0].shape[:2]
            stream.pix_fmt = "yuv420p"
            for f in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
            container.mux(stream.encode())
    else:
        raise ValueError(f"video must end in .gif or .mp4, got {path.name}")
    return path
