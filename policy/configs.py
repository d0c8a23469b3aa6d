"""Typed, self-checking configs of the commands. Hydra YAML in ``configs/`` only composes them."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from robots.registry import get_robot
from sim.registry import get_task


def _check_task_robot(task: str, robot: str) -> None:
    get_task(task)
    get_robot(robot)


def _check_rollouts(episodes: int, num_envs: int, noise: float, perturb: float) -> None:
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if noise < 0:
        raise ValueError(f"noise is a standard deviation in rad and must be >= 0, got {noise}")
    if not 0 <= perturb <= 1:
        raise ValueError(f"perturb is a probability and must lie in [0, 1], got {perturb}")


@dataclass
class TaskRobotConfig:
    """A task on a robot: what every single-environment command names."""

    task: str = "push"
    """Task: reach, push, pick_place or sort."""
    robot: str = "panda"
    """Robot: panda or so101."""

    def __post_init__(self) -> None:
        _check_task_robot(self.task, self.robot)


@dataclass
class RolloutConfig(TaskRobotConfig):
    """What every expert-rollout command shares."""

    episodes: int = 100
    """Number of episodes (episode i is reset with seed + i)."""
    seed: int = 0
    """First reset seed."""
    num_envs: int = 2
    """Parallel environments (processes)."""
    noise: float = 0.0
    """Std of Gaussian noise on the experts' joint targets, rad."""
    perturb: float = 0.0
    """Per-episode probability of one disturbance (yields imperfect and failed rollouts)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_rollouts(self.episodes, self.num_envs, self.noise, self.perturb)


@dataclass
class CollectConfig(RolloutConfig):
    """`reverie collect`: expert demonstrations to a LeRobot v3 dataset."""

    episodes: int = 200
    """Number of episodes (episode i is reset with seed + i)."""
    out: str = "data/push"
    """Dataset directory to create."""
    overwrite: bool = False
    """Replace ``out`` if it already holds something."""


@dataclass
class BenchExpertConfig(RolloutConfig):
    """`reverie bench expert`: success rate of a scripted expert."""

    out: str | None = None
    """Also write the JSON result to this file."""


@dataclass
class BenchThroughputConfig(TaskRobotConfig):
    """`reverie bench throughput`: env step cost against raw mj_step, and collection rate."""

    steps: int = 1000
    """Control steps timed per repeat."""
    repeats: int = 5
    """Repeats; medians are reported."""
    collect_episodes: int = 20
    """Episodes for the collection-throughput measurement (0 skips it)."""
    num_envs: int = 2
    """Parallel environments for the collection measurement."""
    out: str | None = None
    """Also write the JSON result to this file."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1 or self.repeats < 1 or self.collect_episodes < 0 or self.num_envs < 1:
            raise ValueError("steps, repeats and num_envs must be >= 1 and collect_episodes >= 0")


@dataclass
class RunConfig:
    """`reverie run`: the whole job on embedded defaults (grows with each stage)."""

    tasks: list[str] = field(default_factory=lambda: ["reach", "push", "pick_place", "sort"])
    """Tasks to run."""
    robots: list[str] = field(default_factory=lambda: ["panda", "so101"])
    """Robots to run them on."""
    episodes: int = 30
    """Demonstrations collected per task and robot."""
    out: str = "runs/main"
    """Directory for datasets and the summary JSON."""
    seed: int = 0
    """First reset seed."""
    num_envs: int = 2
    """Parallel environments (processes)."""
    overwrite: bool = True
    """Replace earlier results in ``out``."""

    def __post_init__(self) -> None:
        if not self.tasks or not self.robots:
            raise ValueError("tasks and robots must each name at least one entry")
        for t in self.tasks:
            for r in self.robots:
                _check_task_robot(t, r)
        _check_rollouts(self.episodes, self.num_envs, 0.0, 0.0)


COMMAND_CONFIGS: dict[str, type] = {
    "collect": CollectConfig,
    "bench_expert": BenchExpertConfig,
    "bench_throughput": BenchThroughputConfig,
    "run": RunConfig,
}
"""Config name (a YAML file in ``configs/``) -> its schema."""


def register_configs() -> None:
    """Put every schema in Hydra's ConfigStore as ``<name>_schema``."""
    cs = ConfigStore.instance()
    for name, node in COMMAND_CONFIGS.items():
        cs.store(name=f"{name}_schema", node=node)
