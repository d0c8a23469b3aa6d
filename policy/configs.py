"""Typed, self-checking configs of the commands. Hydra YAML in ``configs/`` only composes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from policy.deploy.config import NodeConfig
from policy.diffusion.config import DiffusionConfig, check_compile_device, check_compile_mode
from policy.physics_dreamer import PhysicsDreamerConfig
from policy.planners.llm.config import LLMConfig
from policy.planners.value import ValuePlannerConfig
from policy.world_model.config import WorldModelConfig, check_execute
from robots.registry import get_robot
from robots.safety import SafetyConfig
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
class TrainConfig:
    """`reverie train`: fit a diffusion policy to a demonstration dataset."""

    data: str = "data/push"
    """Dataset directory (from `reverie collect`)."""
    out: str = "runs/push"
    """Run directory: checkpoints/, metrics.jsonl, train_config.json."""
    task: str | None = None
    """Task the data was recorded on; read from the dataset when omitted."""
    policy: DiffusionConfig = field(default_factory=DiffusionConfig)
    """The policy (horizons, size preset, schedulers)."""
    world_model: str | None = None
    """Also condition the policy on this world model's latent (its encoder, frozen and shared)."""
    steps: int = 20000
    """Optimiser steps (the cosine schedule spans them)."""
    minutes: float | None = None
    """Training time budget (evaluation excluded): training stops when it is spent, and the
    cosine schedule is paced to end by then, whichever of steps and minutes comes first."""
    batch_size: int = 256
    """Windows per step and process."""
    start_frames: int = 0
    """With ``start_share``: windows at the first ``start_frames`` frames of an episode count as
    start windows (0: none)."""
    start_share: float = 0.0
    """Share of every batch drawn from the start windows. There the robot has not moved yet, so
    the policy must decide from the scene and the instruction alone; later windows can be fitted
    by continuing the arm's own motion, and at their natural share (about 2 % on Sort) the
    decision is not learned (BENCHMARKS.md, Sort)."""
    lr: float = 1e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 1e-6
    """AdamW weight decay."""
    warmup_steps: int = 500
    """Linear warm-up before the cosine decay."""
    ema_power: float = 0.75
    """EMA warm-up power."""
    ema_max_decay: float = 0.9999
    """EMA decay ceiling."""
    log_every: int = 100
    """Steps between metrics.jsonl lines."""
    eval_every: int = 0
    """Steps between evaluation rollouts of the EMA policy (0: only at the end)."""
    eval_episodes: int = 20
    """Episodes per evaluation, on validation seeds 2,000,000+ (0 disables evaluation)."""
    save_every: int = 2000
    """Steps between checkpoints (one is always written at the end)."""
    seed: int = 0
    """Seed of initial weights, batches and noise."""
    resume: bool = True
    """Continue from the newest checkpoint in ``out`` if there is one."""
    overwrite: bool = False
    """Delete an existing ``out`` instead of resuming."""
    device: str = "auto"
    """auto (cuda when available), cpu or cuda."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.task is not None:
            get_task(self.task)
        for name in ("steps", "batch_size", "log_every", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every < 0 or self.eval_episodes < 0 or self.warmup_steps < 0:
            raise ValueError("eval_every, eval_episodes and warmup_steps must be >= 0")
        if self.start_frames < 0 or not 0 <= self.start_share < 1:
            raise ValueError(f"need start_frames >= 0 and 0 <= start_share < 1, got "
                             f"{self.start_frames}, {self.start_share}")
        if self.start_share > 0 and self.start_frames == 0:
            raise ValueError("start_share needs start_frames >= 1 (which frames are start windows)")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if isinstance(self.policy, dict):  # built directly rather than through Hydra
            self.policy = DiffusionConfig(**self.policy)


@dataclass
class WorldModelTrainConfig:
    """`reverie train-world-model`: fit the world model to recorded episodes."""

    data: list[str] = field(default_factory=lambda: ["data/push", "data/push_noisy"])
    """Dataset directories of one task and robot: demonstrations plus noisy/perturbed rollouts."""
    oracle_dreams: list[str] = field(default_factory=list)
    """Directories from `reverie collect-dreams`: the policy's candidates with their true futures."""
    out: str = "runs/push_wm"
    """Run directory: checkpoints/, metrics.jsonl."""
    init: str | None = None
    """Start from this trained world model's weights and normalisation instead of fresh ones:
    fine-tune it on added data (say, `collect-dreams execute=learned`) without training from
    scratch. ``world_model`` must describe the same network (its loss weights may differ)."""
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """The model (latent and transformer sizes, horizon, loss weights)."""
    steps: int = 6000
    """Optimiser steps (the cosine schedule spans them)."""
    minutes: float | None = None
    """Training time budget; the schedule is paced to end by then."""
    batch_size: int = 256
    """Examples per step."""
    rank_groups: int = 8
    """Oracle-dream decisions (K candidates each) per step for the rank loss (0: off)."""
    rank_focus: float = 0.0
    """Share of those decisions drawn in proportion to how much their candidates' true final
    progress differs (the rest uniformly). Most recorded decisions are ones where every candidate
    does about the same; the decisions a choice can win or lose (a grasp that lands or misses) are
    few, and uniform draws rarely show them to the rank loss."""
    lr: float = 1e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 200
    """Linear warm-up before the cosine decay."""
    val_fraction: float = 0.05
    """Share of episodes held out to measure dream error."""
    log_every: int = 100
    """Steps between metrics.jsonl lines."""
    seed: int = 0
    """Seed of weights, split and batches."""
    overwrite: bool = False
    """Replace ``out`` if it exists."""
    device: str = "auto"
    """auto, cpu or cuda."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if isinstance(self.data, str):
            self.data = [self.data]
        if isinstance(self.oracle_dreams, str):
            self.oracle_dreams = [self.oracle_dreams]
        if not self.data:
            raise ValueError("data must name at least one dataset directory")
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if self.rank_groups < 0:
            raise ValueError(f"rank_groups must be >= 0, got {self.rank_groups}")
        if not 0 <= self.rank_focus <= 1:
            raise ValueError(f"rank_focus must lie in [0, 1], got {self.rank_focus}")
        if not 0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must lie in [0, 0.5), got {self.val_fraction}")
        if not self.lr > 0 or self.warmup_steps < 0:
            raise ValueError("lr must be positive and warmup_steps >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if isinstance(self.world_model, dict):
            self.world_model = WorldModelConfig(**self.world_model)


@dataclass
class CollectDreamsConfig:
    """`reverie collect-dreams`: the policy's K candidates per decision with their simulated futures."""

    checkpoint: str = "runs/push"
    """Policy run whose candidates are recorded."""
    out: str = "data/push_dreams"
    """Directory to write dreams.safetensors and dreams.json to."""
    episodes: int = 100
    """Episodes to run."""
    seed: int = 3_000_000
    """First reset seed (apart from the test seeds 1,000,000+ and validation seeds 2,000,000+)."""
    k: int = 16
    """Candidates per decision."""
    batch: int = 25
    """Episodes in lockstep."""
    device: str = "cpu"
    """cpu or cuda."""
    displace_step: int | None = None
    """Also show the world model a cube moved mid-episode: at this control step the cube jumps
    ``displace_cm`` in a seeded direction (as `reverie eval`'s hard setting does)."""
    displace_cm: float = 6.0
    """Distance of the mid-episode displacement, cm."""
    execute: str = "first"
    """Which candidate the episodes go on with: ``first`` (candidate 0, an unbiased draw: the
    plain policy's states) or ``best`` (the one the ``value`` planner scores best on its true
    future: the states a controller that chooses well reaches, mid-carry and placing, which the
    plain policy seldom visits) or ``learned`` (the ``value`` planner's choice on the dreams of
    ``world_model``: the states the learned controller reaches, its own mistakes included, where
    that model most needs labels)."""
    world_model: str | None = None
    """World-model run whose dreams choose the executed candidate (``execute=learned`` only)."""

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.k < 1 or self.batch < 1:
            raise ValueError("episodes, k and batch must be >= 1")
        check_execute(self.execute, self.world_model)
        if self.displace_step is not None and (self.displace_step < 1 or self.displace_cm <= 0):
            raise ValueError("displace_step must be >= 1 and displace_cm > 0")


