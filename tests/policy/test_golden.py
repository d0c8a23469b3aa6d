"""Golden outputs: a fixed seed gives the same loss and sampled actions as when they were stored.

Regenerate (after an intended change to the model or the samplers) with
    REVERIE_REGEN_GOLDEN=1 python -m pytest tests/policy/test_golden.py
and commit ``tests/policy/golden/diffusion_tiny.safetensors`` with a message saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tests.policy.conftest import tiny_policy

GOLDEN = Path(__file__).parent / "golden" / "diffusion_tiny.safetensors"


def _outputs(prefix_conditioning: bool = False) -> dict[str, torch.Tensor]:
    policy = tiny_policy(seed=0, prefix_conditioning=prefix_conditioning)
    g = torch.Generator().manual_seed(123)
    obs = torch.randn(4, 2, 11, generator=g)
    act = torch.rand(4, 8, 8, generator=g) * 2 - 1
    loss = policy.compute_loss(obs, act, generator=torch.Generator().manual_seed(7))
    out = {"loss": loss.detach().reshape(1)}
    for scheduler in ("ddim", "dpmsolver++"):
        policy.cfg.scheduler = scheduler
        out[f"sample_{scheduler}"] = policy.sample(obs[:2], k=2, generator=torch.Generator().manual_seed(9))
    known = act[:2]
    out["inpaint"] = policy.sample(obs[:2], known=known, keep=torch.arange(8) < 3, strength=0.6,
                                   generator=torch.Generator().manual_seed(9))
    return out


def test_golden_outputs_match():
    # without prefix conditioning (checkpoints written before it) and with it (the default)
    out = {**_outputs(False), **{f"prefix_{k}": v for k, v in _outputs(True).items()}}
    if os.environ.get("REVERIE_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        save_file({k: v.contiguous() for k, v in out.items()}, GOLDEN)
    golden = load_file(GOLDEN)
    assert set(golden) == set(out)
    for key, value in out.items():
        torch.testing.assert_close(value, golden[key], atol=1e-4, rtol=1e-4, msg=f"golden {key} changed")
