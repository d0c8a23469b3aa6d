"""DiffusionPolicy: observation encoding, the denoising loss, and acting with an action queue.

Acting (To = 2, Ta = 8, H = 16); ``select_action`` is called once per control step:

```
call:      0   1   2  ...  7   8   9 ...
history    o0  o1  o2 ...  o7  o8  o9       last To observations (the first is repeated To times)
sampling   *                   *             a new trajectory when the queue is empty
sent       a0  a1  a2 ...  a7  a8  a9       trajectory[To-1 : To-1+Ta], then the next one
```

With ``inpaint_past`` each new trajectory's first To-1 steps are held to the actions actually
sent, so consecutive chunks join without a jump.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from policy.diffusion.config import CUDA_GRAPH_MODES, DiffusionConfig, PolicyShapes, check_compile_mode
from policy.diffusion.normalize import obs_action_normalizers
from policy.diffusion.sampler import Sampler
from policy.diffusion.text import HashedTextEncoder
from policy.diffusion.unet import ConditionalUnet1D
from sim import keys
from sim.data.format import frame_from_obs

Observation = dict[str, Any]


def obs_vectors(batch: list[Observation], obs_dims: dict[str, int], trained_on: str) -> np.ndarray:
    """Observation dicts -> (B, sum(obs_dims)) vectors of the named dataset features, checked."""
    try:
        frames = [frame_from_obs(o) for o in batch]
    except KeyError as e:
        raise ValueError(f"observation lacks {e.args[0]!r}; pass the environment's or robot's "
                         "observation dict") from None
    missing = [f for f in obs_dims if f not in frames[0]]
    if missing:
        raise ValueError(f"observation lacks {missing}; this model was trained on {trained_on}")
    vec = np.stack([np.concatenate([fr[f] for f in obs_dims]) for fr in frames])
    if vec.shape[1] != sum(obs_dims.values()):
        raise ValueError(f"observation has {vec.shape[1]} state values, the model expects "
                         f"{sum(obs_dims.values())} ({trained_on})")
    if not np.all(np.isfinite(vec)):
        raise ValueError("observation contains NaN or inf; refusing to act on it")
    return vec



class DiffusionPolicy(nn.Module):
    """Denoises (H, A) joint trajectories conditioned on the last To observations.

    ``obs_low/high`` (obs_dim,) and ``action_low/high`` (A,) are the dataset's min and max.
    """

    def __init__(self, cfg: DiffusionConfig, shapes: PolicyShapes, obs_low: np.ndarray,
                 obs_high: np.ndarray, action_low: np.ndarray, action_high: np.ndarray,
                 world_encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg, self.shapes = cfg, shapes
        self.obs_norm, self.action_norm = obs_action_normalizers(
            obs_low, obs_high, action_low, action_high, shapes.obs_dim, shapes.action_dim)
        self.text = HashedTextEncoder(cfg.text_dim, cfg.text_buckets) if shapes.uses_instruction else None
        self.world_encoder = world_encoder
        if world_encoder is not None and (dict(world_encoder.shapes.obs_dims) != dict(shapes.obs_dims)
                                          or world_encoder.cfg.n_obs_steps != cfg.n_obs_steps):
            raise ValueError(f"the world model encodes {world_encoder.shapes.obs_dims} x "
                             f"{world_encoder.cfg.n_obs_steps} observations, the policy "
                             f"{shapes.obs_dims} x {cfg.n_obs_steps}; they must match to share it")
        latent = world_encoder.cfg.latent_dim if world_encoder is not None else 0
        cond_dim = cfg.n_obs_steps * shapes.obs_dim + (cfg.text_dim if self.text else 0) + latent
        layers: list[nn.Module] = []
        for width in cfg.cond_mlp:
            layers += [nn.Linear(cond_dim, width), nn.Mish()]
            cond_dim = width
        self.cond_mlp = nn.Sequential(*layers) if layers else None
        self.denoiser = ConditionalUnet1D(shapes.action_dim, cond_dim, cfg.dims, cfg.embed_dim,
                                          cfg.kernel_size, cfg.n_groups, cfg.prefix_conditioning)
        self.sampler = Sampler(cfg, self.denoiser, shapes.action_dim)
        self.reset()

    # ---- learning --------------------------------------------------------------------------
    def encode(self, obs: Tensor, instructions: list[str] | None = None) -> Tensor:
        """Raw observation windows (B, To, obs_dim) -> conditioning (B, C)."""
        b = obs.shape[0]
        if obs.shape[1:] != (self.cfg.n_obs_steps, self.shapes.obs_dim):
            raise ValueError(f"observation window must be (B, {self.cfg.n_obs_steps}, "
                             f"{self.shapes.obs_dim}), got {tuple(obs.shape)}")
        cond = self.obs_norm.normalize(obs).reshape(b, -1)
        if self.world_encoder is not None:
            cond = torch.cat([cond, self.world_encoder(obs)], dim=-1)
        if self.text is not None:
            if instructions is None or len(instructions) != b:
                raise ValueError(f"task {self.shapes.task!r} needs one instruction per observation")
            cond = torch.cat([cond, self.text(instructions)], dim=-1)
        return cond if self.cond_mlp is None else self.cond_mlp(cond)

    def compute_loss(self, obs: Tensor, action: Tensor, instructions: list[str] | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
        """Denoising loss of raw obs windows (B, To, D) and action windows (B, H, A).

        With ``prefix_conditioning`` a share ``prefix_prob`` of the windows get a known prefix of 1
        to ``prefix_max`` steps: given clean and flagged, and left out of the loss."""
        cond = self.encode(obs, instructions)
        x0 = self.action_norm.normalize(action)
        b, h, dev = x0.shape[0], x0.shape[1], x0.device
        noise = torch.randn(x0.shape, generator=generator, device=dev)
        t = torch.randint(0, self.cfg.num_train_timesteps, (b,), generator=generator, device=dev)
        x = self.sampler.add_noise(x0, noise, t)
        target = noise if self.cfg.prediction_type == "epsilon" else x0
        if not self.cfg.prefix_conditioning:
            return nn.functional.mse_loss(self.denoiser(x, t, cond), target)
        known = self.draw_prefixes(b, h, dev, generator)
        x = torch.where(known[..., None], x0, x)
        err = (self.denoiser(x, t, cond, known) - target) ** 2
        free = (~known)[..., None].to(err.dtype)
        return (err * free).sum() / (free.sum() * err.shape[-1]).clamp_min(1)

    def draw_prefixes(self, b: int, h: int, device: torch.device | str,
                      generator: torch.Generator | None = None) -> Tensor:
        """(B, H) bool masks of known prefixes for training: none with probability
        1 - prefix_prob, else 1 to max_known_prefix steps, uniformly."""
        length = torch.randint(1, self.cfg.max_known_prefix + 1, (b,), generator=generator, device=device)
        used = torch.rand(b, generator=generator, device=device) < self.cfg.prefix_prob
        return torch.arange(h, device=device)[None] < (length * used)[:, None]

    def forward(self, obs: Tensor, action: Tensor, instructions: list[str] | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """The training loss (so DistributedDataParallel can wrap the policy)."""
        return self.compute_loss(obs, action, instructions, generator)

    # ---- sampling --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, obs: Tensor, instructions: list[str] | None = None, k: int = 1, *,
               known: Tensor | None = None, keep: Tensor | None = None, strength: float = 1.0,
               steps: int | None = None, generator: torch.Generator | None = None,
               guidance: float = 0.0) -> Tensor:
        """K raw trajectories per observation window: (B, To, D) -> (B, k, H, A).

        ``known`` (B, H, A) raw, with ``keep`` (H,) or (B, H), inpaints (see ``Sampler``).
        """
        cond = self.encode(obs, instructions)
        known_n = None if known is None else self.action_norm.normalize(known.to(cond.device))
        traj = self.sampler.sample(cond, k, known=known_n, keep=keep, strength=strength, steps=steps,
                                   generator=generator, guidance=guidance)
        return self.action_norm.unnormalize(traj)

    def compile_denoiser(self, mode: str = "default") -> None:
        """torch.compile the denoiser for inference (one compiled graph per batch shape).

        ``mode`` is torch.compile's: ``default`` fuses kernels; ``reduce-overhead`` also replays
        each step as a CUDA graph, which removes the per-kernel launch cost that bounds a small
        denoiser on a GPU. Each replay overwrites the last one's output buffers, so the output is
        copied out before the next step reuses them.
        """
        check_compile_mode(mode)
        compiled = torch.compile(self.denoiser.forward, mode=mode, dynamic=False)
        if mode in CUDA_GRAPH_MODES:
            def forward(*args: Any, **kwargs: Any) -> Tensor:
                torch.compiler.cudagraph_mark_step_begin()
                return compiled(*args, **kwargs).clone()
            self.denoiser.forward = forward
        else:
            self.denoiser.forward = compiled

    # ---- acting ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget observation history, queued actions and sent actions (call per episode)."""
        self._history: deque[np.ndarray] = deque(maxlen=self.cfg.n_obs_steps)
        self._sent: deque[np.ndarray] = deque(maxlen=max(self.cfg.n_obs_steps - 1, 1))
        self._queue: deque[np.ndarray] = deque()
        self._instructions: list[str] | None = None

    def observe(self, obs: Observation | list[Observation]) -> None:
        """Append one observation (or one per batch row) to the history."""
        batch = [obs] if isinstance(obs, dict) else list(obs)
        vec = obs_vectors(batch, self.shapes.obs_dims, f"{self.shapes.task}/{self.shapes.robot}")
        if self._history and self._history[-1].shape != vec.shape:
            raise ValueError("batch size changed mid-episode; call reset() between episodes")
        if not self._history:  # fill the window with the first observation
            self._history.extend([vec] * self.cfg.n_obs_steps)
        else:
            self._history.append(vec)
        if self.shapes.uses_instruction:
            if any(keys.INSTRUCTION not in o for o in batch):
                raise ValueError(f"a {self.shapes.task!r} policy needs the instruction in every "
                                 f"observation (key {keys.INSTRUCTION!r})")
            self._instructions = [str(o[keys.INSTRUCTION]) for o in batch]

    @property
    def instructions(self) -> list[str] | None:
        """The current instruction per batch row (instructed tasks), from the last observation."""
        return self._instructions

    def observation_window(self) -> Tensor:
        """The history as (B, To, obs_dim)."""
        dev = self.obs_norm.centre.device
        return torch.as_tensor(np.stack(list(self._history), axis=1), dtype=torch.float32, device=dev)

    def candidates(self, k: int = 1, **sample_kw: Any) -> Tensor:
        """K raw trajectories (B, k, H, A) from the history; with ``inpaint_past`` their first
        To-1 steps are held to the actions already sent."""
        if not self._history:
            raise ValueError("no observation yet: call observe() (or pass one to predict_action_chunk)")
        window = self.observation_window()
        past = self._past()
        if self.cfg.inpaint_past and past is not None and "known" not in sample_kw:
            known, keep = self.known_prefix(past, None)
            sample_kw = {**sample_kw, "known": known, "keep": keep}
        return self.sample(window, self._instructions, k, **sample_kw)

    def _past(self) -> np.ndarray | None:
        """The (B, To-1, A) actions sent before the newest observation, once there are To-1 of them
        (None before, and with To = 1)."""
        to = self.cfg.n_obs_steps
        return np.stack(list(self._sent), axis=1) if to > 1 and len(self._sent) == to - 1 else None

    def known_prefix(self, past: np.ndarray | None,
                     committed: np.ndarray | None) -> tuple[Tensor | None, Tensor | None]:
        """The known trajectory (B, H, A) and keep mask (H,) that hold a new trajectory to the
        actions sent before the newest observation (``past``, (B, p, A) or (p, A), oldest first;
        the last To-1 are used) and to those that will execute from it on (``committed``, (B, d, A)
        or (d, A)); (None, None) when there are none."""
        to, h, a_dim = self.cfg.n_obs_steps, self.cfg.horizon, self.shapes.action_dim

        def rows(x: np.ndarray | None) -> np.ndarray:
            x = np.zeros((0, a_dim)) if x is None else np.asarray(x, dtype=np.float32)
            return x.reshape(1, -1, a_dim) if x.ndim <= 2 else x.reshape(x.shape[0], -1, a_dim)

        past, committed = rows(past), rows(committed)
        past = past[:, max(past.shape[1] - (to - 1), 0):] if to > 1 else past[:, :0]
        p, d = past.shape[1], committed.shape[1]
        if to - 1 + d > h:
            raise ValueError(f"{d} committed steps do not fit in a horizon of {h} after {to - 1} past ones")
        b = max(len(past), len(committed))
        dev = self.obs_norm.centre.device
        known = torch.zeros(b, h, a_dim, device=dev)
        keep = torch.zeros(h, dtype=torch.bool, device=dev)
        if p:
            known[:, to - 1 - p: to - 1] = torch.as_tensor(past, device=dev)
            keep[to - 1 - p: to - 1] = True
        if d:
            known[:, to - 1: to - 1 + d] = torch.as_tensor(committed, device=dev)
            keep[to - 1: to - 1 + d] = True
        return (known, keep) if keep.any() else (None, None)

    def chunk_of(self, traj: Tensor | np.ndarray) -> np.ndarray:
        """The Ta steps to execute from trajectories (..., H, A): steps To-1 .. To-1+Ta-1."""
        to = self.cfg.n_obs_steps
        chunk = traj[..., to - 1: to - 1 + self.cfg.n_action_steps, :]
        return chunk.cpu().numpy() if isinstance(chunk, Tensor) else np.asarray(chunk)

    def predict_action_chunk(self, obs: Observation | list[Observation] | None = None,
                             **sample_kw: Any) -> np.ndarray:
        """The next Ta actions (B, Ta, A) from the history (after adding ``obs`` if given)."""
        if obs is not None:
            self.observe(obs)
        return self.chunk_of(self.candidates(1, **sample_kw)[:, 0])

    def _chunk_after_queue(self, **sample_kw: Any) -> np.ndarray:
        """The (B, <=Ta, A) actions after those queued, which the new trajectory holds fixed."""
        committed = np.stack(list(self._queue), axis=1)
        known, keep = self.known_prefix(self._past(), committed)
        traj = self.candidates(1, known=known, keep=keep, **sample_kw)[:, 0]
        first = self.cfg.n_obs_steps - 1 + committed.shape[1]
        return traj[:, first: first + self.cfg.n_action_steps].cpu().numpy()

    def record_sent(self, action: np.ndarray) -> None:
        """Remember an action (B, A) that was sent, for ``inpaint_past``."""
        self._sent.append(action)

    def select_action(self, obs: Observation | list[Observation], lead: int = 0,
                      **sample_kw: Any) -> np.ndarray:
        """One action per call: (A,) for one observation dict, (B, A) for a list of them.

        ``lead`` > 0 plans each chunk that many steps before it takes over, as the deployment node
        does while inference runs: from the observation then, holding the ``lead`` queued actions
        that execute meanwhile (committed) and returning the Ta after them. It must be below Ta:
        the queue is refilled when ``lead`` actions are left in it, and holds at most Ta - 1 after
        the first chunk's first action."""
        if not 0 <= lead < self.cfg.n_action_steps:
            raise ValueError(f"lead must lie in [0, {self.cfg.n_action_steps - 1}] (n_action_steps - 1), "
                             f"got {lead}")
        self.observe(obs)
        if not self._queue:
            self._queue.extend(self.predict_action_chunk(**sample_kw).transpose(1, 0, 2))
        elif len(self._queue) == lead:
            self._queue.extend(self._chunk_after_queue(**sample_kw).transpose(1, 0, 2))
        action = self._queue.popleft()
        self.record_sent(action)
        return action[0] if isinstance(obs, dict) else action
