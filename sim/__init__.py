"""MuJoCo manipulation tasks as gymnasium environments, scripted experts, demonstration data."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; set MUJOCO_GL to override

from sim.registry import ENV_IDS, TASKS, env_id, register_envs

register_envs()

__all__ = ["ENV_IDS", "TASKS", "env_id", "register_envs"]
