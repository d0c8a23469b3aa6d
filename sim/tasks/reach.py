"""Reach: bring the tool-centre point to a goal sphere. Goal: (3,) target position."""

from __future__ import annotations

import numpy as np

from sim.scene import ObjectSpec, Scene
from sim.tasks.base import TARGET, Task


class Reach(Task):
    name = "reach"
    title = "Reach"
    max_steps = 50

    def objects(self) -> list[ObjectSpec]:
        return [ObjectSpec("goal_marker", "marker", TARGET)]

    def reset(self, scene: Scene, rng: np.random.Generator) -> None:
        z = rng.uniform(*self.ws.reach_height)
        self._goal = np.append(self.ws.sample_xy(rng), z)
        scene.set_mocap("goal_marker", self._goal)
        self._start = float(np.linalg.norm(scene.ee_pos() - self._goal))

    def goal(self) -> np.ndarray:
        return self._goal.copy()

    def success(self, scene: Scene) -> bool:
        return bool(np.linalg.norm(scene.ee_pos() - self._goal) < self.ws.cube_half)

    def progress(self, scene: Scene) -> float:
        d = np.linalg.norm(scene.ee_pos() - self._goal)
        return float(np.clip(1 - d / max(self._start, 1e-6), 0, 1))
