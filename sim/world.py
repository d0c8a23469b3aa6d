"""A task's scene as a ``robots.drivers.mujoco.World``: what the simulated arm's process runs when
the deployment node drives a task end to end (``MujocoRobot(world=TaskWorld.factory(...))``).

Observations are the environment's own (joints, tool pose, objects, goal, instruction) plus the
task's ``success`` and ``progress``, which a real robot would not report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from sim.env import ReverieEnv


class TaskWorld:
    """``task`` on ``robot``, reset with ``seed``; physics one ``sim_dt`` step at a time."""

    def __init__(self, task: str, robot: str, seed: int = 0,
                 task_kwargs: dict[str, Any] | None = None) -> None:
        self.env = ReverieEnv(task, robot, task_kwargs=task_kwargs)
        self.env.reset(seed=seed)
        self.constants = self.env.robot
        self.dt = self.env.sim_dt
        self._lo, self._hi = self.constants.action_lower, self.constants.action_upper

    def set_target(self, target: np.ndarray) -> None:
        self.env.scene.data.ctrl[self.env.scene.actuators] = np.clip(target, self._lo, self._hi)

    def step(self) -> None:
        mujoco.mj_step(self.env.scene.model, self.env.scene.data)

    def observation(self) -> dict[str, Any]:
        obs = self.env.observe()
        scene = self.env.scene
        return {**obs, "success": float(self.env.task.success(scene)),
                "progress": float(self.env.task.progress(scene))}


@dataclass(frozen=True)
class TaskWorldFactory:
    """Picklable recipe for a ``TaskWorld`` (built inside the simulated arm's own process)."""

    task: str
    robot: str
    seed: int = 0
    task_kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> TaskWorld:
        return TaskWorld(self.task, self.robot, self.seed, self.task_kwargs or None)
