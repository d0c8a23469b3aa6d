"""Sort: three coloured cubes, two coloured pads, and an instruction naming which cube goes
on which pad. Goal: (6,) centres of the blue pad then the yellow pad. Cubes are observed in
the order red, green, blue. Only the instruction says which cube and pad are meant.
"""

from __future__ import annotations

import numpy as np

from sim.language import CUBE_COLOURS, PAD_COLOURS, Phrasing, make_instruction
from sim.scene import ObjectSpec, Scene
from sim.tasks.base import BLUE, GREEN, RED, YELLOW, Task
from sim.workspace import Workspace

_RGBA = {"red": RED, "green": GREEN, "blue": BLUE, "yellow": YELLOW}


class Sort(Task):
    name = "sort"
    title = "Sort"
    max_steps = 200
    instructed = True

    def __init__(self, robot, workspace: Workspace, phrasing: Phrasing = "familiar") -> None:
        super().__init__(robot, workspace)
        self.phrasing = phrasing

    def objects(self) -> list[ObjectSpec]:
        cubes = [ObjectSpec(f"{c}_cube", "cube", _RGBA[c]) for c in CUBE_COLOURS]
        pads = [ObjectSpec(f"{p}_pad", "pad", (*_RGBA[p][:3], 0.7)) for p in PAD_COLOURS]
        return cubes + pads

    def reset(self, scene: Scene, rng: np.random.Generator) -> None:
        min_dist = self.ws.pad_half + 2.2 * self.ws.cube_half
        xy = self.ws.sample_separated(rng, 5, min_dist, margin=self.ws.cube_half)
        for c, p in zip(CUBE_COLOURS, xy[:3], strict=True):
            scene.set_cube(f"{c}_cube", p, rng.uniform(-np.pi / 4, np.pi / 4), self.ws.cube_half)
        self._pads = {p: np.append(q, 0.0) for p, q in zip(PAD_COLOURS, xy[3:], strict=True)}
        for p, pos in self._pads.items():
            scene.set_mocap(f"{p}_pad", pos)
        self.cube_colour = CUBE_COLOURS[rng.integers(len(CUBE_COLOURS))]
        self.pad_colour = PAD_COLOURS[rng.integers(len(PAD_COLOURS))]
        self._instruction = make_instruction(rng, self.cube_colour, self.pad_colour, self.phrasing)
        # from where the cube was placed: the scene's body positions are stale until mj_forward
        cube_xy = xy[CUBE_COLOURS.index(self.cube_colour)]
        self._start = float(np.linalg.norm(cube_xy - self._target))

    @property
    def _cube(self) -> str:
        return f"{self.cube_colour}_cube"

    @property
    def _target(self) -> np.ndarray:
        return self._pads[self.pad_colour][:2]

    def goal(self) -> np.ndarray:
        return np.concatenate([self._pads[p] for p in PAD_COLOURS])

    def instruction(self) -> str | None:
        return self._instruction

    def success(self, scene: Scene) -> bool:
        return self.resting_on(scene, self._cube, self._target)

    def progress(self, scene: Scene) -> float:
        return self.carry_progress(scene, self._cube, self._target, self._start)
