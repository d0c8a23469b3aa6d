"""Reach expert: straight to the goal."""

from __future__ import annotations

import numpy as np

from sim import keys
from sim.experts.base import Expert, Waypoint


class ReachExpert(Expert):
    def start(self, obs) -> None:
        self.yaw0 = float(self._yaw)

    def waypoint(self, obs) -> Waypoint:
        return Waypoint(np.asarray(obs[keys.GOAL][:3], dtype=np.float64), self.yaw0, self.open,
                        self.ws.speed, tol=0.005, settle=100)
