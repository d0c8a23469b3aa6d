"""Shared fixtures: a tiny dataset and a tiny policy, built once per test session."""

from __future__ import annotations

import numpy as np
import pytest

from policy.diffusion.config import DiffusionConfig, PolicyShapes
from policy.diffusion.policy import DiffusionPolicy
from sim.collection import collect

TINY = {"down_dims": [16, 32], "step_embed_dim": 16, "horizon": 8, "n_action_steps": 4,
        "num_inference_steps": 4}
"""Smallest valid settings: a U-Net that trains in milliseconds per step."""


def tiny_policy(seed: int = 0, **overrides) -> DiffusionPolicy:
    import torch

    torch.manual_seed(seed)
    cfg = DiffusionConfig(**{**TINY, **overrides})
    shapes = PolicyShapes("reach", "panda", 8, {"observation.state": 8, "observation.goal": 3}, False)
    lo, hi = np.linspace(-1, 0, 11), np.linspace(1, 2, 11)
    return DiffusionPolicy(cfg, shapes, lo, hi, -np.ones(8), np.ones(8)).eval()


@pytest.fixture(scope="session")
def reach_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "reach"
    collect("reach", "panda", 4, out, num_envs=1, progress=False)
    return out


@pytest.fixture(scope="session")
def push_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "push"
    collect("push", "panda", 4, out, num_envs=1, progress=False)
    return out


@pytest.fixture(scope="session")
def push_run(push_data, tmp_path_factory):
    """A tiny Push policy trained for a few steps (behaviour does not matter, shapes do)."""
    from policy.configs import TrainConfig
    from policy.training.loop import train

    out = tmp_path_factory.mktemp("runs") / "push"
    train(TrainConfig(data=str(push_data), out=str(out), policy=dict(TINY), steps=10, batch_size=16,
                      log_every=5, save_every=10, eval_episodes=0, warmup_steps=2, progress=False))
    return out


@pytest.fixture(scope="session")
def push_wm(push_data, tmp_path_factory):
    """A tiny Push world model trained for a few steps."""
    from policy.configs import WorldModelTrainConfig
    from policy.training.world_model import train_world_model

    out = tmp_path_factory.mktemp("runs") / "push_wm"
    train_world_model(WorldModelTrainConfig(
        data=[str(push_data)], out=str(out), steps=10, batch_size=16, log_every=5, warmup_steps=2,
        progress=False, world_model={"horizon": 8, "latent_dim": 16, "d_model": 16, "layers": 1, "heads": 2}))
    return out
