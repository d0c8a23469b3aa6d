"""What Push and PickPlace share: one red cube, one target pad, success = cube resting on it."""

from __future__ import annotations

import numpy as np

from sim.scene import ObjectSpec, Scene
from sim.tasks.base import RED, TARGET, Task


class CubeToPad(Task):
    """Goal: (3,) pad centre. Subclasses say how progress is measured."""

    def placement_margin(self) -> float:
        """Distance kept between sampled positions and the workspace edge."""
        return self.ws.cube_half

    def objects(self) -> list[ObjectSpec]:
        return [ObjectSpec("cube", "cube", RED), ObjectSpec("target", "pad", TARGET)]

    def reset(self, scene: Scene, rng: np.random.Generator) -> None:
        cube_xy, target_xy = self.ws.sample_separated(rng, 2, 2.5 * self.ws.pad_half,
                                                      margin=self.placement_margin())
        scene.set_cube("cube", cube_xy, rng.uniform(-np.pi / 4, np.pi / 4), self.ws.cube_half)
        self._goal = np.append(target_xy, 0.0)
        scene.set_mocap("target", self._goal)
        self._start = float(np.linalg.norm(cube_xy - target_xy))

    def goal(self) -> np.ndarray:
        return self._goal.copy()

    def success(self, scene: Scene) -> bool:
        return self.resting_on(scene, "cube", self._goal[:2])
