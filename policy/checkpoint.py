"""Checkpoints: safetensors for tensors, JSON for everything else, sha256 to refuse tampering.

```
RUN/checkpoints/LATEST                    name of the newest step directory
RUN/checkpoints/step-000500/
    checkpoint.json                       format, policy config, shapes, step, file hashes, state
    model.safetensors                     EMA weights and normalisation stats (what is evaluated)
    train_state.safetensors               raw weights, optimiser moments, RNG (to resume)
```
Nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from policy.diffusion.config import DiffusionConfig, PolicyShapes
from policy.diffusion.policy import DiffusionPolicy

FORMAT = "reverie-diffusion-policy/1"
WORLD_MODEL_FORMAT = "reverie-world-model/1"
META, MODEL, TRAIN_STATE, LATEST = "checkpoint.json", "model.safetensors", "train_state.safetensors", "LATEST"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, tampered with, or does not fit what it is used for."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def step_dir(run: str | Path, step: int) -> Path:
    return Path(run) / "checkpoints" / f"step-{step:07d}"


def save(run: str | Path, step: int, ema_policy: DiffusionPolicy, train_tensors: dict[str, torch.Tensor],
         train_json: dict[str, Any], keep_last: int = 3) -> Path:
    """Write one policy checkpoint atomically (a temporary directory renamed into place)."""
    description = {"format": FORMAT, "policy": dataclasses.asdict(ema_policy.cfg),
                   "shapes": ema_policy.shapes.to_json()}
    if ema_policy.world_encoder is not None:  # conditioned on a world model's latent
        enc = ema_policy.world_encoder
        description["world_encoder"] = {"world_model": dataclasses.asdict(enc.cfg),
                                        "shapes": enc.shapes.to_json()}
    return save_model(run, step, ema_policy, train_tensors, train_json, description, keep_last)


def save_model(run: str | Path, step: int, model: torch.nn.Module, train_tensors: dict[str, torch.Tensor],
               train_json: dict[str, Any], description: dict[str, Any], keep_last: int = 3) -> Path:
    """Write one checkpoint of any model; ``description`` (with its ``format``) goes into the JSON."""
    final = step_dir(run, step)
    tmp = final.with_name(final.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp / MODEL)
    save_file({k: v.detach().cpu().contiguous() for k, v in train_tensors.items()}, tmp / TRAIN_STATE)
    meta = {**description, "step": step, "train": train_json,
            "sha256": {MODEL: _sha256(tmp / MODEL), TRAIN_STATE: _sha256(tmp / TRAIN_STATE)}}
    (tmp / META).write_text(json.dumps(meta, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    (final.parent / LATEST).write_text(final.name + "\n")
    for old in sorted(final.parent.glob("step-*[0-9]"))[:-keep_last]:
        shutil.rmtree(old)
    return final


def resolve(path: str | Path) -> Path:
    """A run directory, its checkpoints/ directory, or one step directory -> the step directory."""
    p = Path(path)
    if (p / META).exists():
        return p
    for base in (p / "checkpoints", p):
        if (base / LATEST).exists():
            return base / (base / LATEST).read_text().strip()
    if not p.exists():
        raise CheckpointError(f"no checkpoint at {p}: the path does not exist "
                              "(train one with `reverie train data=DIR out=RUN`)")
    raise CheckpointError(f"{p} holds no checkpoint (no {META} and no checkpoints/{LATEST})")


def read_meta(ckpt: Path, fmt: str = FORMAT) -> dict[str, Any]:
    try:
        meta = json.loads((ckpt / META).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{ckpt / META} is missing; the checkpoint is incomplete") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{ckpt / META} is not valid JSON ({e}); the checkpoint is corrupt") from None
    if meta.get("format") != fmt:
        raise CheckpointError(f"{ckpt} has format {meta.get('format')!r}, expected {fmt!r}"
                              + (" (a world model where a policy was expected, or the reverse?)"
                                 if meta.get("format") in (FORMAT, WORLD_MODEL_FORMAT) else ""))
    return meta


def load_tensors(ckpt: Path, name: str, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Load one safetensors file after checking it against the hash recorded at save time."""
    path = ckpt / name
    if not path.exists():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete")
    expected = meta.get("sha256", {}).get(name)
    if expected is None or _sha256(path) != expected:
        raise CheckpointError(f"{path} does not match the sha256 recorded in {META}: it was modified "
                              "or corrupted after saving; refusing to load it")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


