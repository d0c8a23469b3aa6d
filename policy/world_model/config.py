"""World-model settings (checked on construction) and the shapes derived from its data."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from policy.diffusion.config import DEFAULT_OBS_FEATURES
from policy.diffusion.text import words
from sim.data.format import STATE

EE_FEATURE, OBJECTS_FEATURE = "observation.ee_pose", "observation.object_poses"
GOAL_FEATURE = "observation.goal"
COLLECT_EXECUTE = ("first", "best", "learned")
"""What `reverie collect-dreams` goes on with at each decision: candidate 0 (the plain policy's
states), the candidate with the best true future by the ``value`` planner (a good controller's),
or the ``value`` planner's choice on a learned world model's dreams (the states the learned
controller itself reaches, its own mistakes included)."""


def check_execute(execute: str, world_model: str | Path | None = None) -> None:
    """Refuses a `collect-dreams` ``execute`` that is not one of ``COLLECT_EXECUTE``, and a
    ``world_model`` given without ``execute=learned`` or missing with it."""
    if execute not in COLLECT_EXECUTE:
        raise ValueError(f"execute must be one of {', '.join(COLLECT_EXECUTE)}, got {execute!r}")
    if (execute == "learned") != bool(world_model):
        raise ValueError("execute=learned needs world_model=RUN (a trained world model), and "
                         "world_model is used only with execute=learned")


@dataclass
class WorldModelConfig:
    """Encoder and dynamics sizes, the dream horizon, and the loss weights."""

    n_obs_steps: int = 2
    """Observations encoded into the latent."""
    horizon: int = 16
    """Steps dreamed per candidate trajectory."""
    latent_dim: int = 128
    """Width of the latent z (what the encoder shares)."""
    d_model: int = 128
    """Width of the dynamics transformer."""
    layers: int = 3
    """Causal transformer layers over the trajectory's steps."""
    heads: int = 4
    """Attention heads."""
    obs_features: list[str] = field(default_factory=lambda: list(DEFAULT_OBS_FEATURES))
    """Dataset observation features encoded (those a task lacks are skipped)."""
    kinematic: bool = True
    """Give each step's token the tool pose that forward kinematics of the robot's MJCF puts at
    the step's joint targets, and each cube's offset from that pose (world and tool frame); the
    tool's dream is then that pose plus a learned residual (how far the arm lags its targets).
    Without it the network must learn the arm's kinematics from data before it can tell a grasp
    that lands from one 2 cm off. Checkpoints from before this option load with it off."""
    text_dim: int = 32
    """Instruction-embedding width, added to the latent (instructed tasks only: on Sort, progress
    and success depend on which cube and pad the instruction names)."""
    text_buckets: int = 4096
    """Hash buckets of the instruction encoder's word and word-pair vocabulary."""
    grounding: bool = True
    """On instructed tasks, also read from the latent which object the instruction names and which
    target it goes to: P(object, target), trained on the demonstrations' outcomes (the cube that
    ended on a pad), so a planner can score dreams by the instructed task's progress. Checkpoints
    from before this option load with it off."""
    pos_scale: float = 10.0
    """Positions enter the loss in units of 1 / pos_scale m (decimetres by default)."""
    loss_weights: dict[str, float] = field(default_factory=lambda: {
        "ee_pos": 1.0, "object_pos": 2.0, "holding": 0.5, "touching": 0.5, "progress": 2.0, "success": 1.0,
        "rank": 10.0, "grounding": 0.5})
    """Weight of each predicted quantity in the training loss; ``rank`` weighs the loss on how
    candidates from the same state differ (oracle-dream groups only), and ``rank_holding`` (off by
    default) adds to that loss which candidates end up holding a cube, relative to its other
    terms: a grasp that lands against one that misses is what a choice most often turns on."""

    def network_mismatch(self, other: WorldModelConfig) -> dict[str, tuple[Any, Any]]:
        """Fields (other than the loss weights) where ``other`` describes a different network:
        name -> (this value, other's value)."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
                if f.name != "loss_weights" and getattr(self, f.name) != getattr(other, f.name)}

    def __post_init__(self) -> None:
        for name in ("n_obs_steps", "horizon", "latent_dim", "d_model", "layers", "heads", "text_dim",
                     "text_buckets"):
            if getattr(self, name) < 1:
                raise ValueError(f"world model {name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if STATE not in self.obs_features or EE_FEATURE not in self.obs_features:
            raise ValueError(f"world model obs_features must include {STATE!r} and {EE_FEATURE!r}")
        if self.pos_scale <= 0:
            raise ValueError(f"pos_scale must be > 0, got {self.pos_scale}")
        unknown = set(self.loss_weights) - set(LOSS_TERMS)
        if unknown or any(w < 0 for w in self.loss_weights.values()):
            raise ValueError(f"loss_weights take non-negative weights for {LOSS_TERMS}; got "
                             f"{self.loss_weights}")


LOSS_TERMS = ("ee_pos", "object_pos", "holding", "touching", "progress", "success", "rank", "grounding",
              "rank_holding")


@dataclass(frozen=True)
class WorldShapes:
    """What a trained world model expects, derived from its data."""

    task: str
    robot: str
    action_dim: int
    obs_dims: dict[str, int]
    """Feature -> flat width, in encoding order."""
    n_objects: int
    uses_instruction: bool = False
    """Whether the task's observations carry an instruction the dreams depend on (Sort)."""
    vocabulary: tuple[str, ...] = ()
    """Every word of the instructions it was trained on (empty: not recorded)."""

    def reads(self, instruction: str) -> bool | None:
        """Whether every word of ``instruction`` was in the training instructions (a reading the
        model can be trusted with); None where the vocabulary was not recorded."""
        if not self.vocabulary:
            return None
        return set(words(instruction)) <= set(self.vocabulary)

    @property
    def n_targets(self) -> int:
        """Targets in the goal vector (3 numbers each)."""
        return self.obs_dims.get(GOAL_FEATURE, 0) // 3

    @property
    def obs_dim(self) -> int:
        return sum(self.obs_dims.values())

    def offset(self, feature: str) -> int:
        """Where ``feature`` starts in the concatenated observation vector."""
        out = 0
        for name, width in self.obs_dims.items():
            if name == feature:
                return out
            out += width
        raise KeyError(feature)

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "robot": self.robot, "action_dim": self.action_dim,
                "obs_dims": dict(self.obs_dims), "n_objects": self.n_objects,
                "uses_instruction": self.uses_instruction, "vocabulary": list(self.vocabulary)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WorldShapes:
        return cls(d["task"], d["robot"], int(d["action_dim"]),
                   {k: int(v) for k, v in d["obs_dims"].items()}, int(d["n_objects"]),
                   bool(d.get("uses_instruction", False)),  # absent: saved before instructions
                   tuple(d.get("vocabulary", ())))  # absent: saved before it was recorded