@dataclass
class EvalConfig:
    """`reverie eval`: closed-loop success of a trained policy."""

    checkpoint: str = "runs/push"
    """Run directory or checkpoint step directory."""
    task: str | None = None
    """Task to evaluate on; must be the checkpoint's (default: the checkpoint's)."""
    robot: str | None = None
    """Robot to evaluate on; must be the checkpoint's (default: the checkpoint's)."""
    episodes: int = 100
    """Seeded episodes (episode i uses seed + i)."""
    seed: int = 1_000_000
    """First reset seed (far from the training collection's seeds)."""
    steps: int | None = None
    """Denoising steps (the quality/speed slider); the checkpoint's setting when omitted."""
    scheduler: str | None = None
    """Override the inference scheduler: ddim, dpmsolver++ or ddpm."""
    batch: int = 50
    """Episodes run in lockstep, batched through the policy."""
    inpaint_past: bool | None = None
    """Override whether each new chunk is held to the action already sent."""
    video: str | None = None
    """Record the first episode to this .gif (or .mp4 with PyAV)."""
    planner: str | None = None
    """Choose among K dreamed candidates with this planner (value); none runs the plain policy."""
    dreamer: str = "learned"
    """What dreams the candidates: learned (needs world_model=), oracle (a copy of the simulation)
    or physics (MuJoCo set from the observation alone; Push and PickPlace)."""
    world_model: str | None = None
    """World-model run for dreamer=learned."""
    ensemble: list[str] = field(default_factory=list)
    """More world-model runs of the same task to dream alongside world_model; the controller then
    chooses by the members' averaged dreams (dreamer=learned only)."""
    physics: PhysicsDreamerConfig = field(default_factory=PhysicsDreamerConfig)
    """dreamer=physics's deliberate model errors (physics.friction=0.7 physics.pose_noise_mm=5 ...) and its
    hedge against a pose error (physics.hedge_mm=5 physics.hedge_deg=5)."""
    k: int = 16
    """Candidates per decision (with a planner)."""
    refine: int = 0
    """Re-denoise the chosen trajectory's last X steps and keep it if it dreams better (0: off)."""
    refine_candidates: int = 4
    """Variants per refinement."""
    refine_strength: float = 0.4
    """Share of the denoising schedule a refinement runs."""
    audit: bool = False
    """Also replay every candidate in the simulator and report dream fidelity (slow)."""
    displace_step: int | None = None
    """Harder setting: at this control step move the cube ``displace_cm`` in a seeded direction."""
    displace_cm: float = 6.0
    """Distance of the mid-episode displacement, cm."""
    lead: int = 0
    """Plan each chunk this many control steps before it takes over, holding the steps that run
    meanwhile: the deployment node's inference latency, simulated without its clock (plain policy)."""
    phrasing: str | None = None
    """Sort only: familiar (as in the demonstrations) or novel instructions (held-out words)."""
    llm: LLMConfig = field(default_factory=LLMConfig)
    """Settings of planner=llm or llm_value (llm.backend=openai llm.base_url=... llm.memory=FILE)."""
    value: ValuePlannerConfig = field(default_factory=ValuePlannerConfig)
    """Settings of the value score, alone or inside llm / llm_value (value.objective=false
    value.jerk=1.0 ...)."""
    rerun: str | None = None
    """Record episodes to rerun: PATH.rrd, spawn (open a viewer) or a viewer URL (rerun+http://...)."""
    rerun_episodes: int = 3
    """How many of the first episodes to record."""
    rerun_images: bool = False
    """Also render and record the camera image every step (slower)."""
    out: str | None = None
    """Also write the JSON result to this file, and PNG plots next to it."""
    device: str = "cpu"
    """cpu or cuda."""

    def __post_init__(self) -> None:
        from policy.controller import ControllerConfig
        from policy.recording.recorder import RerunTarget

        if self.rerun is not None:
            RerunTarget.parse(self.rerun)
            if not 1 <= self.rerun_episodes <= self.episodes:
                raise ValueError(f"rerun_episodes must lie in [1, episodes={self.episodes}], "
                                 f"got {self.rerun_episodes}")
            if self.rerun_episodes > self.batch:
                raise ValueError(f"rerun_episodes ({self.rerun_episodes}) must fit in the first batch "
                                 f"(batch={self.batch}): recorded episodes run side by side")

        if self.phrasing not in (None, "familiar", "novel"):
            raise ValueError(f"phrasing must be familiar or novel, got {self.phrasing!r}")
        if self.lead < 0:
            raise ValueError(f"lead must be >= 0 control steps, got {self.lead}")
        if self.lead and self.planner:
            raise ValueError("lead applies to the plain policy; to measure a planner under latency run "
                             "`reverie bench deploy ... planner=NAME` (the node)")
        from policy.dreamers import DREAMERS
        from policy.planners.registry import PLANNERS

        if self.planner is not None and self.planner not in PLANNERS:
            raise ValueError(f"unknown planner {self.planner!r}; choose one of {', '.join(PLANNERS)}")
        if self.dreamer not in DREAMERS:
            raise ValueError(f"unknown dreamer {self.dreamer!r}; choose one of {', '.join(DREAMERS)}")
        if self.dreamer == "physics" and (self.world_model or self.ensemble):
            raise ValueError("dreamer=physics dreams with its own simulator; drop world_model= and ensemble= "
                             "(or use dreamer=learned)")
        if self.planner and self.dreamer == "learned" and not self.world_model:
            raise ValueError("planner with dreamer=learned needs world_model=RUN (a `reverie "
                             "train-world-model` run), or use dreamer=oracle")
        if isinstance(self.ensemble, str):
            self.ensemble = [self.ensemble]
        if self.ensemble and (self.dreamer != "learned" or not self.world_model):
            raise ValueError("ensemble= adds world models to dreamer=learned's world_model=RUN; pass "
                             "world_model too (or leave ensemble empty)")
        ControllerConfig(self.k, self.refine, self.refine_candidates, self.refine_strength)
        if self.displace_step is not None and (self.displace_step < 1 or self.displace_cm <= 0):
            raise ValueError("displace_step must be >= 1 and displace_cm > 0")
        if self.task is not None:
            get_task(self.task)
        if self.robot is not None:
            get_robot(self.robot)
        if self.episodes < 1 or self.batch < 1:
            raise ValueError("episodes and batch must be >= 1")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@dataclass
