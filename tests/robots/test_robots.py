"""Every robot loads, its MJCF agrees with its constants, and FK at home matches the arm."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from robots.panda.constants import DH_MODIFIED, FLANGE_D, HAND_YAW, TCP_OFFSET
from robots.registry import ROBOTS, get_robot


def _load(name: str) -> tuple[mujoco.MjModel, mujoco.MjData]:
    model = mujoco.MjModel.from_xml_path(str(ROBOTS[name].model_path))
    return model, mujoco.MjData(model)


def _fk_site(name: str, q_arm) -> np.ndarray:
    r = ROBOTS[name]
    model, data = _load(name)
    for n, q in zip(r.joint_names, q_arm, strict=True):
        data.qpos[model.joint(n).qposadr[0]] = q
    mujoco.mj_kinematics(model, data)
    return np.concatenate([data.site(r.ee_site).xpos, data.site(r.ee_site).xmat])


@pytest.mark.parametrize("name", sorted(ROBOTS))
def test_robot_loads_and_limits_match_constants(name):
    r = ROBOTS[name]
    model, _ = _load(name)
    for i, joint in enumerate(r.joint_names):
        j = model.joint(joint)
        assert j.limited, f"{joint} must be limited"
        np.testing.assert_allclose(j.range, [r.joint_lower[i], r.joint_upper[i]], atol=1e-6)
    np.testing.assert_allclose(model.joint(r.gripper_joint).range, r.gripper_range, atol=1e-6)
    # Actuators: one per joint, in controller order, clamped to the same limits.
    ctrl = {model.actuator(a).name: model.actuator_ctrlrange[a] for a in range(model.nu)}
    assert model.nu == r.action_dim
    for a in range(model.nu):
        jid = model.actuator_trnid[a, 0]
        jname = model.joint(jid).name
        np.testing.assert_allclose(model.actuator_ctrlrange[a], model.jnt_range[jid], atol=1e-5,
                                   err_msg=f"actuator on {jname}")
    assert len(ctrl) == model.nu
    # Joint order in the kinematic chain is the controller's order.
    dofs = [model.joint(n).dofadr[0] for n in r.joint_names]
    assert dofs == sorted(dofs)


def test_unknown_robot_is_named():
    with pytest.raises(ValueError, match=r"unknown robot 'ur5'.*panda"):
        get_robot("ur5")


def _dh_modified(a, d, alpha, theta) -> np.ndarray:
    ca, sa, ct, st = math.cos(alpha), math.sin(alpha), math.cos(theta), math.sin(theta)
    return np.array([[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa],
                     [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]])


def test_panda_home_fk_matches_franka_dh():
    r = get_robot("panda")
    t = np.eye(4)
    for (a, d, alpha), q in zip(DH_MODIFIED, r.home, strict=True):
        t = t @ _dh_modified(a, d, alpha, q)
    t = t @ _dh_modified(0, FLANGE_D, 0, HAND_YAW) @ _dh_modified(0, TCP_OFFSET, 0, 0)
    fk = _fk_site("panda", r.home)
    np.testing.assert_allclose(fk[:3], t[:3, 3], atol=1e-6)
    np.testing.assert_allclose(fk[3:].reshape(3, 3), t[:3, :3], atol=1e-6)
    # Known value: at the ready pose the flange is at (0.307, 0, 0.590), so the TCP is
    # 0.1034 m lower, pointing straight down.
    np.testing.assert_allclose(fk[:3], [0.3069, 0.0, 0.5903 - 0.1034], atol=5e-4)
    np.testing.assert_allclose(fk[3:].reshape(3, 3)[:, 2], [0, 0, -1], atol=1e-6)


def _rpy(x, y, z, roll, pitch, yaw) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    rot = np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                    [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                    [-sp, cp * sr, cp * cr]])
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = rot, [x, y, z]
    return t


def _rotz(q) -> np.ndarray:
    return _rpy(0, 0, 0, 0, 0, q)


# Joint origins (xyz, rpy) of the maker's URDF so101_new_calib.urdf, base to gripper frame.
SO101_URDF_CHAIN = (
    (0.0388353, -8.97657e-09, 0.0624, 3.14159, 4.18253e-17, -3.14159),
    (-0.0303992, -0.0182778, -0.0542, -1.5708, -1.5708, 0),
    (-0.11257, -0.028, 1.73763e-16, -3.63608e-16, 8.74301e-16, 1.5708),
    (-0.1349, 0.0052, 3.62355e-17, 4.02456e-15, 8.67362e-16, -1.5708),
    (5.55112e-17, -0.0611, 0.0181, 1.5708, 0.0486795, 3.14159),
)
SO101_GRIPPER_FRAME = (-0.0079, -0.000218121, -0.0981274)


@pytest.mark.parametrize("q", [None, (0.3, -0.5, 0.7, 1.0, -0.4)])
def test_so101_fk_matches_maker_urdf(q):
    r = get_robot("so101")
    q = r.home if q is None else q
    t = np.eye(4)
    for origin, qi in zip(SO101_URDF_CHAIN, q, strict=True):
        t = t @ _rpy(*origin) @ _rotz(qi)
    expected = (t @ np.array([*SO101_GRIPPER_FRAME, 1.0]))[:3]
    np.testing.assert_allclose(_fk_site("so101", q)[:3], expected, atol=2e-4)
