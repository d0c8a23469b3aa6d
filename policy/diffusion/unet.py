"""The denoiser: a conditional 1-D temporal U-Net with FiLM (after Chi et al., 2023).

Each residual block is Conv1d -> GroupNorm -> Mish twice, with a FiLM scale and bias computed
from (diffusion-step embedding ++ observation encoding) applied between the two. Levels halve the
time axis with a stride-2 convolution and double it back with a transposed convolution.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn


class StepEmbedding(nn.Module):
    """Sinusoidal embedding of the diffusion step, then a small MLP: (B,) -> (B, dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"step embedding width must be even, got {dim}")
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000.0) / (half - 1)))
        angles = t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class ConvNormMish(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int) -> None:
        super().__init__(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
                         nn.GroupNorm(groups, c_out), nn.Mish())


class FiLMResBlock(nn.Module):
    """(B, c_in, T), (B, cond) -> (B, c_out, T)."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.conv1 = ConvNormMish(c_in, c_out, kernel, groups)
        self.conv2 = ConvNormMish(c_out, c_out, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.conv1(x)
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.conv2(scale * h + bias)
        return h + self.skip(x)


class ConditionalUnet1D(nn.Module):
    """Predicts noise (or the clean trajectory) for noisy trajectories.

    ``forward(x (B, H, A), t (B,), cond (B, cond_dim), known (B, H) bool | None) -> (B, H, A)``.
    With ``known_channel`` the input has one more channel per step: 1 where the step is known
    (given clean), 0 where it is noised; ``known=None`` means no step is known.
    """

    def __init__(self, action_dim: int, cond_dim: int, down_dims: list[int], step_embed_dim: int,
                 kernel: int = 5, groups: int = 8, known_channel: bool = False) -> None:
        super().__init__()
        self.known_channel = known_channel
        self.step_embed = StepEmbedding(step_embed_dim)
        c = step_embed_dim + cond_dim
        widths = [action_dim + int(known_channel), *down_dims]
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
            last = i == len(down_dims) - 1
            self.down.append(nn.ModuleList([
                FiLMResBlock(c_in, c_out, c, kernel, groups),
                FiLMResBlock(c_out, c_out, c, kernel, groups),
                nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, stride=2, padding=1)]))
        mid = down_dims[-1]
        self.mid = nn.ModuleList([FiLMResBlock(mid, mid, c, kernel, groups) for _ in range(2)])
        self.up = nn.ModuleList()
        for c_out, c_in in reversed(list(itertools.pairwise(down_dims))):
            self.up.append(nn.ModuleList([
                FiLMResBlock(2 * c_in, c_out, c, kernel, groups),
                FiLMResBlock(c_out, c_out, c, kernel, groups),
                nn.ConvTranspose1d(c_out, c_out, 4, stride=2, padding=1)]))
        self.head = nn.Sequential(ConvNormMish(down_dims[0], down_dims[0], kernel, groups),
                                  nn.Conv1d(down_dims[0], action_dim, 1))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor, known: Tensor | None = None) -> Tensor:
        c = torch.cat([self.step_embed(t), cond], dim=-1)
        if self.known_channel:
            flag = x.new_zeros(x.shape[:2]) if known is None else known.to(x.dtype).expand(x.shape[:2])
            x = torch.cat([x, flag[..., None]], dim=-1)
        elif known is not None:
            raise ValueError("this denoiser was built without a known-step channel; it cannot take "
                             "a known mask (train with policy.prefix_conditioning=true)")
        h = x.transpose(1, 2)
        skips = []
        for res1, res2, downsample in self.down:
            h = res2(res1(h, c), c)
            skips.append(h)
            h = downsample(h)
        for res in self.mid:
            h = res(h, c)
        for res1, res2, upsample in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = upsample(res2(res1(h, c), c))
        return self.head(h).transpose(1, 2)