class BenchLatencyConfig:
    """`reverie bench latency`: milliseconds from observation to action chunk."""

    checkpoint: str | None = None
    """Trained run to time; when omitted an untrained policy of ``preset`` for task/robot is timed."""
    preset: str = "tiny"
    """Size preset when no checkpoint is given."""
    task: str = "pick_place"
    """Task whose observation shapes an untrained policy takes."""
    robot: str = "panda"
    """Robot whose action shape an untrained policy takes."""
    k: Any = field(default_factory=lambda: [1, 16])
    """Candidate counts K: one number or a list."""
    steps: Any = field(default_factory=lambda: [1, 4, 10, 100])
    """Denoising step counts: one number or a list."""
    scheduler: str = "ddim"
    """Inference scheduler."""
    repeats: int = 50
    """Timed calls per (K, steps) after warm-up."""
    device: str = "cpu"
    """cpu or cuda."""
    compile: bool = False
    """torch.compile the denoiser first."""
    compile_mode: str = "default"
    """torch.compile's mode (reduce-overhead replays each denoising step as a CUDA graph)."""
    threads: int | None = None
    """torch CPU threads (default: torch's choice)."""
    out: str | None = None
    """Also write the JSON result to this file."""

    def __post_init__(self) -> None:
        _check_task_robot(self.task, self.robot)
        check_compile_mode(self.compile_mode)
        self.k = [int(v) for v in (self.k if isinstance(self.k, list | tuple) else [self.k])]
        self.steps = [int(v) for v in (self.steps if isinstance(self.steps, list | tuple) else [self.steps])]
        if not self.k or not self.steps or min(self.k) < 1 or min(self.steps) < 1 or self.repeats < 1:
            raise ValueError("k, steps and repeats must be >= 1")


