"""World-model data from the policy's own candidates, labelled by the simulator.

The policy drives seeded episodes (executing its first candidate, as the plain policy would, the
best by its true future, or the learned controller's choice); at every decision all K candidates
are replayed in a copy of the simulation, so each state yields K trajectories with their true
futures: exactly the comparisons a planner has to make, including the bad candidates no
demonstration shows. Going on with the learned controller's choice labels the states its own
mistakes lead to, which neither other way reaches (DAgger's remedy for a learner that drifts
off the states it was trained on).

File: ``dreams.safetensors`` (tensors as in ``DreamTensors``, positions absolute; for instructed
tasks an ``instruction`` index per row) plus ``dreams.json`` (task, robot, features, counts, and
the distinct ``instructions``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from policy.controller import Controller, ControllerConfig, Decision, dream_inputs
from policy.diffusion.policy import DiffusionPolicy, obs_vectors
from policy.diffusion.text import TextTable
from policy.dreamers import LearnedDreamer, OracleDreamer
from policy.planners.base import Choice, PlanQuery
from policy.world_model.config import DEFAULT_OBS_FEATURES, check_execute
from sim import keys
from sim.data.format import DatasetError

if TYPE_CHECKING:
    from policy.evaluation import Displacement

TENSORS, META = "dreams.safetensors", "dreams.json"


class FirstCandidate:
    """Executes candidate 0 (an unbiased draw from the policy): the plain policy's behaviour."""

    name = "first"

    def score(self, query: PlanQuery) -> np.ndarray:
        return np.zeros(len(query.candidates))

    def choose(self, query: PlanQuery) -> Choice:
        return Choice(0, self.score(query), "data collection: first candidate")


class _Recorder:
    def __init__(self, obs_dims: dict[str, int], policy: DiffusionPolicy, label: str,
                 from_audit: bool = False) -> None:
        self.obs_dims, self.policy, self.label = obs_dims, policy, label
        self.from_audit = from_audit
        """Take the true futures from each decision's audit (the dreamer is a learned one)."""
        self.rows: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "action", "ee_pos", "object_pos",
                                                                   "progress", "success", "group")}
        self.groups = 0
        self.waves = 0
        self.instructions = TextTable()
        """Distinct instructions (instructed tasks); rows hold their index under ``instruction``."""

    def __call__(self, decisions: list[Decision]) -> None:
        """One wave's decisions, cycle by cycle; each cycle holds one decision per episode."""
        pc = self.policy.cfg
        for d in decisions:
            if not d.active:  # the episode had ended: nothing was replayed
                continue
            true = d.dreams
            if self.from_audit:
                if d.audit is None:
                    raise ValueError("execute=learned records the auditing oracle's futures, but a "
                                     "decision came without an audit")
                true = d.audit["true"]
            window = obs_vectors(d.observations, self.obs_dims, self.label)
            window = np.concatenate([np.repeat(window[:1], pc.n_obs_steps - len(window), 0), window])
            futures = dream_inputs(d.candidates, pc.n_obs_steps, true["progress"].shape[1])
            k = len(futures)
            self.rows["obs"].append(np.repeat(window[None], k, 0))
            self.rows["action"].append(futures)
            for key in ("ee_pos", "object_pos", "progress", "success"):
                self.rows[key].append(true[key])
            self.rows["group"].append(np.full(k, self.waves * 10_000 + d.row))
            if (text := d.observations[-1].get(keys.INSTRUCTION)) is not None:
                (i,) = self.instructions.ids([str(text)])
                self.rows.setdefault("instruction", []).append(np.full(k, i))
            self.groups += 1
        self.waves += 1

    def arrays(self) -> dict[str, torch.Tensor]:
        ints = ("group", "instruction")
        return {k: torch.from_numpy(np.concatenate(v).astype(np.int64 if k in ints else np.float32))
                for k, v in self.rows.items()}


def collect_oracle_dreams(policy: DiffusionPolicy, out: str | Path, episodes: int, seed: int, k: int = 16,
                          batch: int = 25, progress: bool = True, displace: Displacement | None = None,
                          execute: str = "first", world_model: str | Path | None = None) -> dict[str, Any]:
    """Run ``episodes`` policy episodes from ``seed``, recording every decision's K true futures;
    ``displace`` moves the cube mid-episode, so the futures include plans gone stale. ``execute``:
    go on with candidate 0 (``first``, the plain policy), the best by the ``value`` planner on
    the true futures (``best``, the states a well-choosing controller reaches) or the ``value``
    planner's choice on the dreams of the world model at ``world_model`` (``learned``, the states
    the learned controller reaches; the simulator then replays every candidate as an audit)."""
    from policy.evaluation import evaluate
    from policy.planners.registry import make_planner

    out = Path(out)
    obs_dims = {f: w for f, w in policy.shapes.obs_dims.items() if f in DEFAULT_OBS_FEATURES}
    check_execute(execute, world_model)
    recorder = _Recorder(obs_dims, policy, f"{policy.shapes.task}/{policy.shapes.robot}",
                         from_audit=world_model is not None)
    oracle = OracleDreamer(policy.cfg.horizon)
    if world_model is not None:
        from policy.checkpoint import load_world_model

        wm = load_world_model(world_model, policy.shapes.task, policy.shapes.robot,
                               policy.obs_norm.centre.device)
        controller = Controller(policy, LearnedDreamer(wm), make_planner("value"), ControllerConfig(k=k),
                                audit=oracle)
    else:
        chooser = FirstCandidate() if execute == "first" else make_planner("value")
        controller = Controller(policy, oracle, chooser, ControllerConfig(k=k))
    result = evaluate(policy, episodes, seed, batch=batch, progress=progress, controller=controller,
                      on_decisions=recorder, displace=displace)
    tensors = recorder.arrays()
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out / TENSORS)
    meta = {"task": policy.shapes.task, "robot": policy.shapes.robot, "obs_dims": obs_dims,
            "n_obs_steps": policy.cfg.n_obs_steps, "decisions": recorder.groups,
            "trajectories": int(tensors["action"].shape[0]), "k": k, "episodes": episodes, "seed": seed,
            "policy_success_rate": result["success_rate"], "instructions": recorder.instructions.texts,
            "displace": dataclasses.asdict(displace) if displace else None, "execute": execute,
            "world_model": None if world_model is None else str(world_model)}
    (out / META).write_text(json.dumps(meta, indent=2))
    return {"out": str(out), **meta, "seconds": result["seconds"]}


def load_oracle_dreams(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(metadata, tensors) of a ``collect_oracle_dreams`` directory, with a clear error if broken."""
    path = Path(path)
    try:
        meta = json.loads((path / META).read_text())
        tensors = load_file(path / TENSORS)
    except FileNotFoundError:
        raise DatasetError(f"{path} holds no oracle dreams ({META} and {TENSORS}); make them with "
                           "`reverie collect-dreams checkpoint=RUN out=DIR`") from None
    except (json.JSONDecodeError, OSError, ValueError) as e:
        raise DatasetError(f"{path} holds corrupt oracle dreams: {e}") from None
    return meta, tensors
