"""Dreamers: ``encode(history) -> latent`` and ``dream(latent, trajectories) -> Dreams``.

``learned`` runs the trained world model (or several, their dreams averaged: ``EnsembleDreamer``).
``oracle`` replays every candidate in a copy of the MuJoCo simulation from the exact current
state: the upper bound of choosing by dreams, available in simulation only. ``physics``
(``policy/physics_dreamer.py``) replays them in a MuJoCo model set from the observation alone.
All take the same input and fill the same ``Dreams`` record.

``history`` is the last To observations, oldest first, each a list with one observation dict per
batch row; ``trajectories`` are (B, K, H, A) absolute joint targets from the current step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import mujoco
import numpy as np
import torch

from policy.diffusion.policy import obs_vectors
from policy.dreams import Dreams, History, holding_label, touching_label
from policy.physics_dreamer import PhysicsDreamer, PhysicsDreamerConfig
from sim import keys
from sim.env import ReverieEnv


class Dreamer(Protocol):
    name: str
    horizon: int
    exact: bool
    """Whether its progress and success are the task's own, exactly (the simulator's), so a
    planner should not recompute them from the dreamed positions."""

    def attach(self, envs: list[ReverieEnv]) -> None:
        """The environments being controlled (the oracle copies their state; others ignore it)."""

    def encode(self, history: History, active: np.ndarray | None = None) -> Any:
        """``active`` (B,) bool marks rows still worth dreaming (finished episodes may be skipped)."""

    def dream(self, latent: Any, trajs: np.ndarray) -> Dreams: ...

    def grounding(self, latent: Any) -> np.ndarray | None:
        """(B, objects, targets) P(object, target | instruction) per row, where the dreamer reads
        instructions; else None."""

    def reads(self, instruction: str) -> bool | None:
        """Whether the dreamer's own reading of ``instruction`` can be trusted (every word was in
        its training instructions); None where it does not read instructions or cannot tell."""


class LearnedDreamer:
    """The trained world model behind the Dreamer interface."""

    name = "learned"
    exact = False

    def __init__(self, world_model) -> None:
        self.model = world_model
        self.horizon = world_model.cfg.horizon

    def attach(self, envs: list[ReverieEnv]) -> None:
        del envs

    @torch.no_grad()
    def encode(self, history: History, active: np.ndarray | None = None):
        del active  # batched anyway: skipping rows would not save time
        to, shapes = self.model.cfg.n_obs_steps, self.model.shapes
        frames = [obs_vectors(batch, shapes.obs_dims, f"{shapes.task}/{shapes.robot}") for batch in history]
        frames = [frames[0]] * max(0, to - len(frames)) + frames[-to:]
        dev = self.model.obs_norm.centre.device
        texts = None
        if shapes.uses_instruction:
            missing = [i for i, o in enumerate(history[-1]) if keys.INSTRUCTION not in o]
            if missing:
                raise ValueError(f"a {shapes.task!r} world model needs the instruction in every "
                                 f"observation; rows {missing} have none")
            texts = [str(o[keys.INSTRUCTION]) for o in history[-1]]
        return self.model.encode(torch.as_tensor(np.stack(frames, axis=1), dtype=torch.float32, device=dev),
                                 texts)

    @torch.no_grad()
    def dream(self, latent, trajs: np.ndarray) -> Dreams:
        dev = self.model.obs_norm.centre.device
        return self.model.dream(latent, torch.as_tensor(trajs, dtype=torch.float32, device=dev))

    def grounding(self, latent) -> np.ndarray | None:
        return None if latent.grounding is None else latent.grounding.detach().float().cpu().numpy()

    def reads(self, instruction: str) -> bool | None:
        shapes = self.model.shapes
        return shapes.reads(instruction) if shapes.uses_instruction else None


class EnsembleDreamer:
    """Several trained world models of one task behind the Dreamer interface: each dreams the
    same candidates and the dreams are averaged field by field (positions, and the probabilities
    of holding, touching and success), a deep ensemble whose members' errors partly cancel. The
    members' dreams stay as the mean's ``draws``."""

    name = "learned"
    exact = False

    def __init__(self, world_models: Sequence) -> None:
        if len(world_models) < 2:
            raise ValueError(f"an ensemble needs at least two world models, got {len(world_models)}")
        horizons = sorted({wm.cfg.horizon for wm in world_models})
        if len(horizons) > 1:
            raise ValueError(f"ensembled world models dream different horizons {horizons}; use models "
                             "trained with one world_model.horizon")
        self.members = [LearnedDreamer(wm) for wm in world_models]
        self.horizon = horizons[0]

    def attach(self, envs: list[ReverieEnv]) -> None:
        del envs

    def encode(self, history: History, active: np.ndarray | None = None) -> list[Any]:
        return [m.encode(history, active) for m in self.members]

    def dream(self, latent: list[Any], trajs: np.ndarray) -> Dreams:
        dreams = [m.dream(z, trajs) for m, z in zip(self.members, latent, strict=True)]
        return Dreams.average(dreams)

    def grounding(self, latent: list[Any]) -> np.ndarray | None:
        read = [m.grounding(z) for m, z in zip(self.members, latent, strict=True)]
        return None if any(g is None for g in read) else np.mean(read, axis=0)

    def reads(self, instruction: str) -> bool | None:
        read = [m.reads(instruction) for m in self.members]
        return None if any(r is None for r in read) else all(read)


class OracleDreamer:
    """Replays candidates in a shadow copy of each attached environment (simulation only)."""

    name = "oracle"
    exact = True

    def __init__(self, horizon: int = 16) -> None:
        self.horizon = horizon
        self.envs: list[ReverieEnv] = []
        self._shadow: ReverieEnv | None = None

    def grounding(self, latent) -> None:
        del latent  # the simulator's progress already knows the instructed cube and pad

    def reads(self, instruction: str) -> None:
        del instruction  # see grounding

    def attach(self, envs: list[ReverieEnv]) -> None:
        if not envs:
            raise ValueError("the oracle dreamer needs the simulated environments it should copy")
        first = envs[0]
        if self._shadow is None or (self._shadow.task.name, self._shadow.robot.name) != (
                first.task.name, first.robot.name):
            self._shadow = ReverieEnv(first.task.name, first.robot.name, control_dt=first.control_dt,
                                      sim_dt=first.sim_dt, max_episode_steps=10**9)
        self.envs = envs

    def encode(self, history: History,
               active: np.ndarray | None = None) -> list[tuple[np.ndarray, Any] | None]:
        del history
        if not self.envs:
            raise ValueError("the oracle dreamer is not attached to any environment (simulation only)")
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        snaps = []
        for i, env in enumerate(self.envs):
            if active is not None and not active[i]:
                snaps.append(None)  # not replayed: its dreams stay zero
                continue
            m, d = env.scene.model, env.scene.data
            state = np.empty(mujoco.mj_stateSize(m, spec))
            mujoco.mj_getState(m, d, state, spec)
            snaps.append((state, copy.deepcopy(env.task)))
        return snaps

    def dream(self, latent: list[tuple[np.ndarray, Any] | None], trajs: np.ndarray) -> Dreams:
        b, k, h, _ = trajs.shape
        if len(latent) != b:
            raise ValueError(f"{len(latent)} simulator snapshots for {b} batches of trajectories")
        env = self._shadow
        n = len(env.task.cubes)
        out = {"ee_pos": np.zeros((b, k, h, 3)), "object_pos": np.zeros((b, k, h, n, 3)),
               "progress": np.zeros((b, k, h)), "success": np.zeros((b, k, h))}
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        m, d = env.scene.model, env.scene.data
        for i, snap in enumerate(latent):
            if snap is None:
                continue
            state, task = snap
            env.task = task  # the snapshot's own copy: tasks change only at reset, never in step
            for j in range(k):
                mujoco.mj_setState(m, d, state, spec)
                mujoco.mj_forward(m, d)
                solved = False
                for t in range(h):
                    obs, progress, _, _, info = env.step(trajs[i, j, t])
                    solved = solved or bool(info["success"])
                    out["ee_pos"][i, j, t] = obs[keys.EE_POSE][:3]
                    if n:
                        out["object_pos"][i, j, t] = obs[keys.OBJECT_POSES][:, :3]
                    out["progress"][i, j, t], out["success"][i, j, t] = progress, float(solved)
        cube_half = env.task.ws.cube_half
        return Dreams(ee_pos=out["ee_pos"], object_pos=out["object_pos"],
                      holding=holding_label(out["object_pos"], cube_half),
                      touching=touching_label(out["ee_pos"], out["object_pos"]),
                      progress=out["progress"], success=out["success"])


ON_ROBOT = ("learned", "physics")
"""Dreamers that need nothing but the robot's observations (the oracle copies a running simulation)."""

