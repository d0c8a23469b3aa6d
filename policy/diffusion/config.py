"""Diffusion policy settings (checked on construction) and the shapes derived from a dataset.

Timeline for the defaults (To = n_obs_steps = 2, H = horizon = 16, Ta = n_action_steps = 8):

```
step:        t-1  t   t+1 ... t+7  t+8 ... t+14
observation   o   o
trajectory    a   a   a   ...  a    a  ...  a      (H actions, the first To-1 already in the past)
executed          |------ Ta ------|
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.data.format import STATE

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
"""torch.compile modes ``DiffusionPolicy.compile_denoiser`` accepts."""
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
"""The modes that replay the compiled denoiser as CUDA graphs."""


def check_compile_mode(mode: str) -> None:
    """Refuse a mode ``DiffusionPolicy.compile_denoiser`` does not take, naming the ones it does."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")


def check_compile_device(mode: str, device: str) -> None:
    """Refuse a CUDA graph mode on a device without CUDA graphs."""
    if mode in CUDA_GRAPH_MODES and not device.startswith("cuda"):
        raise ValueError(f"compile mode {mode!r} replays CUDA graphs and needs device=cuda (got "
                         f"{device!r}); on a CPU use compile_mode=default")

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"down_dims": [32, 64, 128], "step_embed_dim": 32},
    "small": {"down_dims": [64, 128, 256], "step_embed_dim": 64},
    "medium": {"down_dims": [128, 256, 512], "step_embed_dim": 128},
    "base": {"down_dims": [256, 512, 1024], "step_embed_dim": 256},
    "large": {"down_dims": [512, 1024, 2048], "step_embed_dim": 256},
}
"""Denoiser sizes (1.2 M, 4.2 M, 17 M, 66 M, 254 M parameters): ``tiny`` is the CPU default
(K=16 candidates with 10 DDIM steps in under 100 ms on 2 cores), ``base`` is Chi et al.'s state
U-Net, ``large`` is for a GPU."""

SCHEDULERS = ("ddim", "dpmsolver++", "ddpm")
PREDICTION_TYPES = ("epsilon", "sample")
DEFAULT_OBS_FEATURES = [STATE, "observation.ee_pose", "observation.object_poses", "observation.goal"]


