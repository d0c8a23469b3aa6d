"""WorldModel: ``encode(obs window) -> Latent`` and ``dream(latent, trajectories) -> Dreams``.

The encoder is an MLP over the normalised observation window. The dynamics are a causal
transformer over the candidate's steps: step h's token is its (normalised) joint targets plus a
step embedding plus the projected latent, and it sees only steps <= h, as physics would. With
``kinematic`` on (the default), the token also carries where forward kinematics puts the tool at
those targets and where each cube sits relative to it, and the tool's dream is that kinematic
path plus a learned residual. Heads
predict, per step, the tool's and each cube's displacement from where they are now, whether each
cube is lifted and touched, task progress, and whether the task is solved. All K candidates of
all B observations go through in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from policy.diffusion.normalize import MinMaxNormalizer, obs_action_normalizers
from policy.diffusion.text import HashedTextEncoder
from policy.dreams import Dreams
from policy.world_model.config import EE_FEATURE, OBJECTS_FEATURE, WorldModelConfig, WorldShapes
from policy.world_model.data import INSTRUCTIONS, PAIR
from policy.world_model.kinematics import ToolKinematics
from robots.registry import get_robot
from sim.data.format import STATE


@dataclass
class Latent:
    """An encoded observation: z (B, latent_dim), plus where the tool (B, 3) and cubes (B, n, 3) are,
    which dreams are relative to, and the arm's joint positions (B, n_joints)."""

    z: Tensor
    ee_pos: Tensor
    object_pos: Tensor
    joints: Tensor
    grounding: Tensor | None = None
    """(B, objects, targets) P(object, target | instruction), where the model reads instructions."""


def build_encoder(cfg: WorldModelConfig, obs_dim: int) -> nn.Sequential:
    """The observation-window encoder: flattened normalised window -> z (latent_dim)."""
    width = 4 * cfg.latent_dim
    return nn.Sequential(
        nn.Linear(cfg.n_obs_steps * obs_dim, width), nn.GELU(), nn.Linear(width, width), nn.GELU(),
        nn.Linear(width, cfg.latent_dim), nn.LayerNorm(cfg.latent_dim))


class WorldEncoder(nn.Module):
    """The world model's encoder alone, frozen: what a policy conditioned on the latent carries."""

    def __init__(self, cfg: WorldModelConfig, shapes: WorldShapes) -> None:
        super().__init__()
        self.cfg, self.shapes = cfg, shapes
        self.obs_norm = MinMaxNormalizer(np.zeros(shapes.obs_dim), np.zeros(shapes.obs_dim))
        self.encoder = build_encoder(cfg, shapes.obs_dim)
        self.requires_grad_(False)

    @classmethod
    def from_world_model(cls, wm: WorldModel) -> WorldEncoder:
        enc = cls(wm.cfg, wm.shapes)
        enc.obs_norm.load_state_dict(wm.obs_norm.state_dict())
        enc.encoder.load_state_dict(wm.encoder.state_dict())
        return enc.to(wm.obs_norm.centre.device)

    def forward(self, obs: Tensor) -> Tensor:
        """Raw observation windows (B, To, obs_dim) -> z (B, latent_dim)."""
        return self.encoder(self.obs_norm.normalize(obs).flatten(1))


