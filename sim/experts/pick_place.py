"""Pick-and-place expert, also used for Sort once the instruction names the cube and pad.

Multimodal: the grasp is taken across either pair of cube faces, and the cube is carried
at one of two heights. A failed grasp (cube not lifted) is retried.
"""

from __future__ import annotations

import numpy as np

from sim import keys
from sim.experts.base import Expert, Waypoint, wrap_half_turn
from sim.language import CUBE_COLOURS, PAD_COLOURS, parse_instruction

ABOVE, DESCEND, CLOSE, LIFT, CARRY, LOWER, OPEN, RETREAT = range(8)


def cube_yaw(pose: np.ndarray) -> float:
    w, x, y, z = pose[3:7]
    return float(np.arctan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z)))


class PickPlaceExpert(Expert):
    def start(self, obs) -> None:
        self.face = int(self.rng.integers(2))
        self.carry_z = self.ws.cube_half + self.ws.hover * (1.0 if self.rng.random() < 0.5 else 1.5)
        self.retries = 0

    def cube_index(self, obs) -> int:
        return 0

    def target_xy(self, obs) -> np.ndarray:
        return np.asarray(obs[keys.GOAL][:2], dtype=np.float64)

    def waypoint(self, obs) -> Waypoint:
        cube = obs[keys.OBJECT_POSES][self.cube_index(obs)].astype(np.float64)
        h, v = self.ws.cube_half, self.ws.speed
        if self.phase <= DESCEND:
            self.grasp_xy = cube[:2].copy()
            self.grasp_yaw = wrap_half_turn(cube_yaw(cube) + self.face * np.pi / 2)
        if self.phase == ABOVE:
            return Waypoint(np.append(cube[:2], cube[2] + self.ws.hover), self.grasp_yaw, self.open,
                            v, tol=0.4 * h)
        if self.phase == DESCEND:
            return Waypoint(np.append(cube[:2], cube[2]), self.grasp_yaw, self.open, 0.5 * v,
                            tol=0.3 * h, settle=1)
        if self.phase == CLOSE:
            return Waypoint(np.append(self.grasp_xy, h), self.grasp_yaw, self.closed, v, tol=0.05,
                            settle=4)
        if self.phase == LIFT:
            return Waypoint(np.append(self.grasp_xy, self.carry_z), self.grasp_yaw, self.closed, v,
                            tol=0.5 * h)
        ee = obs[keys.EE_POSE][:3]
        place_xy = self.target_xy(obs) - (cube[:2] - ee[:2])  # land the cube, not the tool
        if self.phase == CARRY:
            return Waypoint(np.append(place_xy, self.carry_z), self.grasp_yaw, self.closed, v,
                            tol=0.4 * h)
        if self.phase == LOWER:
            return Waypoint(np.append(place_xy, h + 0.004), self.grasp_yaw, self.closed, 0.5 * v,
                            tol=0.3 * h)
        if self.phase == OPEN:
            return Waypoint(np.append(ee[:2], h + 0.004), self.grasp_yaw, self.open, v, tol=0.05,
                            settle=3)
        return Waypoint(np.append(ee[:2], self.carry_z), self.grasp_yaw, self.open, v, tol=0.05,
                        settle=1000)

    def on_phase_end(self, obs) -> None:
        cube = obs[keys.OBJECT_POSES][self.cube_index(obs)]
        dropped = cube[2] < self.ws.cube_half + 0.5 * self.ws.hover
        if self.phase in (CARRY, LOWER) and dropped and self.retries < 3:
            self.phase, self.retries = ABOVE, self.retries + 1


class SortExpert(PickPlaceExpert):
    def start(self, obs) -> None:
        super().start(obs)
        cube, pad = parse_instruction(obs[keys.INSTRUCTION])
        self._cube_idx = CUBE_COLOURS.index(cube)
        self._pad_idx = PAD_COLOURS.index(pad)

    def cube_index(self, obs) -> int:
        return self._cube_idx

    def target_xy(self, obs) -> np.ndarray:
        return np.asarray(obs[keys.GOAL][3 * self._pad_idx:3 * self._pad_idx + 2], dtype=np.float64)