@dataclass
class DiffusionConfig:
    """The policy: horizons, denoiser size, noise schedule and the inference slider."""

    n_obs_steps: int = 2
    """Observations the policy conditions on (To)."""
    horizon: int = 16
    """Actions in a predicted trajectory (H)."""
    n_action_steps: int = 8
    """Actions executed from each trajectory before predicting again (Ta)."""
    preset: str = "tiny"
    """Denoiser size: tiny, small, base or large (see PRESETS)."""
    down_dims: list[int] | None = None
    """U-Net channel widths per level; overrides the preset's."""
    step_embed_dim: int | None = None
    """Width of the diffusion-step embedding; overrides the preset's."""
    kernel_size: int = 5
    """Temporal convolution kernel."""
    n_groups: int = 8
    """GroupNorm groups."""
    obs_features: list[str] = field(default_factory=lambda: list(DEFAULT_OBS_FEATURES))
    """Dataset observation features the policy conditions on (those a task lacks are skipped)."""
    text_dim: int = 32
    """Instruction-embedding width (tasks with instructions only)."""
    text_buckets: int = 4096
    """Hash buckets of the instruction encoder's word and word-pair vocabulary."""
    num_train_timesteps: int = 100
    """DDPM noise levels used in training."""
    beta_schedule: str = "squaredcos_cap_v2"
    """diffusers beta schedule."""
    prediction_type: str = "epsilon"
    """What the denoiser predicts: epsilon (noise) or sample (the clean trajectory)."""
    scheduler: str = "ddim"
    """Inference sampler: ddim, dpmsolver++ or ddpm."""
    num_inference_steps: int = 10
    """Denoising steps at inference: the quality/speed slider."""
    inpaint_past: bool = True
    """Hold the trajectory's first To-1 steps to the actions already sent (smooth chunk joins)."""
    cond_mlp: list[int] = field(default_factory=list)
    """Widths of an MLP (Linear -> Mish per layer) over the whole conditioning (observation window,
    instruction embedding, world-model latent) before it reaches the U-Net's FiLM layers; empty
    feeds it straight in, as Chi et al. do. FiLM is linear in the conditioning; the MLP lets an
    instruction and an object's pose interact before it. It did not rescue Sort (BENCHMARKS.md)."""
    prefix_conditioning: bool = True
    """Train the denoiser to continue a known clean prefix (training-time real-time chunking):
    it sees a per-step "known" channel, the known steps clean and the rest noised, and is scored on
    the rest only. Inpainting then feeds the known steps in clean. On by default: on Push (one
    wrist branch) it kept in-process success at 0.86-0.88 with chunks planned 0-5 steps early
    (`eval lead=`), where the policy trained without it fell from 0.89 to 0.79, and through the
    node with 200 ms of delay it scored 0.70 against 0.15-0.30 (BENCHMARKS.md)."""
    prefix_max: int | None = None
    """The longest known prefix drawn in training (steps of the trajectory, past included);
    default horizon // 2."""
    prefix_prob: float = 0.75
    """The share of training windows that get a known prefix (1 to prefix_max steps)."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.n_obs_steps < 1:
            raise ValueError(f"n_obs_steps must be >= 1, got {self.n_obs_steps}")
        if not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            raise ValueError(f"n_action_steps must lie in [1, horizon - n_obs_steps + 1] = "
                             f"[1, {self.horizon - self.n_obs_steps + 1}], got {self.n_action_steps}")
        dims = self.dims
        if not dims or any(d < 1 or d % self.n_groups for d in dims):
            raise ValueError(f"down_dims must be non-empty multiples of n_groups={self.n_groups}, "
                             f"got {dims}")
        factor = 2 ** (len(dims) - 1)
        if self.horizon % factor:
            raise ValueError(f"horizon ({self.horizon}) must be divisible by 2**(len(down_dims)-1) = "
                             f"{factor}; use a horizon like {factor * max(1, self.horizon // factor)}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {self.kernel_size}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, "
                             f"got {self.prediction_type!r}")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ValueError(f"num_inference_steps must lie in [1, num_train_timesteps="
                             f"{self.num_train_timesteps}], got {self.num_inference_steps}")
        if STATE not in self.obs_features:
            raise ValueError(f"obs_features must include {STATE!r} (the arm's own state)")
        if any(w < 1 for w in self.cond_mlp):
            raise ValueError(f"cond_mlp widths must be >= 1, got {self.cond_mlp}")
        if self.prefix_max is not None and not 1 <= self.prefix_max < self.horizon:
            raise ValueError(f"prefix_max must lie in [1, horizon - 1] = [1, {self.horizon - 1}], "
                             f"got {self.prefix_max}")
        if not 0 <= self.prefix_prob <= 1:
            raise ValueError(f"prefix_prob must lie in [0, 1], got {self.prefix_prob}")
        if self.text_dim < 1 or self.text_buckets < 1:
            raise ValueError("text_dim and text_buckets must be >= 1")

    @property
    def max_known_prefix(self) -> int:
        return self.prefix_max or max(1, self.horizon // 2)

    @property
    def dims(self) -> list[int]:
        return list(self.down_dims or PRESETS[self.preset]["down_dims"])

    @property
    def embed_dim(self) -> int:
        return int(self.step_embed_dim or PRESETS[self.preset]["step_embed_dim"])


@dataclass(frozen=True)
class PolicyShapes:
    """What a trained policy expects, derived from its dataset (never written into the config)."""

    task: str
    robot: str
    action_dim: int
    obs_dims: dict[str, int]
    """Feature -> flat width, in conditioning order."""
    uses_instruction: bool

    @property
    def obs_dim(self) -> int:
        return sum(self.obs_dims.values())

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "robot": self.robot, "action_dim": self.action_dim,
                "obs_dims": dict(self.obs_dims), "uses_instruction": self.uses_instruction}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PolicyShapes:
        return cls(d["task"], d["robot"], int(d["action_dim"]),
                   {k: int(v) for k, v in d["obs_dims"].items()}, bool(d["uses_instruction"]))
