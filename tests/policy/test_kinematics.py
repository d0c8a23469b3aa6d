"""Forward kinematics in torch agrees with MuJoCo's own for every registered arm."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from policy.world_model.kinematics import ToolKinematics
from robots.registry import ROBOTS, get_robot


@pytest.mark.parametrize("name", sorted(ROBOTS))
def test_tool_pose_matches_mujoco(name):
    robot = get_robot(name)
    fk = ToolKinematics(robot)
    model = mujoco.MjModel.from_xml_path(str(robot.model_path))
    data = mujoco.MjData(model)
    qs = np.random.default_rng(0).uniform(robot.joint_lower, robot.joint_upper, size=(20, robot.n_joints))
    pos, rot = fk(torch.tensor(qs, dtype=torch.float32).reshape(4, 5, -1))  # any leading axes
    assert pos.shape == (4, 5, 3) and rot.shape == (4, 5, 3, 3)
    site = model.site(robot.ee_site).id
    for i, q in enumerate(qs):
        for joint, value in zip(robot.joint_names, q, strict=True):
            data.qpos[model.joint(joint).qposadr[0]] = value
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(pos.reshape(-1, 3)[i].numpy(), data.site_xpos[site], atol=1e-5)
        np.testing.assert_allclose(rot.reshape(-1, 3, 3)[i].numpy(), data.site_xmat[site].reshape(3, 3),
                                   atol=1e-5)


def test_wrong_joint_count_is_named():
    fk = ToolKinematics(get_robot("panda"))
    with pytest.raises(ValueError, match=r"\(\.\.\., 7\) joint positions"):
        fk(torch.zeros(2, 6))
