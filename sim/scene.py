"""Builds a MuJoCo scene around any robot MJCF, and gives named access to its state.

The robot's MJCF is loaded as an ``MjSpec``; the table, lights, cameras, free cubes and
mocap markers (pads, goal spheres) are added to it. Nothing here knows about tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import mujoco
import numpy as np

from robots.base import RobotConstants
from sim.workspace import Workspace

CONTACT_WORLD = 1  # table and free objects: contype bit 1
COLLIDE_ALL = 3  # conaffinity of table and objects: touched by the world (1) and the robot (2)


@dataclass(frozen=True)
class ObjectSpec:
    """One thing a task puts in the scene."""

    name: str
    kind: Literal["cube", "pad", "marker"]
    """``cube``: a free box; ``pad``: a flat square target; ``marker``: a small goal sphere.
    Pads and markers are mocap bodies without collision, moved by the task at reset."""
    rgba: tuple[float, float, float, float]


def build_model(robot: RobotConstants, workspace: Workspace, objects: list[ObjectSpec],
                sim_dt: float) -> mujoco.MjModel:
    """Compile the robot plus table, cameras and ``objects`` into one model."""
    spec = mujoco.MjSpec.from_file(str(robot.model_path))
    spec.option.timestep = sim_dt
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 480

    world = spec.worldbody
    world.add_light(pos=[0.0, 0.0, 2.0], dir=[0.0, 0.0, -1.0],
                    type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2.0, 2.0, 0.05],
                   rgba=[0.55, 0.45, 0.35, 1.0], contype=CONTACT_WORLD, conaffinity=COLLIDE_ALL,
                   condim=3)
    cx, cy = workspace.center
    scale = robot.reach
    world.add_camera(name="front", pos=[cx + 1.1 * scale, cy, 0.8 * scale],
                     xyaxes=[0.0, 1.0, 0.0, -0.55, 0.0, 0.85])
    world.add_camera(name="top", pos=[cx, cy, 1.2 * scale], xyaxes=[0.0, -1.0, 0.0, 1.0, 0.0, 0.0])

    h = workspace.cube_half
    for obj in objects:
        if obj.kind == "cube":
            body = world.add_body(name=obj.name, pos=[cx, cy, h])
            body.add_freejoint(name=f"{obj.name}_joint")
            body.add_geom(name=obj.name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[h, h, h],
                          rgba=list(obj.rgba), mass=workspace.cube_mass, condim=4,
                          friction=[1.0, 0.01, 0.001], contype=CONTACT_WORLD,
                          conaffinity=COLLIDE_ALL)
        elif obj.kind == "pad":
            body = world.add_body(name=obj.name, mocap=True, pos=[cx, cy, 0.0])
            body.add_geom(name=obj.name, type=mujoco.mjtGeom.mjGEOM_BOX,
                          size=[workspace.pad_half, workspace.pad_half, 0.001], pos=[0, 0, 0.001],
                          rgba=list(obj.rgba), contype=0, conaffinity=0)
        elif obj.kind == "marker":
            body = world.add_body(name=obj.name, mocap=True, pos=[cx, cy, 0.1])
            body.add_geom(name=obj.name, type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.6 * h, 0, 0],
                          rgba=list(obj.rgba), contype=0, conaffinity=0)
        else:
            raise ValueError(f"unknown object kind {obj.kind!r} for {obj.name!r}")
    return spec.compile()


class Scene:
    """A compiled model and its data with named accessors (world frame, quaternions w-x-y-z)."""

    def __init__(self, model: mujoco.MjModel, robot: RobotConstants) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.robot = robot
        joints = [model.joint(n) for n in robot.joint_names]
        self.arm_qpos = np.array([j.qposadr[0] for j in joints])
        self.arm_qvel = np.array([j.dofadr[0] for j in joints])
        self.gripper_qpos = int(model.joint(robot.gripper_joint).qposadr[0])
        self.actuators = np.array(
            [self._actuator_for(n) for n in (*robot.joint_names, robot.gripper_joint)])
        self.ee_site = model.site(robot.ee_site).id
        self.robot_bodies = self._robot_body_ids()
        self.gripper_followers = self._gripper_followers()

    def _actuator_for(self, joint_name: str) -> int:
        jid = self.model.joint(joint_name).id
        for a in range(self.model.nu):
            if self.model.actuator_trnid[a, 0] == jid:
                return a
        raise ValueError(f"{self.robot.name}: no actuator drives joint {joint_name!r}")

    def _gripper_followers(self) -> list[tuple[int, float, float]]:
        """(qpos address, offset, gain) of joints tied to the gripper joint by an equality."""
        gid = self.model.joint(self.robot.gripper_joint).id
        out = []
        for e in range(self.model.neq):
            if (self.model.eq_type[e] == mujoco.mjtEq.mjEQ_JOINT
                    and self.model.eq_obj2id[e] == gid):
                follower = self.model.eq_obj1id[e]
                coef = self.model.eq_data[e]
                out.append((int(self.model.jnt_qposadr[follower]), float(coef[0]), float(coef[1])))
        return out

    def _robot_body_ids(self) -> set[int]:
        root = self.model.joint(self.robot.joint_names[0]).bodyid[0]
        while self.model.body_parentid[root] != 0:
            root = self.model.body_parentid[root]
        return {b for b in range(self.model.nbody) if self._descends(b, root)}

    def _descends(self, body: int, root: int) -> bool:
        while body != 0:
            if body == root:
                return True
            body = self.model.body_parentid[body]
        return False

    # ---- robot -------------------------------------------------------------------------
    def set_robot(self, q_arm: np.ndarray, gripper: float) -> None:
        """Teleport the arm and gripper (and hold them there with the actuators)."""
        self.data.qpos[self.arm_qpos] = q_arm
        self.data.qvel[self.arm_qvel] = 0.0
        self.data.qpos[self.gripper_qpos] = gripper
        for adr, offset, gain in self.gripper_followers:
            self.data.qpos[adr] = offset + gain * gripper
        self.data.ctrl[self.actuators] = np.append(q_arm, gripper)

    def joint_pos(self) -> np.ndarray:
        return self.data.qpos[self.arm_qpos].copy()

    def joint_vel(self) -> np.ndarray:
        return self.data.qvel[self.arm_qvel].copy()

    def gripper(self) -> float:
        return float(self.data.qpos[self.gripper_qpos])

    def ee_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.ee_site].copy()

    def ee_pose(self) -> np.ndarray:
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self.ee_site])
        return np.concatenate([self.data.site_xpos[self.ee_site], quat])

    # ---- objects -----------------------------------------------------------------------
    def object_pose(self, name: str) -> np.ndarray:
        """(7,) position and quaternion of a body."""
        b = self.model.body(name).id
        return np.concatenate([self.data.xpos[b], self.data.xquat[b]])

    def set_cube(self, name: str, xy: np.ndarray, yaw: float, z: float) -> None:
        adr = self.model.joint(f"{name}_joint").qposadr[0]
        self.data.qpos[adr:adr + 3] = [xy[0], xy[1], z]
        self.data.qpos[adr + 3:adr + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        dof = self.model.joint(f"{name}_joint").dofadr[0]
        self.data.qvel[dof:dof + 6] = 0.0

    def set_object_pose(self, name: str, pose: np.ndarray) -> None:
        """Teleport a free object to a (7,) position and quaternion (w, x, y, z), at rest."""
        joint = self.model.joint(f"{name}_joint")
        self.data.qpos[joint.qposadr[0]:joint.qposadr[0] + 7] = pose
        self.data.qvel[joint.dofadr[0]:joint.dofadr[0] + 6] = 0.0

    def set_mocap(self, name: str, pos: np.ndarray) -> None:
        self.data.mocap_pos[self.model.body(name).mocapid[0]] = pos

    def in_contact(self, body_a: str, bodies_b: set[int]) -> bool:
        """Whether body ``body_a`` touches any body in ``bodies_b``."""
        a = self.model.body(body_a).id
        for c in self.data.contact[: self.data.ncon]:
            b1, b2 = self.model.geom_bodyid[c.geom1], self.model.geom_bodyid[c.geom2]
            if (b1 == a and b2 in bodies_b) or (b2 == a and b1 in bodies_b):
                return True
        return False
