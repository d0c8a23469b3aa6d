"""Training the world model: AdamW with warm-up + cosine (paced by steps or minutes), a held-out
set of whole episodes, and dream error at steps 4, 8 and 16 on it, written to metrics.jsonl."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from policy import checkpoint
from policy.training.loop import lr_at
from policy.world_model.data import INSTRUCTIONS, DreamTensors, to_device
from policy.world_model.model import WorldModel
from sim.data.reader import DemoDataset

METRICS = "metrics.jsonl"
REPORT_STEPS = (4, 8, 16)
"""Dream steps at which position errors are reported."""


def split_episodes(episode: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of training and held-out examples, holding out ``fraction`` of whole episodes."""
    ids = torch.unique(episode)
    n_val = round(len(ids) * fraction)
    perm = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    held = torch.isin(episode, perm[:n_val])
    return torch.nonzero(~held).squeeze(1), torch.nonzero(held).squeeze(1)


@torch.no_grad()
def dream_error(model: WorldModel, data: DreamTensors, index: torch.Tensor, device: torch.device,
                steps: tuple[int, ...] = REPORT_STEPS) -> dict[str, Any]:
    """Mean tool and cube position error (cm) at the given dream steps over ``index``."""
    model.eval()
    ee_err, obj_err, terms = [], [], []
    for chunk in index.split(2048):
        batch = to_device(data.batch(chunk), device)
        _, t = model.compute_loss(batch)
        terms.append(t)
        out = model.predict(model.encode(batch["obs"], batch.get(INSTRUCTIONS)), batch["action"][:, None])
        s = model.cfg.pos_scale
        ee_err.append((out["ee_pos"][:, 0] / s - batch["ee_pos"]).norm(dim=-1).cpu())
        if model.shapes.n_objects:
            obj_err.append((out["object_pos"][:, 0] / s - batch["object_pos"]).norm(dim=-1).mean(-1).cpu())
    model.train()
    ee = torch.cat(ee_err)
    h = ee.shape[1]
    result: dict[str, Any] = {"val_loss_terms": {k: float(np.mean([t[k] for t in terms])) for k in terms[0]}}
    result["ee_err_cm"] = {str(s): float(ee[:, s - 1].mean() * 100) for s in steps if s <= h}
    if obj_err:
        obj = torch.cat(obj_err)
        result["object_err_cm"] = {str(s): float(obj[:, s - 1].mean() * 100) for s in steps if s <= h}
    return result


def _start_from(model: WorldModel, init: str, device: torch.device) -> None:
    """Load a trained world model's weights and normalisation into ``model`` (same network)."""
    start = checkpoint.load_world_model(init, model.shapes.task, model.shapes.robot, device)
    mismatch = model.cfg.network_mismatch(start.cfg)
    if mismatch:
        said = ", ".join(f"world_model.{k}={v[1]} (asked {v[0]})" for k, v in mismatch.items())
        raise ValueError(f"init={init} is a different network: it has {said}; pass those values or "
                         "leave init unset to train from scratch")
    try:
        model.load_state_dict(start.state_dict())
    except RuntimeError as e:  # the data's features differ from those it was trained on
        raise ValueError(f"init={init} does not fit this data's shapes ({e}); fine-tune only on data "
                         "of the features it was trained on") from None


def train_world_model(c) -> dict[str, Any]:
    """Train as ``c`` (a ``WorldModelTrainConfig``) says; returns a summary with held-out errors."""
    run = Path(c.out)
    if run.exists():
        if not c.overwrite:
            raise ValueError(f"{run} already exists; pass overwrite=true to replace it or another out=")
        shutil.rmtree(run)
    run.mkdir(parents=True)
    device = torch.device("cuda" if c.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if c.device == "auto" else c.device))
    torch.manual_seed(c.seed)
    data = DreamTensors([DemoDataset(d) for d in c.data], c.world_model, c.oracle_dreams)
    train_idx, val_idx = split_episodes(data.episode, c.val_fraction, c.seed)
    model = WorldModel(c.world_model, data.shapes, data.obs_low, data.obs_high, data.action_low,
                       data.action_high).to(device)
    if c.init:
        _start_from(model, c.init, device)
    opt = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    (run / "train_config.json").write_text(json.dumps(dataclasses.asdict(c), indent=2))
    gen = torch.Generator().manual_seed(c.seed)
    held = set(data.episode[val_idx].tolist())
    groups = torch.tensor([int(s) for s in data.group_starts if int(data.episode[s]) not in held],
                          dtype=torch.long)
    rank_w = c.world_model.loss_weights.get("rank", 0.0)
    focused = round(c.rank_groups * c.rank_focus)
    spread = data.group_spread(groups) if focused and len(groups) else None
    if spread is not None and not bool((spread > 0).any()):
        spread = None  # every recorded decision's candidates end alike: nothing to focus on
    bar = tqdm(total=c.steps, desc=f"world model {data.shapes.task}", unit="step", disable=not c.progress)
    step, train_s, losses, frac = 0, 0.0, [], 0.0
    with (run / METRICS).open("a") as log:
        while step < c.steps and (c.minutes is None or train_s < c.minutes * 60):
            t0 = time.perf_counter()
            if c.minutes is not None and step:
                frac = (train_s + train_s / step * c.log_every) / (c.minutes * 60)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, c, frac)
            pick = train_idx[torch.randint(len(train_idx), (c.batch_size,), generator=gen)]
            loss = model(to_device(data.batch(pick), device))
            if len(groups) and rank_w and c.rank_groups:
                starts = groups[torch.randint(len(groups), (c.rank_groups,), generator=gen)]
                if spread is not None:
                    starts[:focused] = groups[torch.multinomial(spread, focused, True, generator=gen)]
                rows = (starts[:, None] + torch.arange(data.group_size)).reshape(-1)
                batch = to_device(data.batch(rows), device)
                loss = loss + rank_w * model.rank_loss(batch, data.group_size)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
            train_s += time.perf_counter() - t0
            bar.update(1)
            if step % c.log_every == 0:
                rec = {"step": step, "loss": float(np.mean(losses)), "lr": opt.param_groups[0]["lr"],
                       "train_s": round(train_s, 2)}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{rec['loss']:.4f}")
                losses = []
    bar.close()
    model.eval()
    held = dream_error(model, data, val_idx, device) if len(val_idx) else None
    description = {"format": checkpoint.WORLD_MODEL_FORMAT, "world_model": dataclasses.asdict(c.world_model),
                   "shapes": data.shapes.to_json()}
    train_json = {"train_s": train_s, "data": list(c.data), "oracle_dreams": list(c.oracle_dreams)}
    path = checkpoint.save_model(run, step, model, {}, train_json, description)
    summary = {"checkpoint": str(path), "task": data.shapes.task, "robot": data.shapes.robot, "steps": step,
               "train_minutes": round(train_s / 60, 2), "examples": len(data),
               "held_out_examples": len(val_idx), "held_out": held}
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
