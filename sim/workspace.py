"""Where tasks put things for each robot: the table region in reach, and object sizes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workspace:
    """Table region (world frame, table top at z = 0) where objects and goals are placed."""

    center: tuple[float, float]
    """(x, y) of the region's centre, m."""
    half_extent: tuple[float, float]
    """Half sizes of the region along x and y, m."""
    cube_half: float
    """Half edge of the manipulated cubes, m."""
    cube_mass: float
    """Mass of a cube, kg."""
    pad_half: float
    """Half edge of a square target pad, m."""
    hover: float
    """Height of the tool above an object before descending to it, m."""
    speed: float
    """Cartesian speed of the scripted experts, m/s."""
    reach_height: tuple[float, float]
    """(low, high) heights for Reach goals, m."""
    orientation_cost: float
    """Weight of the tool's pointing-down orientation against its position in the experts' IK
    (low for a 5-DoF arm, which cannot point straight down everywhere)."""

    def sample_xy(self, rng: np.random.Generator, margin: float = 0.0) -> np.ndarray:
        """A uniform (x, y) inside the region shrunk by ``margin``."""
        c, h = np.asarray(self.center), np.asarray(self.half_extent) - margin
        return c + rng.uniform(-h, h)

    def sample_separated(self, rng: np.random.Generator, n: int, min_dist: float,
                         margin: float = 0.0, max_tries: int = 200) -> np.ndarray:
        """(n, 2) positions at least ``min_dist`` apart (rejection sampling, restarted)."""
        for _ in range(max_tries):
            points = [self.sample_xy(rng, margin)]
            for _ in range(20 * n):
                p = self.sample_xy(rng, margin)
                if all(np.linalg.norm(p - q) >= min_dist for q in points):
                    points.append(p)
                    if len(points) == n:
                        return np.stack(points)
        raise RuntimeError(f"could not place {n} objects {min_dist} m apart in {self}; "
                           "enlarge the workspace or reduce the objects")


WORKSPACES: dict[str, Workspace] = {
    "panda": Workspace(center=(0.5, 0.0), half_extent=(0.12, 0.2), cube_half=0.02, cube_mass=0.05,
                       pad_half=0.045, hover=0.1, speed=0.35, reach_height=(0.1, 0.4),
                       orientation_cost=0.5),
    "so101": Workspace(center=(0.21, 0.0), half_extent=(0.06, 0.12), cube_half=0.0125,
                       cube_mass=0.02, pad_half=0.03, hover=0.04, speed=0.15,
                       reach_height=(0.03, 0.08), orientation_cost=0.05),
}
