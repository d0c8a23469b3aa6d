"""PickPlace: grasp a cube, carry it and set it down on a target pad. Goal: (3,) pad centre."""

from __future__ import annotations

import numpy as np

from sim.scene import ObjectSpec, Scene
from sim.tasks.base import RED, TARGET, Task


class PickPlace(Task):
    name = "pick_place"
    title = "PickPlace"
    max_steps = 160

    def objects(self) -> list[ObjectSpec]:
        return [ObjectSpec("cube", "cube", RED), ObjectSpec("target", "pad", TARGET)]

    def reset(self, scene: Scene, rng: np.random.Generator) -> None:
        min_dist = 2.5 * self.ws.pad_half
        cube_xy, target_xy = self.ws.sample_separated(rng, 2, min_dist, margin=self.ws.cube_half)
        scene.set_cube("cube", cube_xy, rng.uniform(-np.pi / 4, np.pi / 4), self.ws.cube_half)
        self._goal = np.append(target_xy, 0.0)
        scene.set_mocap("target", self._goal)
        self._start = float(np.linalg.norm(cube_xy - target_xy))

    def goal(self) -> np.ndarray:
        return self._goal.copy()

    def success(self, scene: Scene) -> bool:
        return self.resting_on(scene, "cube", self._goal[:2])

    def progress(self, scene: Scene) -> float:
        return self.carry_progress(scene, "cube", self._goal[:2], self._start)