def _check_trained_for(ckpt: Path, shapes, task: str | None, robot: str | None, what: str,
                       fix: str) -> None:
    """Refuse a checkpoint trained for another task or robot; ``fix`` (with {name}, {have},
    {want}) says what to do instead."""
    for name, want, have in (("task", task, shapes.task), ("robot", robot, shapes.robot)):
        if want is not None and want != have:
            raise CheckpointError(f"{what} {ckpt} was trained for {name} {have!r}, not {want!r}; "
                                  + fix.format(name=name, have=have, want=want))


def _load_weights(model: torch.nn.Module, ckpt: Path, meta: dict[str, Any]) -> None:
    """Load the checked weights file into ``model``, refusing one that does not fit it."""
    state = load_tensors(ckpt, MODEL, meta)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{ckpt / MODEL} does not fit the model its {META} describes: "
                              f"{str(e).splitlines()[0]}") from None


LEGACY_POLICY_DEFAULTS = {"prefix_conditioning": False}
"""Settings a checkpoint written before they existed was trained without."""


def policy_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """The policy settings of a checkpoint's metadata, older checkpoints' gaps filled in."""
    return {**LEGACY_POLICY_DEFAULTS, **meta["policy"]}


def load_policy(path: str | Path, task: str | None = None, robot: str | None = None,
                device: str | torch.device = "cpu") -> DiffusionPolicy:
    """The EMA policy of a checkpoint, in eval mode. ``task``/``robot`` must match its training."""
    ckpt = resolve(path)
    meta = read_meta(ckpt)
    try:
        cfg = DiffusionConfig(**policy_settings(meta))
        shapes = PolicyShapes.from_json(meta["shapes"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{ckpt / META} holds an invalid policy description: {e}") from None
    _check_trained_for(ckpt, shapes, task, robot, "checkpoint",
                       "evaluate it with {name}={have} or train one for {want}")
    zeros_o, zeros_a = np.zeros(shapes.obs_dim), np.zeros(shapes.action_dim)
    policy = DiffusionPolicy(cfg, shapes, zeros_o, zeros_o, zeros_a, zeros_a, _world_encoder(ckpt, meta))
    _load_weights(policy, ckpt, meta)
    return policy.to(device).eval()


def load_world_model(path: str | Path, task: str | None = None, robot: str | None = None,
                     device: str | torch.device = "cpu"):
    """A trained world model, in eval mode. ``task``/``robot`` must match its training."""
    from policy.world_model.config import WorldModelConfig, WorldShapes
    from policy.world_model.model import WorldModel

    ckpt = resolve(path)
    meta = read_meta(ckpt, WORLD_MODEL_FORMAT)
    try:
        # models saved before kinematic tokens and the grounding head existed were trained without them
        cfg = WorldModelConfig(**{"kinematic": False, "grounding": False, **meta["world_model"]})
        shapes = WorldShapes.from_json(meta["shapes"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{ckpt / META} holds an invalid world-model description: {e}") from None
    _check_trained_for(ckpt, shapes, task, robot, "world model",
                       "train one with `reverie train-world-model` on {want} data")
    zeros_o, zeros_a = np.zeros(shapes.obs_dim), np.zeros(shapes.action_dim)
    model = WorldModel(cfg, shapes, zeros_o, zeros_o, zeros_a, zeros_a)
    _load_weights(model, ckpt, meta)
    return model.to(device).eval()


def _world_encoder(ckpt: Path, meta: dict[str, Any]):
    """The frozen world-model encoder a policy checkpoint carries, if it was trained with one."""
    if "world_encoder" not in meta:
        return None
    from policy.world_model.config import WorldModelConfig, WorldShapes
    from policy.world_model.model import WorldEncoder

    try:
        d = meta["world_encoder"]
        return WorldEncoder(WorldModelConfig(**d["world_model"]), WorldShapes.from_json(d["shapes"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{ckpt / META} holds an invalid world-encoder description: {e}") from None
