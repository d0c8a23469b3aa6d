"""PickPlace: grasp a cube, carry it and set it down on a target pad. Goal: (3,) pad centre."""

from __future__ import annotations

from sim.scene import Scene
from sim.tasks.cube_to_pad import CubeToPad


class PickPlace(CubeToPad):
    name = "pick_place"
    title = "PickPlace"
    max_steps = 160

    def progress(self, scene: Scene) -> float:
        return self.carry_progress(scene, "cube", self._goal[:2], self._start)
