"""Push expert. Multimodal: it pushes straight at the pad, or in two axis-aligned legs
(x then y, or y then x), so the cube is approached from different sides.

Each leg: hover behind the cube, descend, push along the line, retreat. A cube that slides
off the line is re-approached from its new position.
"""

from __future__ import annotations

import numpy as np

from sim import keys
from sim.experts.base import Expert, Waypoint

ABOVE, DOWN, PUSH, RETREAT, DONE = range(5)
MODES = ("direct", "x_then_y", "y_then_x")


class PushExpert(Expert):
    def start(self, obs) -> None:
        self.mode = MODES[int(self.rng.integers(len(MODES)))]
        goal = np.asarray(obs[keys.GOAL][:2], dtype=np.float64)
        cube = obs[keys.OBJECT_POSES][0][:2].astype(np.float64)
        if self.mode == "direct":
            corners = []
        elif self.mode == "x_then_y":
            corners = [np.array([goal[0], cube[1]])]
        else:
            corners = [np.array([cube[0], goal[1]])]
        self.legs = [c for c in corners if np.linalg.norm(c - cube) > self.ws.pad_half] + [goal]
        self.standoff = self.ws.cube_half + 0.025
        self._begin_leg(cube)

    def _begin_leg(self, cube: np.ndarray) -> None:
        leg = self.legs[0] - cube
        self.dir = leg / max(np.linalg.norm(leg), 1e-9)
        # The tool's x axis points back along the push: an SO-101's jaws sit on the -x side of
        # its tool point, so they lead; for the Panda's centred fingers it makes no difference.
        self.yaw = float(np.arctan2(self.dir[1], self.dir[0])) + np.pi
        self.phase = ABOVE

    def waypoint(self, obs) -> Waypoint:
        cube = obs[keys.OBJECT_POSES][0][:2].astype(np.float64)
        h, v, closed = self.ws.cube_half, self.ws.speed, self.closed
        if self.phase == ABOVE:
            pre = cube - self.dir * (self.standoff + 0.02)
            return Waypoint(np.append(pre, h + self.ws.hover), self.yaw, closed, v, tol=0.5 * h)
        if self.phase == DOWN:
            pre = cube - self.dir * (self.standoff + 0.02)
            return Waypoint(np.append(pre, h), self.yaw, closed, 0.5 * v, tol=0.3 * h)
        if self.phase == PUSH:
            end = self.legs[0] - self.dir * self.standoff
            return Waypoint(np.append(end, h), self.yaw, closed, 0.5 * v, tol=0.3 * h)
        return Waypoint(np.append(self.retreat_xy, h + self.ws.hover), self.yaw, closed, v,
                        tol=0.5 * h, settle=1000 if self.phase == DONE else 0)

    def _retreat(self, obs) -> None:
        self.phase = RETREAT
        self.retreat_xy = obs[keys.EE_POSE][:2].astype(np.float64) - self.dir * 0.03

    def act(self, obs) -> np.ndarray:
        if self.phase == PUSH:  # cube slid off the pushing line: go round and try again
            cube = obs[keys.OBJECT_POSES][0][:2].astype(np.float64)
            to_cube = cube - obs[keys.EE_POSE][:2]
            lateral = abs(to_cube[0] * self.dir[1] - to_cube[1] * self.dir[0])
            if lateral > 0.8 * self.ws.cube_half:
                self._retreat(obs)
        return super().act(obs)

    def on_phase_end(self, obs) -> None:
        if self.phase == RETREAT:
            self._retreat(obs)
        elif self.phase == DONE:
            cube = obs[keys.OBJECT_POSES][0][:2].astype(np.float64)
            if np.linalg.norm(cube - self.legs[0]) < 0.5 * self.ws.pad_half:
                if len(self.legs) == 1:
                    return  # on the pad: stay clear of it
                self.legs.pop(0)
            self._begin_leg(cube)
