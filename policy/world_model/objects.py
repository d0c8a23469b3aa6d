"""Cube dynamics dreamed in each cube's own frame: what the tool's path does to a cube, told only
by where the tool goes relative to it.

The world model's main trunk reads the whole observation and the absolute joint targets. On the
cube it learns whatever those predict in its data, and a grasp that lands in one place of the
workspace says little to it about a grasp 5 cm away, where a cube moved mid-episode puts the
regrasp (BENCHMARKS.md: there the learned dreams said grasps landed that missed). With
``object_frame`` on, each cube's path, holding and touching come instead from a second causal
transformer whose tokens hold nothing absolute. Per cube c and dream step h (1 / pos_scale m):

```
R_c          the cube's yaw, folded into [-45°, 45°) (a cube looks the same turned by 90°)
target[h]    R_c^T (tool at step h's joint targets, by forward kinematics - cube_c now)
dreamed[h]   R_c^T (tool as the main trunk dreams it at step h - cube_c now)
axes[h]      R_c^T (the tool's x and z axes at step h's targets)
grip[h]      step h's gripper target (normalised)
constant     R_c^T (tool now - cube_c now), the gripper's opening now, cube_c's height and
             its velocity between the last two observations, the other cubes' offsets
```
Moving or turning the whole scene on the table changes none of these, so every grasp in the
data is evidence about every other. The cube's displacement comes out in its own frame and is
turned back into the world's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

STEP_FEATURES = 3 + 3 + 6 + 1
"""Per-step features: target tool offset, dreamed tool offset, tool x and z axes, gripper target."""
CONSTANT_FEATURES = 3 + 1 + 1 + 3
"""Per-cube features the same at every step: tool offset now, gripper now, the cube's height and
velocity (plus 3 per other cube)."""
OUTPUTS = 3 + 1 + 1
"""Per cube and step: displacement in the cube's frame, holding logit, touching logit."""


def folded_yaw(quat: Tensor) -> Tensor:
    """(..., 4) wxyz cube orientations -> (...) yaw folded into [-pi/4, pi/4): a cube's frame up to
    the quarter turns that leave it looking the same."""
    w, x, y, z = quat.unbind(-1)
    yaw = torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    quarter = math.pi / 2
    return torch.remainder(yaw + quarter / 2, quarter) - quarter / 2


def yaw_matrix(yaw: Tensor) -> Tensor:
    """(...) yaw -> (..., 3, 3) rotation about the world's z axis."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    return torch.stack([torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1),
                        torch.stack([zero, zero, one], -1)], -2)


def into_frame(rot: Tensor, v: Tensor) -> Tensor:
    """R^T v for rotations (..., 3, 3) and vectors (..., 3) of matching leading shape."""
    return (v[..., None, :] @ rot).squeeze(-2)


class CubeFrameDynamics(nn.Module):
    """The cube-frame dynamics trunk: ``forward(...)`` -> per cube and step, the displacement from
    where the cube is now (world frame, 1 / pos_scale m) and holding and touching logits."""

    def __init__(self, n_objects: int, horizon: int, d_model: int, layers: int, heads: int) -> None:
        super().__init__()
        self.n = n_objects
        width = STEP_FEATURES + CONSTANT_FEATURES + 3 * max(n_objects - 1, 0)
        self.token_in = nn.Linear(width, d_model)
        self.step_embed = nn.Parameter(torch.randn(horizon, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.trunk = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, OUTPUTS)
        mask = torch.triu(torch.full((horizon, horizon), float("-inf")), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def tokens(self, target: Tensor, dreamed: Tensor, axes: Tensor, grip: Tensor, tool_now: Tensor,
               cubes: Tensor, yaw: Tensor, velocity: Tensor, gripper_now: Tensor) -> tuple[Tensor, Tensor]:
        """Token features (B, K, n, H, F) and each cube's frame (B, n, 3, 3).

        target, dreamed (B, K, H, 3): the tool at the targets and as dreamed, world frame, scaled;
        axes (B, K, H, 2, 3): the tool's x and z axes; grip (B, K, H): gripper targets,
        normalised; tool_now (B, 3) and cubes (B, n, 3) scaled; yaw (B, n) folded; velocity
        (B, n, 3) scaled per step; gripper_now (B,) normalised. A cube's height is its z, which
        moving the scene on the table leaves alone."""
        b, k, h, _ = target.shape
        n = self.n
        rot = yaw_matrix(yaw)  # (B, n, 3, 3)
        r = rot[:, None, :, None]  # (B, 1, n, 1, 3, 3)
        rel_target = into_frame(r, target[:, :, None] - cubes[:, None, :, None])  # (B, K, n, H, 3)
        rel_dreamed = into_frame(r, dreamed[:, :, None] - cubes[:, None, :, None])
        ax = into_frame(r[..., None, :, :], axes[:, :, None]).flatten(-2)  # (B, K, n, H, 6)
        g = grip[:, :, None, :, None].expand(b, k, n, h, 1)
        const = [into_frame(rot, tool_now[:, None] - cubes),  # (B, n, 3)
                 gripper_now[:, None, None].expand(b, n, 1),
                 cubes[..., 2:3],
                 into_frame(rot, velocity)]
        if n > 1:  # the other cubes, in this cube's frame, in index order
            others = cubes[:, None] - cubes[:, :, None]  # (B, n, n, 3): cube j seen from cube i
            keep = ~torch.eye(n, dtype=torch.bool, device=cubes.device)
            others = others[:, keep].reshape(b, n, n - 1, 3)
            const.append(into_frame(rot[:, :, None], others).flatten(-2))
        const_t = torch.cat(const, -1)[:, None, :, None].expand(b, k, n, h, -1)
        return torch.cat([rel_target, rel_dreamed, ax, g, const_t], -1), rot

    def forward(self, features: Tensor, rot: Tensor) -> dict[str, Tensor]:
        """Features (B, K, n, H, F) and frames (B, n, 3, 3) -> ``object_pos`` (B, K, H, n, 3),
        ``holding`` and ``touching`` (B, K, H, n) logits."""
        b, k, n, h, f = features.shape
        x = self.token_in(features.reshape(b * k * n, h, f)) + self.step_embed
        y = self.head(self.out_norm(self.trunk(x, mask=self.causal_mask, is_causal=True)))
        y = y.reshape(b, k, n, h, OUTPUTS)
        moved = (y[..., :3][..., None, :] @ rot[:, None, :, None].transpose(-1, -2)).squeeze(-2)  # R d
        return {"object_pos": moved.permute(0, 1, 3, 2, 4), "holding": y[..., 3].permute(0, 1, 3, 2),
                "touching": y[..., 4].permute(0, 1, 3, 2)}
