"""`reverie deploy` and `reverie serve`: a checkpoint (or a policy server) driving a robot."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from policy.deploy.config import NodeConfig
from policy.deploy.node import LEAD_WINDOW, DeployNode
from robots.drivers.base import SafeRobot
from robots.safety import SafetyConfig

if TYPE_CHECKING:  # the source module imports torch; the CLI loads this one before any model
    from policy.deploy.source import ChunkSource
    from policy.physics_dreamer import PhysicsDreamerConfig

DRIVERS = ("mujoco", "so101", "franka")
"""Robots ``reverie deploy`` can drive (``mujoco``: a simulated arm in its own process)."""


@dataclass(frozen=True)
class LoadedSource:
    """A chunk source and what a node must know of it."""

    source: ChunkSource
    task: str
    robot: str
    n_obs_steps: int
    max_committed: int
    execute_steps: int
    warm_up: dict[str, Any] | None = None
    """The compiled source's warm-up (``pinned.warm_up``), None when eager."""


def make_source(checkpoint: str | None, server: str | None, token_env: str, steps: int | None = None,
                device: str = "cpu", planner: str | None = None, world_model: str | None = None, k: int = 8,
                guidance: float | None = None, join_samples: int = 1, dreamer: str = "learned",
                physics: PhysicsDreamerConfig | None = None, compile_mode: str | None = None):
    """The source (``LoadedSource``) from a checkpoint (with ``planner``: the
    sample -> dream -> choose controller, dreaming with ``world_model`` or, with
    ``dreamer=physics``, a MuJoCo model of the task set from each observation; else
    ``join_samples`` chunks per request, the smoothest join kept) or a running server.
    ``compile_mode``: the denoiser is torch.compiled, planned on one thread and warmed up first
    (``pinned.compile_source``; the report is ``LoadedSource.warm_up``)."""
    if server:
        if compile_mode:
            raise ValueError("compile_mode compiles a policy in this process; give it to `reverie serve` "
                             "on the server instead")
        from policy.deploy.server import RemoteSource

        src = RemoteSource(server, os.environ.get(token_env))
        info = src.info()
        return LoadedSource(src, info["task"], info["robot"], int(info["n_obs_steps"]),
                            int(info["max_committed"]), int(info["execute_steps"]))
    from policy.checkpoint import load_policy
    from policy.deploy.source import PolicySource

    policy = load_policy(checkpoint, device=device)
    kw = {} if guidance is None else {"guidance": guidance}
    if planner:
        from policy.controller import Controller, ControllerConfig
        from policy.deploy.source import ControllerSource
        from policy.dreamers import ON_ROBOT, load_dreamer
        from policy.planners.registry import make_planner

        if dreamer not in ON_ROBOT:
            raise ValueError(f"the node dreams with dreamer={' or '.join(ON_ROBOT)}, got {dreamer!r} (the "
                             "simulator oracle cannot run on a robot)")
        if (dreamer == "learned") != bool(world_model):
            raise ValueError("planner= needs world_model=RUN with dreamer=learned (the default), and no "
                             "world_model with dreamer=physics")
        chosen = load_dreamer(dreamer, policy, [world_model] if world_model else [], device, physics)
        src = ControllerSource(Controller(policy, chosen, make_planner(planner), ControllerConfig(k=k)),
                               steps, **kw)
    else:
        src = PolicySource(policy, steps, join_samples=join_samples, **kw)
    warm = None
    if compile_mode:
        from policy.deploy.pinned import compile_source

        src, warm = compile_source(src, compile_mode, device)
    return LoadedSource(src, policy.shapes.task, policy.shapes.robot, policy.cfg.n_obs_steps,
                        src.max_committed, src.execute_steps, warm)


def make_driver(kind: str, task: str, robot: str, seed: int, port: str, calibration: str | None):
    if kind == "mujoco":
        from robots.drivers.mujoco import MujocoRobot
        from sim.world import TaskWorldFactory

        return MujocoRobot(robot, world=TaskWorldFactory(task, robot, seed))
    if kind == "so101":
        if robot != "so101":
            raise ValueError(f"the policy was trained on {robot!r}; the so101 driver drives an SO-101")
        from robots.drivers.so101 import So101Driver

        return So101Driver(port, calibration)
    if kind == "franka":
        if robot != "panda":
            raise ValueError(f"the policy was trained on {robot!r}; the franka driver drives a Panda")
        from robots.drivers.franka import FrankaDriver

        return FrankaDriver(port)
    raise ValueError(f"unknown robot driver {kind!r}; choose one of {', '.join(DRIVERS)}")


def task_seconds(task: str, plan_dt: float = NodeConfig.plan_dt) -> float:
    """The task's own time limit in seconds of the node's plan clock."""
    from sim.registry import get_task

    return get_task(task).max_steps * plan_dt


