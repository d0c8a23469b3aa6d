"""Forward kinematics of an arm's tool site, in torch, read from the arm's own MJCF.

The world model uses it to know exactly where a candidate's joint targets put the tool, so that
what it must learn is only what kinematics cannot say: how far the arm lags its targets, and what
the tool does to the cubes. The chain is the MJCF's bodies from the base to the body carrying
``RobotConstants.ee_site``; every joint on it must be one of the arm's hinge joints.

```
T_tool(q) = T_base * prod_i [ Trans(body_pos_i) Rot(body_quat_i) Rot(axis_i, q_i) ] * T_site
```
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch
from torch import Tensor, nn

from robots.base import RobotConstants


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    out = np.empty(9)
    mujoco.mju_quat2Mat(out, np.asarray(q, dtype=np.float64))
    return out.reshape(3, 3)


class ToolKinematics(nn.Module):
    """``forward(q)``: arm joint positions (..., n_joints) -> tool position (..., 3) and rotation
    matrix (..., 3, 3), in the MJCF's world frame. Batched over any leading axes."""

    def __init__(self, robot: RobotConstants) -> None:
        super().__init__()
        model = mujoco.MjModel.from_xml_path(str(robot.model_path))
        site = model.site(robot.ee_site)
        chain, body = [], int(site.bodyid[0])
        while body != 0:
            chain.append(body)
            body = int(model.body_parentid[body])
        chain.reverse()
        index = {name: i for i, name in enumerate(robot.joint_names)}
        offsets, rotations, axes, joint_of = [], [], [], []
        for b in chain:
            jnts = range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b])
            names = [model.joint(j).name for j in jnts]
            if len(names) > 1 or any(n not in index for n in names):
                raise ValueError(f"{robot.name}: the chain to site {robot.ee_site!r} holds joints "
                                 f"{names} in body {model.body(b).name!r}; only single arm hinge "
                                 f"joints {robot.joint_names} are supported")
            if names:
                j = jnts[0]
                if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE or np.any(model.jnt_pos[j] != 0):
                    raise ValueError(f"{robot.name}: joint {names[0]!r} must be a hinge at its body's origin")
                axes.append(model.jnt_axis[j])
                joint_of.append(index[names[0]])
            else:
                axes.append(np.zeros(3))
                joint_of.append(-1)
            offsets.append(model.body_pos[b])
            rotations.append(_quat_to_mat(model.body_quat[b]))
        if sorted(j for j in joint_of if j >= 0) != list(range(robot.n_joints)):
            raise ValueError(f"{robot.name}: the chain to site {robot.ee_site!r} does not pass through "
                             f"every arm joint {robot.joint_names}")
        f32 = torch.float32
        self.register_buffer("offsets", torch.tensor(np.array(offsets), dtype=f32), persistent=False)
        self.register_buffer("rotations", torch.tensor(np.array(rotations), dtype=f32), persistent=False)
        self.register_buffer("axes", torch.tensor(np.array(axes), dtype=f32), persistent=False)
        self.joint_of = joint_of
        self.register_buffer("site_pos", torch.tensor(model.site_pos[site.id], dtype=f32), persistent=False)
        self.register_buffer("site_rot", torch.tensor(_quat_to_mat(model.site_quat[site.id]), dtype=f32),
                             persistent=False)
        self.n_joints = robot.n_joints

    def forward(self, q: Tensor) -> tuple[Tensor, Tensor]:
        if q.shape[-1] != self.n_joints:
            raise ValueError(f"forward kinematics takes (..., {self.n_joints}) joint positions, got "
                             f"{tuple(q.shape)}")
        lead = q.shape[:-1]
        pos = q.new_zeros(*lead, 3)
        rot = torch.eye(3, dtype=q.dtype, device=q.device).expand(*lead, 3, 3)
        for i, j in enumerate(self.joint_of):
            pos = pos + rot @ self.offsets[i]
            rot = rot @ self.rotations[i]
            if j >= 0:
                rot = rot @ _axis_rotation(self.axes[i], q[..., j])
        pos = pos + rot @ self.site_pos
        return pos, rot @ self.site_rot


def _axis_rotation(axis: Tensor, angle: Tensor) -> Tensor:
    """Rodrigues: rotation by ``angle`` (...) about the unit ``axis`` (3,) -> (..., 3, 3)."""
    x, y, z = axis
    zero = torch.zeros((), dtype=angle.dtype, device=angle.device)
    k = torch.stack([torch.stack([zero, -z, y]), torch.stack([z, zero, -x]),
                     torch.stack([-y, x, zero])])
    s, c = torch.sin(angle)[..., None, None], torch.cos(angle)[..., None, None]
    return torch.eye(3, dtype=angle.dtype, device=angle.device) + s * k + (1 - c) * (k @ k)