DREAMERS: dict[str, Callable[..., Dreamer]] = {"learned": LearnedDreamer, "oracle": OracleDreamer,
                                               "physics": PhysicsDreamer}
"""Dreamer name -> constructor (``learned`` takes a world model; ``oracle`` a horizon; ``physics``
the task and robot, a horizon and its mismatch settings)."""


def make_dreamer(name: str, world_model=None, horizon: int = 16, *, task: str | None = None,
                 robot: str | None = None, physics: PhysicsDreamerConfig | None = None) -> Dreamer:
    """``world_model``: one trained model, or a list of them (``learned`` then averages their
    dreams). ``task``, ``robot`` and ``physics``: what ``physics`` builds its simulator of."""
    if name not in DREAMERS:
        raise ValueError(f"unknown dreamer {name!r}; choose one of {', '.join(DREAMERS)}")
    if name == "learned":
        if world_model is None:
            raise ValueError("dreamer=learned needs a trained world model: pass world_model=RUN "
                             "(train one with `reverie train-world-model`), or use dreamer=oracle in "
                             "simulation")
        if isinstance(world_model, list | tuple):
            return EnsembleDreamer(world_model) if len(world_model) > 1 else LearnedDreamer(world_model[0])
        return LearnedDreamer(world_model)
    if name == "physics":
        if task is None or robot is None:
            raise ValueError("dreamer=physics builds its simulator from the task and robot; pass both")
        return PhysicsDreamer(task, robot, horizon, cfg=physics)
    return OracleDreamer(horizon)


def load_dreamer(name: str, policy, world_models: Sequence[str] = (), device: str = "cpu",
                 physics: PhysicsDreamerConfig | None = None) -> Dreamer:
    """``make_dreamer`` for ``policy``'s task and robot: loads the ``world_models`` runs (refusing
    any trained for another task or robot) and dreams over the first one's horizon, or the
    policy's without one."""
    from policy.checkpoint import load_world_model

    task, robot = policy.shapes.task, policy.shapes.robot
    wms = [load_world_model(w, task, robot, device) for w in world_models]
    horizon = wms[0].cfg.horizon if wms else policy.cfg.horizon
    return make_dreamer(name, wms or None, horizon, task=task, robot=robot, physics=physics)