def deploy(*, robot: str = "mujoco", checkpoint: str | None = None, server: str | None = None,
           episodes: int = 1, seed: int = 1_000_000, node: NodeConfig | None = None,
           safety: SafetyConfig | None = None, port: str = "/dev/ttyACM0", calibration: str | None = None,
           token_env: str = "REVERIE_TOKEN", steps: int | None = None, planner: str | None = None,
           world_model: str | None = None, k: int = 8, guidance: float | None = None,
           join_samples: int = 1, dreamer: str = "learned", physics: PhysicsDreamerConfig | None = None,
           device: str = "cpu", compile_mode: str | None = None) -> dict[str, Any]:
    """Run ``episodes`` on the robot; per-episode node reports and pooled figures."""
    if (checkpoint is None) == (server is None):
        raise ValueError("give exactly one of checkpoint=RUN (policy in this process) or server=HOST:PORT")
    loaded = make_source(checkpoint, server, token_env, steps, device, planner=planner,
                         world_model=world_model, k=k, guidance=guidance, join_samples=join_samples,
                         dreamer=dreamer, physics=physics, compile_mode=compile_mode)
    try:
        return _deploy(loaded, robot, server or checkpoint, episodes, seed, node, safety, port, calibration,
                       planner, k, dreamer)
    finally:
        if hasattr(loaded.source, "close"):
            loaded.source.close()


def _deploy(loaded: LoadedSource, robot: str, source_name: str, episodes: int, seed: int,
            node: NodeConfig | None, safety: SafetyConfig | None, port: str, calibration: str | None,
            planner: str | None, k: int, dreamer: str) -> dict[str, Any]:
    source, task, arm = loaded.source, loaded.task, loaded.robot
    node = node or NodeConfig()
    reports, inside, boundary = [], [], []
    seen_ms: list[float] = []  # the source's recent latencies, so each episode's lead starts informed
    for i in range(episodes):
        with SafeRobot(make_driver(robot, task, arm, seed + i, port, calibration), safety) as bot:
            n = DeployNode(bot, source, loaded.n_obs_steps, node, loaded.max_committed, earlier_ms=seen_ms,
                           execute_steps=loaded.execute_steps)
            reports.append(n.run())
            seen_ms = (seen_ms + n.latencies)[-LEAD_WINDOW:]
            inside += n.jumps["inside"]
            boundary += n.jumps["boundary"]
    p_in = float(np.percentile(inside, 95)) if inside else None
    p_b = float(np.percentile(boundary, 95)) if boundary else None
    successes = [r.success for r in reports if r.success is not None]
    chosen = getattr(getattr(source, "controller", None), "dreamer", None)
    return {
        "robot": robot, "task": task, "arm": arm, "episodes": episodes, "seed": seed,
        "source": source_name, "planner": planner, "k": k if planner else None,
        "dreamer": dreamer if planner else None,
        "physics": dataclasses.asdict(chosen.cfg) if getattr(chosen, "name", None) == "physics" else None,
        "inpaint_guidance": getattr(source, "guidance", None), "compile": loaded.warm_up,
        "join_samples": getattr(source, "join_samples", None),
        "node": dataclasses.asdict(node),
        "safety": dataclasses.asdict(safety or SafetyConfig()),
        "success_rate": float(np.mean(successes)) if successes else None,
        "jitter_ms_p50": float(np.median([r.jitter_ms["p50"] for r in reports])),
        "jitter_ms_p99": float(np.max([r.jitter_ms["p99"] for r in reports])),
        "deadline_misses": sum(r.deadline_misses for r in reports),
        "ticks": sum(r.ticks for r in reports),
        "idle_ticks": sum(r.idle_ticks for r in reports),
        "stale_dropped": sum(r.stale_dropped for r in reports),
        "refused_chunks": sum(r.refused_chunks for r in reports),
        "source_failures": sum(r.source_failures for r in reports),
        "jump_p95_rad": {"inside": p_in, "boundary": p_b, "ratio": p_b / p_in if p_in and p_b else None,
                         "boundaries": len(boundary)},
        "inference_ms_p50": float(np.median([r.inference_ms["p50"] for r in reports])),
        "per_episode": [dataclasses.asdict(r) for r in reports],
    }


def serve(checkpoint: str, host: str, port: int, token_env: str, steps: int | None = None,
          device: str = "cpu", planner: str | None = None, world_model: str | None = None,
          k: int = 8, join_samples: int = 1, dreamer: str = "learned",
          physics: PhysicsDreamerConfig | None = None, compile_mode: str | None = None) -> None:
    """Serve the checkpoint (or its controller, with ``planner``) until interrupted."""
    from policy.deploy.server import PolicyServer

    loaded = make_source(checkpoint, None, token_env, steps, device, planner, world_model, k,
                         join_samples=join_samples, dreamer=dreamer, physics=physics,
                         compile_mode=compile_mode)
    if loaded.warm_up:
        w = loaded.warm_up
        print(f"compiled ({w['mode']}) and warmed up in {w['total_s']:.1f} s; a plan now takes "
              f"{w['last_ms']:.1f} ms", flush=True)
    try:
        server = PolicyServer(loaded.source, host, port, os.environ.get(token_env)).start()
        print(f"serving {checkpoint} on {host}:{server.port} (Ctrl-C to stop)", flush=True)
        try:
            server.wait()
        except KeyboardInterrupt:
            server.stop(1.0)
    finally:
        if hasattr(loaded.source, "close"):
            loaded.source.close()
