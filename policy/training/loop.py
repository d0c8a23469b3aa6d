"""The training loop: AdamW with warm-up + cosine, EMA, periodic evaluation, checkpoints, resume,
and DistributedDataParallel under torchrun.

Every step draws its batch and noise from generators seeded by (seed, rank, step), so a resumed
run sees exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from policy import checkpoint
from policy.configs import TrainConfig
from policy.diffusion.policy import DiffusionPolicy
from policy.evaluation import VALIDATION_SEED, evaluate
from policy.training import distributed
from policy.training.data import WindowTensors
from policy.training.ema import EMA
from policy.world_model.model import WorldEncoder
from sim.data.reader import DemoDataset

METRICS = "metrics.jsonl"


def lr_at(step: int, c: TrainConfig, time_fraction: float = 0.0) -> float:
    """Linear warm-up to ``lr``, then cosine decay to 0 when either budget runs out: ``steps``,
    or (with ``minutes``) the training time, ``time_fraction`` being the share of it used."""
    if step < c.warmup_steps:
        return c.lr * (step + 1) / c.warmup_steps
    by_steps = (step - c.warmup_steps) / max(1, c.steps - c.warmup_steps)
    progress = min(1.0, max(by_steps, time_fraction))
    return c.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(hash((seed, rank, step)) & 0x7FFF_FFFF_FFFF_FFFF)


class _Trainer:
    def __init__(self, c: TrainConfig) -> None:
        self.c = c
        self.ctx = distributed.setup(c.device)
        self.run = Path(c.out)
        torch.manual_seed(c.seed)
        self.data = WindowTensors(DemoDataset(c.data), c.policy, c.task)
        d = self.data
        self._starts = d.start_windows(c.start_frames)
        encoder = None
        if c.world_model:
            wm = checkpoint.load_world_model(c.world_model, d.shapes.task, d.shapes.robot)
            encoder = WorldEncoder.from_world_model(wm)
        self.policy = DiffusionPolicy(c.policy, d.shapes, d.obs_low, d.obs_high, d.action_low,
                                      d.action_high, encoder).to(self.ctx.device)
        self.ema = EMA(self.policy, c.ema_power, c.ema_max_decay)
        self.opt = torch.optim.AdamW(self.policy.parameters(), lr=c.lr, betas=(0.95, 0.999),
                                     weight_decay=c.weight_decay)
        self.step, self.train_s, self.time_fraction = 0, 0.0, 0.0
        self._prepare_run_dir()
        self.model: torch.nn.Module = self.policy
        if self.ctx.enabled:
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.policy, device_ids=ids)

    # ---- run directory, checkpoints, resume ---------------------------------------------
    def _prepare_run_dir(self) -> None:
        has_ckpt = (self.run / "checkpoints" / checkpoint.LATEST).exists()
        if self.c.overwrite and self.ctx.is_main and self.run.exists():
            shutil.rmtree(self.run)
        elif has_ckpt and self.c.resume:
            self._resume()
        elif self.run.exists() and any(self.run.iterdir()) and self.ctx.is_main and not has_ckpt:
            raise ValueError(f"{self.run} exists and holds no checkpoint; pass overwrite=true to "
                             "replace it or choose another out=")
        elif has_ckpt:
            raise ValueError(f"{self.run} already holds a run; pass resume=true to continue it or "
                             "overwrite=true to start again")
        distributed.barrier(self.ctx)
        if self.ctx.is_main:
            self.run.mkdir(parents=True, exist_ok=True)
            (self.run / "train_config.json").write_text(json.dumps(dataclasses.asdict(self.c), indent=2))

    def _resume(self) -> None:
        ckpt = checkpoint.resolve(self.run)
        meta = checkpoint.read_meta(ckpt)
        saved = checkpoint.policy_settings(meta)
        if saved != dataclasses.asdict(self.c.policy):
            raise ValueError(f"cannot resume {self.run}: its policy settings differ from this "
                             "command's; drop the policy.* overrides or pass overwrite=true")
        if meta["shapes"] != self.data.shapes.to_json():
            raise ValueError(f"cannot resume {self.run}: it was trained on data of other shapes "
                             f"({meta['shapes']}); pass overwrite=true or another out=")
        state = checkpoint.load_tensors(ckpt, checkpoint.TRAIN_STATE, meta)
        ema_state = checkpoint.load_tensors(ckpt, checkpoint.MODEL, meta)
        self.policy.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("raw.")})
        self.ema.model.load_state_dict(ema_state)
        opt_state = {int(k.split(".")[1]): {} for k in state if k.startswith("opt.")}
        for k, v in state.items():
            if k.startswith("opt."):
                _, idx, name = k.split(".", 2)
                opt_state[int(idx)][name] = v
        self.opt.load_state_dict({"state": opt_state, "param_groups": meta["train"]["param_groups"]})
        self.step, self.train_s = int(meta["step"]), float(meta["train"]["train_s"])
        self.ema.step = int(meta["train"]["ema_step"])

    def save(self) -> Path | None:
        if not self.ctx.is_main:
            return None
        tensors = {f"raw.{k}": v for k, v in self.policy.state_dict().items()}
        opt = self.opt.state_dict()
        for idx, st in opt["state"].items():
            for name, v in st.items():
                tensors[f"opt.{idx}.{name}"] = torch.as_tensor(v)
        train_json = {"train_s": self.train_s, "ema_step": self.ema.step, "param_groups": opt["param_groups"],
                      "data": str(self.c.data), "seed": self.c.seed}
        return checkpoint.save(self.run, self.step, self.ema.model, tensors, train_json)

    def log(self, record: dict[str, Any]) -> None:
        if self.ctx.is_main:
            with (self.run / METRICS).open("a") as f:
                f.write(json.dumps(record) + "\n")

    def _time_used(self) -> float:
        """Share of the ``minutes`` budget used so far, looking one log interval ahead so the
        schedule reaches its end by the last interval (0 without a budget)."""
        if self.c.minutes is None or self.step == 0:
            return 0.0
        per_step = self.train_s / self.step
        return (self.train_s + per_step * self.c.log_every) / (self.c.minutes * 60)

    # ---- the loop ----------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any] | None:
        if not self.ctx.is_main or self.c.eval_episodes == 0:
            return None
        was = self.ema.model.training
        r = evaluate(self.ema.model.eval(), self.c.eval_episodes, VALIDATION_SEED, progress=False)
        self.ema.model.train(was)
        rec = {"step": self.step, "train_s": round(self.train_s, 2), "success_rate": r["success_rate"],
               "ci95": r["ci95"], "eval_episodes": r["episodes"]}
        self.log(rec)
        return rec

    def _batch_index(self, gen: torch.Generator) -> torch.Tensor:
        """Window indices of one batch: uniform, except a ``start_share`` drawn from start windows."""
        c = self.c
        n_start = round(c.start_share * c.batch_size)
        index = torch.randint(len(self.data), (c.batch_size - n_start,), generator=gen)
        if not n_start:
            return index
        pick = torch.randint(len(self._starts), (n_start,), generator=gen)
        return torch.cat([index, self._starts[pick]])

    def fit(self) -> dict[str, Any]:
        c, ctx = self.c, self.ctx
        bar = tqdm(total=c.steps, initial=self.step, desc=f"train {self.data.shapes.task}",
                   unit="step", disable=not (c.progress and ctx.is_main))
        losses: list[float] = []
        last_eval = None
        self.policy.train()
        while self.step < c.steps:
            if self.step % c.log_every == 0:  # rank 0's clock decides, so ranks stay in step
                if not distributed.all_agree(ctx, c.minutes is None or self.train_s < c.minutes * 60):
                    break
                self.time_fraction = distributed.from_main(ctx, self._time_used())
            t0 = time.perf_counter()
            gen = _step_generator(c.seed, ctx.rank, self.step)
            index = self._batch_index(gen)
            obs, action, text = self.data.batch(index)
            for g in self.opt.param_groups:
                g["lr"] = lr_at(self.step, c, self.time_fraction)
            loss = self.model(obs.to(ctx.device), action.to(ctx.device), text, gen)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.ema.update(self.policy)
            self.step += 1
            self.train_s += time.perf_counter() - t0
            losses.append(loss.item())
            bar.update(1)
            if self.step % c.log_every == 0:
                mean = sum(losses) / len(losses)
                bar.set_postfix(loss=f"{mean:.4f}")
                self.log({"step": self.step, "loss": mean, "lr": lr_at(self.step - 1, c, self.time_fraction),
                          "train_s": round(self.train_s, 2)})
                losses = []
            if c.eval_every and self.step % c.eval_every == 0:
                last_eval = self.evaluate()
                bar.set_postfix(loss=f"{loss.item():.4f}", success=last_eval and last_eval["success_rate"])
            if self.step % c.save_every == 0:
                self.save()
        bar.close()
        path = self.save()
        final = last_eval if last_eval and last_eval["step"] == self.step else self.evaluate()
        distributed.barrier(ctx)
        return {"run": str(self.run), "checkpoint": str(path) if path else None, "steps": self.step,
                "train_s": round(self.train_s, 1), "final_eval": final,
                "params": sum(p.numel() for p in self.policy.parameters())}


def train(c: TrainConfig) -> dict[str, Any]:
    """Train (or resume) a diffusion policy as ``c`` says; returns a summary."""
    trainer = _Trainer(c)
    try:
        return trainer.fit()
    finally:
        distributed.teardown(trainer.ctx)