@dataclass
class BenchCycleConfig:
    """`reverie bench cycle`: ms of one whole control cycle (sample K, dream, score, choose)."""

    checkpoint: str = "runs/push"
    """Policy run."""
    world_model: str = "runs/push_wm"
    """World-model run of the same task and robot (dreamer=learned)."""
    dreamer: str = "learned"
    """learned (the world model) or physics (MuJoCo set from the observation; Push and PickPlace).
    The oracle copies a running simulation and has no place in a robot's cycle."""
    physics: PhysicsDreamerConfig = field(default_factory=PhysicsDreamerConfig)
    """dreamer=physics's settings (physics.variants=3 physics.spread=0.5 dreams in 3 models; physics.threads=4
    spreads its rollouts over 4 MuJoCo threads)."""
    k: Any = field(default_factory=lambda: [1, 4, 16])
    """Candidate counts K: one number or a list."""
    steps: int | None = None
    """Denoising steps (the policy's setting when omitted)."""
    refine: int = 0
    """Also refine the last X steps each cycle."""
    repeats: int = 30
    """Timed cycles per K."""
    device: str = "cpu"
    """cpu or cuda."""
    compile: bool = False
    """torch.compile the denoiser first (compiling for each K runs in the warm-up cycles)."""
    compile_mode: str = "default"
    """torch.compile's mode (reduce-overhead replays each denoising step as a CUDA graph)."""
    threads: int | None = None
    """torch CPU threads (default: torch's choice)."""
    out: str | None = None
    """Also write the JSON result to this file."""

    def __post_init__(self) -> None:
        self.k = [int(v) for v in (self.k if isinstance(self.k, list | tuple) else [self.k])]
        if not self.k or min(self.k) < 1 or self.repeats < 1 or (self.steps is not None and self.steps < 1):
            raise ValueError("k, steps and repeats must be >= 1")
        check_compile_mode(self.compile_mode)
        from policy.dreamers import ON_ROBOT

        if self.dreamer not in ON_ROBOT:
            raise ValueError(f"bench cycle times dreamer={' or '.join(ON_ROBOT)}, got {self.dreamer!r} "
                             "(the oracle needs a running simulation to copy)")


