"""The Task interface: what a task puts in the scene, how it resets, scores and ends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from robots.base import RobotConstants
from sim.scene import ObjectSpec, Scene
from sim.workspace import Workspace

RED = (0.85, 0.15, 0.15, 1.0)
GREEN = (0.15, 0.7, 0.2, 1.0)
BLUE = (0.15, 0.3, 0.9, 1.0)
YELLOW = (0.95, 0.85, 0.1, 1.0)
TARGET = (0.2, 0.8, 0.3, 0.6)


class Task(ABC):
    """One manipulation task for one robot. Holds the episode's goal between resets."""

    name: ClassVar[str]
    """Registry name (``push``)."""
    title: ClassVar[str]
    """Name in gymnasium ids (``Push``)."""
    max_steps: ClassVar[int]
    """Time limit in control steps."""
    instructed: ClassVar[bool] = False
    """Whether episodes come with a natural-language instruction (``instruction()``)."""

    def __init__(self, robot: RobotConstants, workspace: Workspace) -> None:
        self.robot = robot
        self.ws = workspace

    @property
    def cubes(self) -> tuple[str, ...]:
        """Names of the observed free objects, in ``object_poses`` order."""
        return tuple(o.name for o in self.objects() if o.kind == "cube")

    @abstractmethod
    def objects(self) -> list[ObjectSpec]:
        """Everything the task adds to the scene."""

    @abstractmethod
    def reset(self, scene: Scene, rng: np.random.Generator) -> None:
        """Place objects and choose the goal. The robot is already at home."""

    @abstractmethod
    def goal(self) -> np.ndarray:
        """(goal_dim,) the episode's goal vector."""

    @abstractmethod
    def success(self, scene: Scene) -> bool:
        """Whether the task is solved in the current state."""

    @abstractmethod
    def progress(self, scene: Scene) -> float:
        """A dense measure of how far along the task is, in [0, 1]."""

    def instruction(self) -> str | None:
        """The episode's natural-language instruction, if the task has one."""
        return None

    def place_goal(self, scene: Scene, goal: np.ndarray) -> None:
        """Put the goal's markers where a recorded goal vector says (replaying a dataset). Every
        task's goal is the positions (3 each) of its fixed objects (pads, markers) in ``objects()``
        order; a task whose goal says more overrides this."""
        markers = [o.name for o in self.objects() if o.kind != "cube"]
        goal = np.asarray(goal, float)
        if goal.size != 3 * len(markers):
            raise ValueError(f"{self.name}: goal of size {goal.size} does not place its "
                             f"{len(markers)} markers ({', '.join(markers)}); expected {3 * len(markers)}")
        for name, pos in zip(markers, goal.reshape(-1, 3), strict=True):
            scene.set_mocap(name, pos)

    # ---- helpers shared by the tasks ---------------------------------------------------
    def resting_on(self, scene: Scene, cube: str, target_xy: np.ndarray) -> bool:
        """Cube centred within the pad, lying on the table, and let go of by the robot."""
        placed = bool(rests_on(scene.object_pose(cube)[:3], target_xy, self.ws, True))
        return placed and not scene.in_contact(cube, scene.robot_bodies)  # contacts only when placed

    def carry_progress(self, scene: Scene, cube: str, target_xy: np.ndarray,
                       start_dist: float) -> float:
        """Staged progress for pick-and-place: reach 0.2, lift 0.2, carry 0.5, place 0.1."""
        return float(staged_carry_progress(scene.ee_pos(), scene.object_pose(cube)[:3], target_xy, start_dist,
                                           self.ws.cube_half, self.resting_on(scene, cube, target_xy)))


def rests_on(cube: np.ndarray, target_xy: np.ndarray, ws: Workspace, released: np.ndarray | bool
             ) -> np.ndarray:
    """Whether cubes (..., 3) rest on the target: centred within the pad, lying on the table, and
    ``released`` (...) by the robot. From positions alone, so that the simulator and a planner
    scoring *dreamed* positions share one definition."""
    on_pad = np.linalg.norm(cube[..., :2] - target_xy, axis=-1) < ws.pad_half
    return on_pad & (cube[..., 2] < ws.cube_half * 1.3) & released


def slide_progress(cube: np.ndarray, target_xy: np.ndarray, start_dist: float, resting: np.ndarray | bool
                   ) -> np.ndarray:
    """Push's progress from positions alone, so that the simulator and a planner scoring *dreamed*
    positions share one definition: 0.95 times the share of the cube's (..., 3) start distance to
    the target's centre (2,) it has been slid, 1 where it rests on the target (...)."""
    covered = np.clip(1 - np.linalg.norm(cube[..., :2] - target_xy, axis=-1) / max(start_dist, 1e-6), 0, 1)
    return np.where(resting, 1.0, 0.95 * covered)


def staged_carry_progress(ee: np.ndarray, cube: np.ndarray, target_xy: np.ndarray, start_dist: float,
                          cube_half: float, resting: np.ndarray | bool) -> np.ndarray:
    """The pick-and-place tasks' progress from positions alone, so that the simulator and a
    planner scoring *dreamed* positions share one definition: tool (..., 3), cube (..., 3), the
    target's centre (2,), the cube's distance to it at the start, and whether the cube rests on
    the target (...). Reach 0.2, lift 0.2, carry 0.5, place 0.1."""
    reach = np.clip(1 - np.linalg.norm(ee - cube, axis=-1) / 0.2, 0, 1)
    lifted = cube[..., 2] > cube_half + 0.01
    carry = np.clip(1 - np.linalg.norm(cube[..., :2] - target_xy, axis=-1) / max(start_dist, 1e-6), 0, 1)
    staged = np.where((carry > 0.05) | lifted, 0.4 + 0.5 * carry, 0.2 * reach)
    return np.where(resting, 1.0, staged)