class WorldModel(nn.Module):
    """See the module docstring. ``obs_low/high`` and ``action_low/high`` are the data's min/max."""

    def __init__(self, cfg: WorldModelConfig, shapes: WorldShapes, obs_low: np.ndarray, obs_high: np.ndarray,
                 action_low: np.ndarray, action_high: np.ndarray) -> None:
        super().__init__()
        self.cfg, self.shapes = cfg, shapes
        self.obs_norm, self.action_norm = obs_action_normalizers(
            obs_low, obs_high, action_low, action_high, shapes.obs_dim, shapes.action_dim)
        d = cfg.d_model
        self.encoder = build_encoder(cfg, shapes.obs_dim)
        self.action_in = nn.Linear(shapes.action_dim, d)
        self.latent_in = nn.Linear(cfg.latent_dim, d)
        self.step_embed = nn.Parameter(torch.randn(cfg.horizon, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, 4 * d, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.trunk = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(d)
        n = shapes.n_objects
        self._split = {"ee_pos": 3, "object_pos": 3 * n, "holding": n, "touching": n, "progress": 1,
                       "success": 1}
        self.head = nn.Linear(d, sum(self._split.values()))
        if shapes.uses_instruction:
            self.text = HashedTextEncoder(cfg.text_dim, cfg.text_buckets)
            self.text_in = nn.Linear(cfg.text_dim, cfg.latent_dim)
            if cfg.grounding and n and shapes.n_targets:
                self.ground_head = nn.Linear(cfg.latent_dim, n * shapes.n_targets)
        if cfg.kinematic:
            self.kinematics = ToolKinematics(get_robot(shapes.robot))
            # tool shift, its x and z axes, each cube's offset in the world and the tool frame
            self.kin_in = nn.Linear(9 + 6 * n, d)
        mask = torch.triu(torch.full((cfg.horizon, cfg.horizon), float("-inf")), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)
        self._ee = shapes.offset(EE_FEATURE)
        self._obj = shapes.offset(OBJECTS_FEATURE) if n else None
        self._joints = shapes.offset(STATE)

    # ---- the interface ---------------------------------------------------------------------
    def encode(self, obs: Tensor, instructions: list[str] | None = None) -> Latent:
        """Raw observation windows (B, To, obs_dim), and for instructed tasks one instruction per
        window -> Latent."""
        if obs.ndim != 3 or obs.shape[1:] != (self.cfg.n_obs_steps, self.shapes.obs_dim):
            raise ValueError(f"world model expects observation windows (B, {self.cfg.n_obs_steps}, "
                             f"{self.shapes.obs_dim}), got {tuple(obs.shape)}")
        z = self.encoder(self.obs_norm.normalize(obs).flatten(1))
        if self.shapes.uses_instruction:
            if instructions is None or len(instructions) != len(obs):
                raise ValueError(f"a {self.shapes.task!r} world model needs one instruction per "
                                 f"observation window ({len(obs)}), got "
                                 f"{'none' if instructions is None else len(instructions)}")
            z = z + self.text_in(self.text(instructions))
        now = obs[:, -1]
        ee = now[:, self._ee: self._ee + 3]
        n = self.shapes.n_objects
        objects = (now[:, self._obj: self._obj + 7 * n].reshape(-1, n, 7)[..., :3] if n
                   else now.new_zeros(len(now), 0, 3))
        grounding = None
        if hasattr(self, "ground_head"):
            grounding = self.ground_head(z).softmax(-1).reshape(len(z), n, self.shapes.n_targets)
        return Latent(z, ee, objects, now[:, self._joints: self._joints + self.shapes.action_dim - 1],
                      grounding)

    def dream(self, latent: Latent, trajs: Tensor) -> Dreams:
        """Raw candidate trajectories (B, K, H, A) from the current step -> their Dreams."""
        out = self.predict(latent, trajs)
        ee = latent.ee_pos[:, None, None] + out["ee_pos"] / self.cfg.pos_scale
        objects = latent.object_pos[:, None, None] + out["object_pos"] / self.cfg.pos_scale
        return Dreams(
            ee_pos=_np(ee), object_pos=_np(objects), holding=_np(torch.sigmoid(out["holding"])),
            touching=_np(torch.sigmoid(out["touching"])), progress=_np(out["progress"].clamp(0, 1)),
            success=_np(torch.sigmoid(out["success"])))

    # ---- the network -----------------------------------------------------------------------
    def predict(self, latent: Latent, trajs: Tensor) -> dict[str, Tensor]:
        """Heads for (B, K, H, A) raw trajectories: positions as scaled displacements, logits for
        holding/touching/success, progress as a value."""
        b, k, h, a = trajs.shape
        if h != self.cfg.horizon or a != self.shapes.action_dim:
            raise ValueError(f"world model dreams trajectories (B, K, {self.cfg.horizon}, "
                             f"{self.shapes.action_dim}), got {tuple(trajs.shape)}")
        if latent.z.shape[0] != b:
            raise ValueError(f"{latent.z.shape[0]} latents for {b} batches of trajectories")
        x = self.action_in(self.action_norm.normalize(trajs.reshape(b * k, h, a)))
        x = x + self.step_embed + self.latent_in(latent.z).repeat_interleave(k, dim=0)[:, None]
        shift = None
        if self.cfg.kinematic:
            features, shift = self._kinematic_features(latent, trajs)
            x = x + self.kin_in(features.reshape(b * k, h, -1))
        y = self.head(self.out_norm(self.trunk(x, mask=self.causal_mask, is_causal=True)))
        parts = dict(zip(self._split, y.split(list(self._split.values()), dim=-1), strict=True))
        if shift is not None:  # the tool's dream: kinematics plus a learned residual
            parts["ee_pos"] = parts["ee_pos"] + shift.reshape(b * k, h, 3)
        n = self.shapes.n_objects
        return {"ee_pos": parts["ee_pos"].reshape(b, k, h, 3),
                "object_pos": parts["object_pos"].reshape(b, k, h, n, 3),
                "holding": parts["holding"].reshape(b, k, h, n),
                "touching": parts["touching"].reshape(b, k, h, n),
                "progress": parts["progress"].reshape(b, k, h), "success": parts["success"].reshape(b, k, h)}

    def _kinematic_features(self, latent: Latent, trajs: Tensor) -> tuple[Tensor, Tensor]:
        """(B, K, H, 9 + 6n) token features and the tool's kinematic shift from now (B, K, H, 3),
        positions in 1 / pos_scale m."""
        tool, rot = self.kinematics(trajs[..., :self.shapes.action_dim - 1])
        shift = tool - self.kinematics(latent.joints)[0][:, None, None]
        ee = latent.ee_pos[:, None, None] + shift
        offset = latent.object_pos[:, None, None] - ee[..., None, :]  # (B, K, H, n, 3)
        in_tool = (offset[..., None, :] @ rot[..., None, :, :]).squeeze(-2)  # rot^T offset, per cube
        s = self.cfg.pos_scale
        features = torch.cat([shift * s, rot[..., :, 0], rot[..., :, 2], (offset * s).flatten(-2),
                              (in_tool * s).flatten(-2)], dim=-1)
        return features, shift * s

    def compute_loss(self, batch: dict) -> tuple[Tensor, dict[str, float]]:
        """Weighted sum of per-quantity losses for a batch of ``DreamTensors`` (K = 1)."""
        latent = self.encode(batch["obs"], batch.get(INSTRUCTIONS))
        out = {k: v[:, 0] for k, v in self.predict(latent, batch["action"][:, None]).items()}
        s, w = self.cfg.pos_scale, self.cfg.loss_weights
        terms = {
            "ee_pos": F.mse_loss(out["ee_pos"], batch["ee_pos"] * s),
            "object_pos": (F.mse_loss(out["object_pos"], batch["object_pos"] * s)
                           if self.shapes.n_objects else out["ee_pos"].new_zeros(())),
            "holding": _bce(out["holding"], batch["holding"]),
            "touching": _bce(out["touching"], batch["touching"]),
            "progress": F.mse_loss(out["progress"], batch["progress"]),
            "success": _bce(out["success"], batch["success"]),
        }
        if hasattr(self, "ground_head") and PAIR in batch and bool((batch[PAIR] >= 0).any()):
            known = batch[PAIR] >= 0
            terms["grounding"] = F.cross_entropy(self.ground_head(latent.z[known]), batch[PAIR][known])
        loss = sum(w.get(name, 0.0) * value for name, value in terms.items())
        return loss, {name: float(v.detach()) for name, v in terms.items()}

    def rank_loss(self, batch: dict, k: int) -> Tensor:
        """Loss on how K candidates from one state differ: each prediction and target minus its
        group's mean, for progress and the tool's and cubes' paths (and, with a ``rank_holding``
        weight, which candidates hold a cube). ``batch`` holds G groups of
        K rows sharing one observation window, group by group."""
        g = batch["obs"].shape[0] // k
        texts = batch.get(INSTRUCTIONS)
        latent = self.encode(batch["obs"][::k], None if texts is None else texts[::k])
        out = self.predict(latent, batch["action"].reshape(g, k, *batch["action"].shape[1:]))
        s = self.cfg.pos_scale

        def centred(x: Tensor) -> Tensor:
            return x - x.mean(dim=1, keepdim=True)

        loss = F.mse_loss(centred(out["progress"]), centred(batch["progress"].reshape(g, k, -1)))
        loss = loss + F.mse_loss(centred(out["ee_pos"]), centred(batch["ee_pos"].reshape(g, k, -1, 3) * s))
        if self.shapes.n_objects:
            target = batch["object_pos"].reshape(g, k, *batch["object_pos"].shape[1:]) * s
            loss = loss + F.mse_loss(centred(out["object_pos"]), centred(target))
            held = self.cfg.loss_weights.get("rank_holding", 0.0)
            if held:
                label = batch["holding"].reshape(g, k, *batch["holding"].shape[1:])
                loss = loss + held * F.mse_loss(centred(torch.sigmoid(out["holding"])), centred(label))
        return loss

    def forward(self, batch: dict) -> Tensor:
        return self.compute_loss(batch)[0]


def _bce(logits: Tensor, target: Tensor) -> Tensor:
    if logits.numel() == 0:
        return logits.new_zeros(())
    return F.binary_cross_entropy_with_logits(logits, target)


def _np(x: Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()