@dataclass
class BenchPlannerConfig:
    """`reverie bench planner`: ms of one planning call per planner (and backend)."""

    checkpoint: str = "runs/sort"
    """Policy run (Sort, for instructions worth reading)."""
    world_model: str = "runs/sort_wm"
    """World-model run of the same task and robot."""
    planners: list[str] = field(default_factory=lambda: ["value", "llm", "llm_value"])
    k: int = 16
    repeats: int = 20
    """Timed decisions per planner, each on a fresh episode."""
    phrasing: str | None = "novel"
    """Sort instructions: familiar or novel."""
    llm: LLMConfig = field(default_factory=LLMConfig)
    threads: int | None = None
    """torch CPU threads (default: torch's choice)."""
    out: str | None = None

    def __post_init__(self) -> None:
        from policy.planners.registry import PLANNERS

        unknown = [p for p in self.planners if p not in PLANNERS]
        if unknown:
            raise ValueError(f"unknown planners {unknown}; choose from {', '.join(PLANNERS)}")
        if self.k < 1 or self.repeats < 1:
            raise ValueError("k and repeats must be >= 1")


@dataclass
class BenchGroundingConfig:
    """`reverie bench grounding`: Sort selection accuracy per planner on expert-proposed futures."""

    robot: str = "panda"
    planners: list[str] = field(default_factory=lambda: ["value", "llm", "llm_value"])
    episodes: int = 40
    """Start states per phrasing."""
    horizon: int = 60
    """Control steps each proposed future runs (60 = 6 s: grasped and on its way)."""
    phrasings: list[str] = field(default_factory=lambda: ["familiar", "novel"])
    llm: LLMConfig = field(default_factory=LLMConfig)
    out: str | None = None

    def __post_init__(self) -> None:
        from policy.planners.registry import PLANNERS

        get_robot(self.robot)
        unknown = [p for p in self.planners if p not in PLANNERS]
        if unknown:
            raise ValueError(f"unknown planners {unknown}; choose from {', '.join(PLANNERS)}")
        if any(p not in ("familiar", "novel") for p in self.phrasings):
            raise ValueError(f"phrasings must be familiar and/or novel, got {self.phrasings}")
        if self.episodes < 1 or self.horizon < 8:
            raise ValueError("episodes must be >= 1 and horizon >= 8")


@dataclass
class BenchMemoryConfig:
    """`reverie bench memory`: consecutive decisions under a systematically wrong world model,
    llm_value with memory off and on."""

    robot: str = "panda"
    episodes: int = 40
    horizon: int = 60
    llm: LLMConfig = field(default_factory=LLMConfig)
    store_dir: str = "runs/memory"
    """Where the fresh lesson stores are written (one per repeat)."""
    repeats: int = 1
    """Independent runs on other start states, each from an empty store: the learning curve is
    their mean success per episode index."""
    block: int = 5
    """Episodes per point of the reported learning curve."""
    out: str | None = None

    def __post_init__(self) -> None:
        get_robot(self.robot)
        if self.episodes < 2 or self.horizon < 8:
            raise ValueError("episodes must be >= 2 and horizon >= 8")
        if self.repeats < 1 or not 1 <= self.block <= self.episodes:
            raise ValueError("repeats must be >= 1 and block between 1 and episodes")


@dataclass
class VizConfig:
    """`reverie viz`: replay a recorded dataset in rerun."""

    data: str = "data/push"
    """Dataset directory (written by `reverie collect`)."""
    episodes: Any = 3
    """The first N episodes, or a list of episode indices."""
    rerun: str = "spawn"
    """spawn (open a viewer), PATH.rrd, or a viewer URL (rerun+http://...)."""

    def __post_init__(self) -> None:
        from policy.recording.recorder import RerunTarget

        RerunTarget.parse(self.rerun)
        if isinstance(self.episodes, int) and self.episodes < 1:
            raise ValueError(f"episodes must be >= 1 or a list of indices, got {self.episodes}")


