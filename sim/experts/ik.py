"""Inverse kinematics of the tool-centre point with mink (QP, daqp solver, joint limits)."""

from __future__ import annotations

import mink
import mujoco
import numpy as np

from robots.base import RobotConstants


def down_rotation(yaw: float) -> np.ndarray:
    """(3, 3) tool orientation pointing straight down, its x axis at ``yaw`` about world z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


class ArmIK:
    """Solves for arm joints that put the robot's ``ee_site`` at a pose.

    Works on the robot's own MJCF (no scene objects), seeded from the current joints so
    successive solutions stay continuous.
    """

    def __init__(self, robot: RobotConstants, orientation_cost: float = 0.5,
                 posture_cost: float = 1e-3) -> None:
        self.robot = robot
        self.model = mujoco.MjModel.from_xml_path(str(robot.model_path))
        self.arm_qpos = np.array([self.model.joint(n).qposadr[0] for n in robot.joint_names])
        self.config = mink.Configuration(self.model)
        self.frame = mink.FrameTask(robot.ee_site, "site", position_cost=1.0,
                                    orientation_cost=orientation_cost, lm_damping=1e-3)
        self.posture = mink.PostureTask(self.model, cost=posture_cost)
        q_home = self.model.qpos0.copy()
        q_home[self.arm_qpos] = robot.home
        self.posture.set_target(q_home)
        self.limits = [mink.ConfigurationLimit(self.model)]

    def solve(self, q_arm: np.ndarray, pos: np.ndarray, rot: np.ndarray, iters: int = 8,
              tol: float = 5e-4) -> np.ndarray:
        """(n_joints,) joints reaching ``pos`` (3,) with orientation ``rot`` (3, 3)."""
        q = self.config.q.copy()
        q[self.arm_qpos] = np.clip(q_arm, self.robot.joint_lower, self.robot.joint_upper)
        self.config.update(q)
        target = mink.SE3.from_rotation_and_translation(mink.SO3.from_matrix(rot), pos)
        self.frame.set_target(target)
        for _ in range(iters):
            vel = mink.solve_ik(self.config, [self.frame, self.posture], 1.0, "daqp",
                                damping=1e-4, limits=self.limits)
            self.config.integrate_inplace(vel, 1.0)
            if np.linalg.norm(self.frame.compute_error(self.config)[:3]) < tol:
                break
        return self.config.q[self.arm_qpos].copy()
