"""Sampling trajectories with diffusers schedulers: K candidates in one batch, and inpainting.

All trajectories here are normalised, (N, H, A) in [-1, 1]. Inpainting holds the steps marked in
``keep`` to a known trajectory by replacement: before each denoising step the kept steps are set
to the known values noised to that step's level (as RePaint and Diffuser do), and to the known
values themselves at the end. ``strength < 1`` starts from the known trajectory partly noised
instead of pure noise, so only part of the schedule runs (re-denoising a plan, not redrawing it).

A denoiser trained with known prefixes (``prefix_conditioning``, its ``known_channel``) is given
the kept steps clean instead, with the mask that marks them: it was trained on exactly that, so it
continues the known steps rather than merely being overwritten on them.
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
        self.clean_known = bool(getattr(denoiser, "known_channel", False))
        self._alphas = self.noiser.alphas_cumprod
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
               generator: torch.Generator | None = None, guidance: float = 0.0) -> Tensor:
        """Draw ``k`` trajectories per condition row: cond (B, C) -> (B, k, H, A).

        known (B, H, A) and keep (H,) or (B, H) bool: steps to hold to ``known`` (inpainting).
        strength in (0, 1]: fraction of the noise schedule to run, starting from ``known``
        noised to that level (needs ``known``); 1 starts from pure noise.
        guidance >= 0: reconstruction guidance towards the kept steps. Replacement alone constrains
        the denoiser weakly (it may pick another mode and jump right after the kept steps); with
        guidance each step also moves x against the gradient of the kept steps' error in the
        clean trajectory the denoiser predicts, scaled by sqrt(1 - alpha_bar_t) (one backward
        pass per step).
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
        elif strength < 1 or keep is not None or guidance:
            raise ValueError("inpainting (keep), guidance and strength < 1 need a known trajectory")
        if guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {guidance}")

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
        mask = keep[..., 0] if known is not None and self.clean_known else None
        for t in timesteps:
            if mask is not None:
                x = torch.where(keep, known, x)
            elif known is not None:
                noise = torch.randn(x.shape, generator=generator, device=dev)
                x = torch.where(keep, self.add_noise(known, noise, t.expand(b * k)), x)
            if guidance:
                out, grad = self._guided(x, t, cond, known, keep, mask)
                x = sched.step(out, t, x, generator=generator).prev_sample
                x = x - guidance * (1 - self._alphas[t]).sqrt().to(dev) * grad
            else:
                out = self._denoise(x, t.expand(b * k), cond, mask)
                x = sched.step(out, t, x, generator=generator).prev_sample
        if known is not None:
            x = torch.where(keep, known, x)
        return x.clamp(-1, 1).reshape(b, k, h, a)

    def _denoise(self, x: Tensor, t: Tensor, cond: Tensor, mask: Tensor | None) -> Tensor:
        return self.denoiser(x, t, cond) if mask is None else self.denoiser(x, t, cond, mask)

    def _guided(self, x: Tensor, t: Tensor, cond: Tensor, known: Tensor, keep: Tensor,
                mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """The denoiser's output at (x, t) and the gradient, with respect to x, of the squared error
        of the kept steps in the clean trajectory it implies."""
        alpha = self._alphas[t].to(x.device)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            out = self._denoise(xg, t.expand(x.shape[0]), cond, mask)
            eps = self.cfg.prediction_type == "epsilon"
            x0 = (xg - (1 - alpha).sqrt() * out) / alpha.sqrt() if eps else out
            loss = ((x0 - known) ** 2 * keep).sum()
            (grad,) = torch.autograd.grad(loss, xg)
        return out.detach(), grad

    def inpaint(self, traj: Tensor, keep: Tensor, cond: Tensor, k: int = 1, strength: float = 1.0,
                **kw) -> Tensor:
        """Re-denoise the steps of ``traj`` (B, H, A) not in ``keep`` -> (B, k, H, A)."""
        return self.sample(cond, k, known=traj, keep=keep, strength=strength, **kw)