@dataclass
class BenchRecordingConfig:
    """`reverie bench recording`: the control cycle's latency with rerun recording on and off."""

    checkpoint: str = "runs/push"
    """Policy run."""
    world_model: str = "runs/push_wm"
    """World-model run of the same task and robot."""
    k: int = 16
    repeats: int = 30
    """Timed cycles per arm (on and off alternate)."""
    threads: int | None = None
    """torch CPU threads (default: torch's choice)."""
    out: str | None = None
    """Also write the JSON result to this file."""

    def __post_init__(self) -> None:
        if self.k < 1 or self.repeats < 3:
            raise ValueError(f"k must be >= 1 and repeats >= 3, got {self.k}, {self.repeats}")


@dataclass
class DeployConfig:
    """`reverie deploy`: a trained policy driving a robot in real time, through the safety layer."""

    robot: str = "mujoco"
    """Driver: mujoco (a simulated arm in its own process, running the policy's task) or so101."""
    checkpoint: str | None = None
    """Policy run to load in this process; or give server=."""
    server: str | None = None
    """HOST:PORT of a `reverie serve` policy server (token from $REVERIE_TOKEN)."""
    episodes: int = 1
    seed: int = 1_000_000
    """Seed of the first simulated episode (mujoco)."""
    node: NodeConfig = field(default_factory=NodeConfig)
    """node.rate_hz, node.seconds, node.delay_ms, node.lead, node.source_timeout_s, node.join_blend,
    node.reserve."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """safety.velocity_scale, safety.watchdog_ms, safety.on_timeout=hold|stop, ..."""
    port: str = "/dev/ttyACM0"
    """Serial port (so101) or the robot's FCI address (franka, e.g. 172.16.0.2)."""
    calibration: str | None = None
    """SO-101 calibration JSON (so101)."""
    steps: int | None = None
    """Denoising steps (the checkpoint's setting when omitted)."""
    planner: str | None = None
    """Run the sample -> dream -> choose controller with this planner (needs world_model=)."""
    world_model: str | None = None
    dreamer: str = "learned"
    """learned (world_model=) or physics (MuJoCo set from each observation, which must then carry
    the cube poses; Push and PickPlace)."""
    physics: PhysicsDreamerConfig = field(default_factory=PhysicsDreamerConfig)
    """dreamer=physics's settings (physics.threads=4 spreads its rollouts over 4 MuJoCo threads)."""
    k: int = 8
    """Candidates per decision (with a planner)."""
    inpaint_guidance: float | None = None
    """Guidance towards the committed steps of each new chunk (default 0: replacement only;
    experimental, see BENCHMARKS.md)."""
    join_samples: int = 1
    """Chunks drawn per request behind the committed steps (one batch); the one that continues
    the committed motion with the least acceleration is kept (BID-style backward coherence).
    Without a planner only."""
    device: str = "cpu"
    """Where the policy in this process runs (cpu, cuda)."""
    compile_mode: str | None = None
    """torch.compile the denoiser in this mode (default; reduce-overhead: CUDA graphs, device=cuda),
    planned on one thread and warmed up before the arm moves. None: eager."""
    token_env: str = "REVERIE_TOKEN"
    out: str | None = None
    """Also write the JSON report to this file."""

    def __post_init__(self) -> None:
        from policy.deploy.run import DRIVERS

        _check_join_samples(self.join_samples, self.planner)
        _check_compile(self.compile_mode, self.device)
        if self.compile_mode and self.server:
            raise ValueError("compile_mode compiles a policy in this process; give it to `reverie serve` "
                             "on the server instead")

        if self.robot not in DRIVERS:
            raise ValueError(f"unknown robot driver {self.robot!r}; choose one of {', '.join(DRIVERS)}")
        if self.checkpoint is not None and self.server is not None:
            raise ValueError("give exactly one of checkpoint=RUN or server=HOST:PORT, not both")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if isinstance(self.node, dict):
            self.node = NodeConfig(**self.node)
        if isinstance(self.safety, dict):
            self.safety = SafetyConfig(**self.safety)


def _check_compile(mode: str | None, device: str) -> None:
    if mode is not None:
        check_compile_mode(mode)
        check_compile_device(mode, device)


def _check_join_samples(n: int, planner: str | None) -> None:
    if n < 1:
        raise ValueError(f"join_samples must be >= 1, got {n}")
    if n > 1 and planner:
        raise ValueError("join_samples applies to the plain policy; with a planner, k= candidates are "
                         "drawn and the planner chooses among them")


