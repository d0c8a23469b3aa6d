"""The one registry of tasks, and the gymnasium ids derived from tasks x robots."""

from __future__ import annotations

import gymnasium as gym

from robots.registry import ROBOTS
from sim.tasks.base import Task
from sim.tasks.pick_place import PickPlace
from sim.tasks.push import Push
from sim.tasks.reach import Reach
from sim.tasks.sort import Sort

TASKS: dict[str, type[Task]] = {t.name: t for t in (Reach, Push, PickPlace, Sort)}
ROBOT_TITLES = {"panda": "Panda", "so101": "SO101"}
NAMESPACE = "reverie"


def get_task(name: str) -> type[Task]:
    """The Task class registered as ``name``, or a ValueError listing the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}") from None


def env_id(task: str, robot: str) -> str:
    """Gymnasium id of a task on a robot, e.g. ``reverie/Push-Panda-v0``."""
    get_task(task)
    if robot not in ROBOTS:
        raise ValueError(f"unknown robot {robot!r}; choose one of: {', '.join(ROBOTS)}")
    return f"{NAMESPACE}/{TASKS[task].title}-{ROBOT_TITLES[robot]}-v0"


ENV_IDS: dict[str, tuple[str, str]] = {env_id(t, r): (t, r) for t in TASKS for r in ROBOTS}
"""Every registered environment: gymnasium id -> (task, robot)."""


def register_envs() -> None:
    """Register every (task, robot) pair with gymnasium (idempotent)."""
    for gym_id, (task, robot) in ENV_IDS.items():
        if gym_id not in gym.registry:
            gym.register(gym_id, entry_point="sim.env:ReverieEnv",
                         kwargs={"task": task, "robot": robot}, disable_env_checker=True)
