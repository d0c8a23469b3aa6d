"""Push: slide a cube onto a target pad without lifting it. Goal: (3,) pad centre.

The cube may be pushed straight at the pad or along two axis-aligned legs, from either side:
several approaches are valid, which is what makes the demonstrations multimodal.
"""

from __future__ import annotations

from sim.scene import Scene
from sim.tasks.base import slide_progress
from sim.tasks.cube_to_pad import CubeToPad


class Push(CubeToPad):
    name = "push"
    title = "Push"
    max_steps = 160

    def placement_margin(self) -> float:
        return self.ws.pad_half  # room to get behind the cube from any side

    def progress(self, scene: Scene) -> float:
        return float(slide_progress(scene.object_pose("cube")[:3], self._goal[:2], self._start,
                                    self.success(scene)))
