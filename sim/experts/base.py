"""Scripted experts: phase logic picks a Cartesian waypoint, IK turns it into joint targets.

An expert sees only the observation (as a learned policy would) and returns the same
action a policy returns: (n_joints + 1,) absolute joint targets then the gripper.

``noise`` adds Gaussian noise (rad) to the joint targets; ``perturb`` is the per-episode
probability of one disturbance (the target pushed off course for a second, the gripper let
go, or the arm freezing). Both exist to produce imperfect and failed rollouts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from robots.base import RobotConstants
from sim import keys
from sim.experts.ik import ArmIK, down_rotation
from sim.workspace import Workspace

PERTURBATIONS = ("offset", "release", "freeze")
MAX_YAW_RATE = 3.0  # rad/s


@dataclass(frozen=True)
class Waypoint:
    """Where the tool should go next, and how."""

    pos: np.ndarray
    """(3,) tool-centre-point target, world frame."""
    yaw: float
    """Tool rotation about world z (the tool points down)."""
    gripper: float
    """Gripper command held during this phase."""
    speed: float
    """Cartesian speed towards ``pos``, m/s."""
    tol: float = 0.01
    """Arrival tolerance on the measured tool position, m."""
    settle: int = 0
    """Control steps to wait after arriving before the phase ends."""


def ee_yaw(obs: dict[str, Any]) -> float:
    """Rotation about world z of the tool's x axis."""
    w, x, y, z = obs[keys.EE_POSE][3:7]
    return float(np.arctan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z)))


def wrap_half_turn(angle: float) -> float:
    """Angle modulo pi into [-pi/2, pi/2): a parallel gripper is symmetric under a half turn."""
    return float((angle + np.pi / 2) % np.pi - np.pi / 2)


def wrap_yaw(angle: float, period: float, centre: float = 0.0) -> float:
    """The angle equivalent to ``angle`` modulo ``period`` in (centre - period/2, centre + period/2]."""
    top = centre + period / 2
    return float(top - (top - angle) % period)


class Expert(ABC):
    """Base of the scripted experts: runs phases, moves along straight lines, solves IK."""

    def __init__(self, robot: RobotConstants, workspace: Workspace, control_dt: float = 0.1,
                 noise: float = 0.0, perturb: float = 0.0) -> None:
        if noise < 0 or not 0 <= perturb <= 1:
            raise ValueError(f"need noise >= 0 and 0 <= perturb <= 1, got {noise}, {perturb}")
        self.robot, self.ws, self.dt = robot, workspace, control_dt
        self.noise, self.perturb = noise, perturb
        self.ik = ArmIK(robot, orientation_cost=workspace.orientation_cost)
        self.open, self.closed = robot.gripper_open, robot.gripper_closed

    def reset(self, obs: dict[str, Any], rng: np.random.Generator) -> None:
        """Start an episode from its first observation."""
        self.rng = rng
        self.phase, self._settled, self._t = 0, 0, 0
        self._q = obs[keys.JOINT_POS].astype(np.float64)
        self._cmd = obs[keys.EE_POSE][:3].astype(np.float64)
        self._yaw = ee_yaw(obs)
        self._gripper = float(obs[keys.GRIPPER][0])
        self._disturbance = None
        if rng.random() < self.perturb:
            kind = PERTURBATIONS[rng.integers(len(PERTURBATIONS))]
            start = int(rng.integers(5, 60))
            offset = rng.uniform(-2, 2, 3) * self.ws.cube_half * np.array([1, 1, 0.5])
            self._disturbance = (kind, start, start + int(rng.integers(5, 15)), offset)
        self.start(obs)

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        """(n_joints + 1,) joint targets and gripper command for this observation."""
        wp = self.waypoint(obs)
        kind = self._active_disturbance()
        if kind == "freeze":
            self._t += 1
            return np.append(self._q, self._gripper)
        # Move the commanded point along a straight line at the phase's speed.
        delta = wp.pos - self._cmd
        dist = float(np.linalg.norm(delta))
        step = wp.speed * self.dt
        self._cmd = wp.pos.copy() if dist <= step else self._cmd + delta * (step / dist)
        # Yaw targets live in one fixed range, so the wrist never winds up across steps; it is
        # centred where the wrist is mid-range, its wrap between the axes (``tool_yaw_centre``)
        period = np.pi if self.robot.symmetric_gripper else 2 * np.pi
        yaw = wrap_yaw(wp.yaw, period, self.robot.tool_yaw_centre)
        self._yaw += float(np.clip(yaw - self._yaw, -MAX_YAW_RATE * self.dt, MAX_YAW_RATE * self.dt))
        target = self._cmd + (self._disturbance[3] if kind == "offset" else 0.0)
        self._q = self.ik.solve(self._q, target, down_rotation(self._yaw))
        self._gripper = self.open if kind == "release" else wp.gripper
        # Phase bookkeeping on the measured tool position.
        ee = obs[keys.EE_POSE][:3]
        if np.allclose(self._cmd, wp.pos) and np.linalg.norm(ee - wp.pos) < wp.tol:
            self._settled += 1
            if self._settled > wp.settle:
                self._settled = 0
                self.phase += 1
                self.on_phase_end(obs)
        self._t += 1
        q = self._q + (self.rng.normal(0, self.noise, self._q.shape) if self.noise else 0.0)
        return np.append(np.clip(q, self.robot.joint_lower, self.robot.joint_upper), self._gripper)

    def _active_disturbance(self) -> str | None:
        if self._disturbance is None:
            return None
        kind, start, end, _ = self._disturbance
        return kind if start <= self._t < end else None

    def start(self, obs: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Choose the episode's mode (where several valid strategies exist)."""

    def on_phase_end(self, obs: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Called after ``self.phase`` advanced; may jump to another phase (retry)."""

    @abstractmethod
    def waypoint(self, obs: dict[str, Any]) -> Waypoint:
        """The target of the current phase."""
