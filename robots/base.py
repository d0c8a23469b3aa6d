"""The one description of an arm that the simulator and the deployment node share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RobotConstants:
    """Physical facts about one arm, in SI units (rad, m, s, N·m).

    The arm joints come first, in the real controller's order; the gripper is a single
    extra degree of freedom after them, in its own joint units (metres per finger for
    the Panda hand, radians of jaw angle for the SO-101).
    """

    name: str
    """Registry name, e.g. ``panda``."""
    joint_names: tuple[str, ...]
    """Arm joints in controller order (the gripper is not one of them)."""
    joint_lower: tuple[float, ...]
    """Lower position limit per arm joint (rad)."""
    joint_upper: tuple[float, ...]
    """Upper position limit per arm joint (rad)."""
    velocity_limits: tuple[float, ...]
    """Maximum joint speed per arm joint (rad/s)."""
    acceleration_limits: tuple[float, ...]
    """Maximum joint acceleration per arm joint (rad/s²)."""
    effort_limits: tuple[float, ...]
    """Maximum joint torque per arm joint (N·m)."""
    gripper_joint: str
    """Name of the gripper joint (the one commanded by the last action entry)."""
    gripper_range: tuple[float, float]
    """(lower, upper) gripper joint position."""
    gripper_open: float
    """Gripper command that opens fully."""
    gripper_closed: float
    """Gripper command that closes (and squeezes whatever is held)."""
    gripper_velocity_limit: float
    """Maximum gripper joint speed (units/s)."""
    home: tuple[float, ...]
    """Arm joint positions of the ready pose."""
    home_gripper: float
    """Gripper position at the ready pose."""
    model_path: Path
    """Absolute path of the arm's MJCF."""
    ee_site: str
    """Name of the MJCF site at the tool-centre point; its z axis points out of the gripper."""
    reach: float
    """Nominal horizontal reach from the base (m); used to size task workspaces."""
    symmetric_gripper: bool
    """Whether the gripper looks the same after a half turn about the tool axis (two moving
    fingers), so a grasp yaw is only defined modulo pi."""
    tool_yaw_centre: float = 0.0
    """Tool yaw (rad, about world z, pointing down) at which the wrist joint is near mid-range.
    The experts pick, of the yaws that are equivalent for the gripper, the one within half a
    period of it: far from the wrist's limits, and (placed between the axes) far from the
    directions the tasks' axis-aligned moves ask for, so a push along y does not land on the
    wrap and turn the wrist one way in one demonstration and the opposite way in the next."""

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for field in ("joint_lower", "joint_upper", "velocity_limits", "acceleration_limits",
                      "effort_limits", "home"):
            if len(getattr(self, field)) != n:
                raise ValueError(f"{self.name}: {field} has {len(getattr(self, field))} entries, "
                                 f"expected one per arm joint ({n})")
        lo, hi = np.asarray(self.joint_lower), np.asarray(self.joint_upper)
        if np.any(lo >= hi):
            raise ValueError(f"{self.name}: every joint_lower must be below joint_upper")
        home = np.asarray(self.home)
        if np.any(home < lo) or np.any(home > hi):
            raise ValueError(f"{self.name}: home pose {self.home} lies outside the joint limits")
        for field in ("velocity_limits", "acceleration_limits", "effort_limits"):
            if np.any(np.asarray(getattr(self, field)) <= 0):
                raise ValueError(f"{self.name}: {field} must be positive")
        g_lo, g_hi = self.gripper_range
        if not g_lo < g_hi:
            raise ValueError(f"{self.name}: gripper_range must be (lower, upper) with lower < upper")
        for field in ("gripper_open", "gripper_closed", "home_gripper"):
            if not g_lo <= getattr(self, field) <= g_hi:
                raise ValueError(f"{self.name}: {field} lies outside gripper_range {self.gripper_range}")
        if not self.model_path.is_file():
            raise FileNotFoundError(f"{self.name}: MJCF not found at {self.model_path}")

    @property
    def n_joints(self) -> int:
        """Number of arm joints."""
        return len(self.joint_names)

    @property
    def action_dim(self) -> int:
        """Arm joints plus one gripper entry."""
        return self.n_joints + 1

    @property
    def action_lower(self) -> np.ndarray:
        """(n_joints + 1,) lowest command: joint limits, then the gripper's."""
        return np.array([*self.joint_lower, self.gripper_range[0]], dtype=np.float64)

    @property
    def action_upper(self) -> np.ndarray:
        """(n_joints + 1,) highest command."""
        return np.array([*self.joint_upper, self.gripper_range[1]], dtype=np.float64)

    @property
    def home_action(self) -> np.ndarray:
        """(n_joints + 1,) command that holds the ready pose."""
        return np.array([*self.home, self.home_gripper], dtype=np.float64)