@dataclass
class BenchDeployConfig:
    """`reverie bench deploy`: the node on the simulated arm at several inference delays."""

    checkpoint: str = "runs/push"
    episodes: int = 20
    delays_ms: list[float] = field(default_factory=lambda: [0.0, 100.0, 200.0, 300.0])
    seed: int = 1_000_000
    rate_hz: float = 100.0
    time_limit_s: float | None = None
    """Seconds per node episode (default: the task's own time limit)."""
    inpaint_guidance: float | None = None
    """Guidance towards committed steps (default: the node's, 0)."""
    planner: str | None = None
    """Run the sample -> dream -> choose controller in the node with this planner (needs world_model=)."""
    world_model: str | None = None
    k: int = 8
    """Candidates per decision (with a planner)."""
    join_samples: int = 1
    """Chunks drawn per request behind the committed steps (one batch); the one that continues
    the committed motion with the least acceleration is kept (BID-style backward coherence).
    Without a planner only."""
    join_blend: list[int] = field(default_factory=lambda: [NodeConfig().join_blend])
    """Node join blends to compare (``node.join_blend``), each at every delay, interleaved."""
    reserve: list[bool] = field(default_factory=lambda: [NodeConfig().reserve])
    """Node reserve settings to compare (``node.reserve``), each at every delay and blend."""
    centre_targets: list[bool] = field(default_factory=lambda: [NodeConfig().centre_targets])
    """Command timings to compare (``node.centre_targets``), each at every delay, blend and reserve."""
    out: str | None = None

    def __post_init__(self) -> None:
        _check_join_samples(self.join_samples, self.planner)
        if not self.join_blend:
            raise ValueError("join_blend must list at least one value, e.g. join_blend=[0,3]")
        for b in self.join_blend:
            NodeConfig(join_blend=b)  # range-checked there
        if not self.reserve:
            raise ValueError("reserve must list at least one value, e.g. reserve=[true,false]")
        if not self.centre_targets:
            raise ValueError("centre_targets must list at least one value, e.g. centre_targets=[true,false]")
        if (self.planner is None) != (self.world_model is None):
            raise ValueError("planner= and world_model= go together: the controller needs both")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.episodes < 1 or not self.delays_ms or min(self.delays_ms) < 0:
            raise ValueError("episodes must be >= 1 and delays_ms a non-empty list of values >= 0")


@dataclass
class BenchJoinsConfig:
    """`reverie bench joins`: how fresh chunks join d committed steps, offline in closed loop."""

    checkpoint: str = "runs/push"
    episodes: int = 20
    seed: int = 1_000_000
    committed: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    """Committed steps d ahead of each join (the node's lead)."""
    draws: int = 16
    """Fresh trajectories drawn per state and d."""
    steps: int | None = None
    guidance: float = 0.0
    """Reconstruction guidance towards the kept steps (see Sampler.sample)."""
    threads: int | None = None
    out: str | None = None

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.draws < 1 or not self.committed or min(self.committed) < 0:
            raise ValueError("episodes and draws must be >= 1 and committed a non-empty list of values >= 0")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")


@dataclass
class ServeConfig:
    """`reverie serve`: a policy server for split deployment (loopback unless a token is set)."""

    checkpoint: str = "runs/push"
    host: str = "127.0.0.1"
    port: int = 50051
    steps: int | None = None
    device: str = "cpu"
    planner: str | None = None
    """Serve the sample -> dream -> choose controller with this planner (needs world_model=)."""
    world_model: str | None = None
    dreamer: str = "learned"
    """learned (world_model=) or physics (MuJoCo set from each observation; Push and PickPlace)."""
    physics: PhysicsDreamerConfig = field(default_factory=PhysicsDreamerConfig)
    """dreamer=physics's settings (physics.threads=4 spreads its rollouts over 4 MuJoCo threads)."""
    k: int = 8
    join_samples: int = 1
    """Chunks drawn per request behind the committed steps (one batch); the one that continues
    the committed motion with the least acceleration is kept (BID-style backward coherence).
    Without a planner only."""
    compile_mode: str | None = None
    """torch.compile the denoiser in this mode (default; reduce-overhead: CUDA graphs, device=cuda),
    planned on one thread and warmed up before the server listens. None: eager."""
    token_env: str = "REVERIE_TOKEN"

    def __post_init__(self) -> None:
        _check_join_samples(self.join_samples, self.planner)
        _check_compile(self.compile_mode, self.device)
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must lie in 0..65535, got {self.port}")


