"""Sampling trajectories with diffusers schedulers: K candidates in one batch, and inpainting.

All trajectories here are normalised, (N, H, A) in [-1, 1]. Inpainting holds the steps marked in
``keep`` to a known trajectory by replacement: before each denoising step the kept steps are set
to the known values noised to that step's level (as RePaint and Diffuser do), and to the known
values themselves at the end. ``strength < 1`` starts from the known trajectory partly noised
instead of pure noise, so only part of the schedule runs (re-denoising a plan, not redrawing it).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import Tensor, nn

from policy.diffusion.config import DiffusionConfig


def training_scheduler(cfg: DiffusionConfig) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
                         clip_sample=True, clip_sample_range=1.0, prediction_type=cfg.prediction_type)


def inference_scheduler(cfg: DiffusionConfig, kind: str):
    base = training_scheduler(cfg)
    if kind == "ddpm":
        return base
    if kind == "ddim":
        return DDIMScheduler.from_config(base.config)
    if kind == "dpmsolver++":
        # Near t = T the cosine schedule's alpha is ~0, so the x0 implied by an epsilon prediction
        # explodes: clip lambda as diffusers advises for squaredcos_cap_v2, and threshold x0 at 1.0
        # (the normalised range), as DDIM's clip_sample does.
        return DPMSolverMultistepScheduler.from_config(base.config, algorithm_type="dpmsolver++",
                                                       solver_order=2, lambda_min_clipped=-5.1,
                                                       thresholding=True, sample_max_value=1.0)
    raise ValueError(f"unknown scheduler {kind!r}; choose ddim, dpmsolver++ or ddpm")


class Sampler:
    """``sample(cond, k)`` and ``inpaint(traj, keep, cond)`` over a denoiser
    ``(x (N, H, A), t (N,), cond (N, C)) -> (N, H, A)``."""

    def __init__(self, cfg: DiffusionConfig, denoiser: nn.Module, action_dim: int) -> None:
        self.cfg, self.denoiser, self.action_dim = cfg, denoiser, action_dim
        self.noiser = training_scheduler(cfg)
        self._schedulers: dict[str, object] = {}

    def _scheduler(self, kind: str):
        if kind not in self._schedulers:
            self._schedulers[kind] = inference_scheduler(self.cfg, kind)
        return self._schedulers[kind]

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        return self.noiser.add_noise(x0, noise, t)

    @torch.no_grad()
    def sample(self, cond: Tensor, k: int = 1, *, known: Tensor | None = None, keep: Tensor | None = None,
               strength: float = 1.0, steps: int | None = None, scheduler: str | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw ``k`` trajectories per condition row: cond (B, C) -> (B, k, H, A).

        known (B, H, A) and keep (H,) or (B, H) bool: steps to hold to ``known`` (inpainting).
        strength in (0, 1]: fraction of the noise schedule to run, starting from ``known``
        noised to that level (needs ``known``); 1 starts from pure noise.
        """
        b, h, a = cond.shape[0], self.cfg.horizon, self.action_dim
        steps = steps or self.cfg.num_inference_steps
        if not 1 <= steps <= self.cfg.num_train_timesteps:
            raise ValueError(f"steps must lie in [1, {self.cfg.num_train_timesteps}], got {steps}")
        if not 0 < strength <= 1:
            raise ValueError(f"strength must lie in (0, 1], got {strength}")
        if k < 1:
            raise ValueError(f"k (candidates) must be >= 1, got {k}")
        dev = cond.device
        cond = cond.repeat_interleave(k, dim=0)
        if known is not None:
            if known.shape != (b, h, a):
                raise ValueError(f"known trajectory must have shape {(b, h, a)}, got {tuple(known.shape)}")
            known = known.to(dev).repeat_interleave(k, dim=0)
            keep = torch.zeros(h, dtype=torch.bool, device=dev) if keep is None else keep.to(dev)
            if keep.shape not in ((h,), (b, h)):
                raise ValueError(f"keep mask must have shape ({h},) or ({b}, {h}), got {tuple(keep.shape)}")
            keep = keep.expand(b, h).repeat_interleave(k, dim=0)[..., None]
        elif strength < 1 or keep is not None:
            raise ValueError("inpainting (keep) and strength < 1 need a known trajectory")

        sched = self._scheduler(scheduler or self.cfg.scheduler)
        sched.set_timesteps(steps, device=dev)
        timesteps = sched.timesteps
        start = min(len(timesteps) - 1, round(len(timesteps) * (1 - strength)))
        timesteps = timesteps[start:]
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(start)
        x = torch.randn((b * k, h, a), generator=generator, device=dev)
        if strength < 1:
            x = self.add_noise(known, x, timesteps[:1].expand(b * k))
        for t in timesteps:
            if known is not None:
                noise = torch.randn(x.shape, generator=generator, device=dev)
                x = torch.where(keep, self.add_noise(known, noise, t.expand(b * k)), x)
            out = self.denoiser(x, t.expand(b * k), cond)
            x = sched.step(out, t, x, generator=generator).prev_sample
        if known is not None:
            x = torch.where(keep, known, x)
        return x.clamp(-1, 1).reshape(b, k, h, a)

    def inpaint(self, traj: Tensor, keep: Tensor, cond: Tensor, k: int = 1, strength: float = 1.0,
                **kw) -> Tensor:
        """Re-denoise the steps of ``traj`` (B, H, A) not in ``keep`` -> (B, k, H, A)."""
        return self.sample(cond, k, known=traj, keep=keep, strength=strength, **kw)