@dataclass
class RunConfig:
    """`reverie run`: the whole job on embedded defaults (grows with each stage)."""

    tasks: list[str] = field(default_factory=lambda: ["reach", "push", "pick_place", "sort"])
    """Tasks whose experts are run and recorded."""
    robots: list[str] = field(default_factory=lambda: ["panda", "so101"])
    """Robots to run them on."""
    episodes: int = 30
    """Expert episodes per task and robot for the experts' table."""
    policy_tasks: list[str] = field(default_factory=lambda: ["pick_place"])
    """Tasks a diffusion policy is trained and evaluated on."""
    policy_robot: str = "panda"
    """Robot of the policy tasks."""
    demos: int = 200
    """Demonstrations per policy task."""
    preset: str = "tiny"
    """Policy size preset."""
    train_steps: int = 8000
    """Training steps per policy task (quick CPU preset)."""
    train_minutes: float = 9.0
    """Training time budget per policy task; the learning-rate schedule is paced to it."""
    noisy_episodes: int = 150
    """Noisy/perturbed expert episodes for the world model, per policy task."""
    world_model_minutes: float = 2.5
    """World-model training budget per policy task."""
    controller_k: int = 8
    """Candidates per decision of the sample -> dream -> choose controller."""
    physics_episodes: int = 0
    """Also run the controller with physics dreams (MuJoCo set from each observation) on this many
    of the evaluation seeds, on the tasks it dreams (Push, PickPlace; 0: skip, the default, which
    keeps the whole job inside its 15 minutes: each episode replays every candidate in MuJoCo)."""
    llm_episodes: int = 10
    """Also run the language-model planner on this many of the evaluation seeds (0: skip)."""
    record_episodes: int = 3
    """Record the controller's first episodes (at most eval_episodes) to
    OUT/recordings/<task>_<robot>.rrd (0: skip)."""
    eval_episodes: int = 50
    """Closed-loop evaluation episodes per policy task."""
    node_episodes: int = 3
    """Also drive the simulated arm through the real-time deployment node (safety layer, 100 Hz)
    for this many of the evaluation seeds (0: skip)."""
    node_seconds: float | None = None
    """Seconds per node episode (default: the task's own time limit)."""
    out: str = "runs/main"
    """Directory for datasets, runs and the summary JSON."""
    seed: int = 0
    """First reset seed."""
    num_envs: int = 2
    """Parallel environments (processes) for collection."""
    overwrite: bool = True
    """Replace earlier results in ``out``."""

    def __post_init__(self) -> None:
        if not self.tasks or not self.robots:
            raise ValueError("tasks and robots must each name at least one entry")
        for t in self.tasks:
            for r in self.robots:
                _check_task_robot(t, r)
        for t in self.policy_tasks:
            _check_task_robot(t, self.policy_robot)
        _check_rollouts(self.episodes, self.num_envs, 0.0, 0.0)
        if not 0 <= self.record_episodes <= 50:
            raise ValueError(f"record_episodes must lie in [0, 50], got {self.record_episodes}")
        if not 0 <= self.node_episodes <= self.eval_episodes:
            raise ValueError(f"node_episodes must lie in [0, eval_episodes={self.eval_episodes}], "
                             f"got {self.node_episodes}")
        if self.node_seconds is not None and self.node_seconds <= 0:
            raise ValueError(f"node_seconds must be positive, got {self.node_seconds}")
        if not 0 <= self.physics_episodes <= self.eval_episodes:
            raise ValueError(f"physics_episodes must lie in [0, eval_episodes={self.eval_episodes}], "
                             f"got {self.physics_episodes}")
        if not 0 <= self.llm_episodes <= self.eval_episodes:
            raise ValueError(f"llm_episodes must lie in [0, eval_episodes={self.eval_episodes}], "
                             f"got {self.llm_episodes}")
        if self.demos < 1 or self.train_steps < 1 or self.eval_episodes < 1 or self.train_minutes <= 0:
            raise ValueError("demos, train_steps, eval_episodes and train_minutes must be positive")
        if self.noisy_episodes < 1 or self.world_model_minutes <= 0 or self.controller_k < 1:
            raise ValueError("noisy_episodes, world_model_minutes and controller_k must be positive")
        DiffusionConfig(preset=self.preset)


COMMAND_CONFIGS: dict[str, type] = {
    "train": TrainConfig,
    "eval": EvalConfig,
    "train_world_model": WorldModelTrainConfig,
    "collect_dreams": CollectDreamsConfig,
    "bench_latency": BenchLatencyConfig,
    "bench_cycle": BenchCycleConfig,
    "bench_planner": BenchPlannerConfig,
    "bench_grounding": BenchGroundingConfig,
    "bench_memory": BenchMemoryConfig,
    "bench_recording": BenchRecordingConfig,
    "viz": VizConfig,
    "deploy": DeployConfig,
    "bench_deploy": BenchDeployConfig,
    "bench_joins": BenchJoinsConfig,
    "serve": ServeConfig,
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
