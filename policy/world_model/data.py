"""World-model training examples from recorded episodes: (observation window, H actions) -> the
H states that followed, as tensors gathered once.

For frame t of an episode (To = 2, H = 16):

```
frame:     t-1  t   t+1  ...  t+H
obs         o   o
actions         a   a    ...  a          a_t .. a_{t+H-1}
targets             s    ...  s          state after each action: frames t+1 .. t+H
```
Indices past the episode's end repeat its last frame (the arm holds; a solved task stays solved).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from policy.diffusion.text import TextTable, words
from policy.dreams import holding_label, touching_label
from policy.world_model.config import EE_FEATURE, GOAL_FEATURE, OBJECTS_FEATURE, WorldModelConfig, WorldShapes
from sim.data.format import ACTION, ENV_TASK, REWARD, SUCCESS, DatasetError
from sim.data.reader import DemoDataset
from sim.registry import get_task
from sim.workspace import WORKSPACES

INSTRUCTIONS = "instructions"
"""Batch key of the per-row instruction strings (instructed tasks only; the one non-tensor entry)."""
PAIR = "pair"
"""Batch key of the per-row (object, target) the instruction asked for, as object * targets +
target, or -1 where unknown (instructed tasks only)."""


def to_device(batch: dict, device: torch.device) -> dict:
    """A batch with its tensors on ``device`` (instruction strings stay as they are)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class DreamTensors:
    """Every frame of one or more datasets of the same task and robot as one training example."""

    FIELDS = ("obs", "action", "ee_pos", "object_pos", "holding", "touching", "progress", "success")

    def __init__(self, datasets: list[DemoDataset], cfg: WorldModelConfig,
                 oracle_dreams: list[str] | tuple[str, ...] = ()) -> None:
        if not datasets:
            raise DatasetError("no datasets given to train the world model on")
        tasks = {ds.info.get(ENV_TASK) for ds in datasets}
        robots = {str(ds.info["robot_type"]) for ds in datasets}
        if len(tasks) != 1 or len(robots) != 1 or None in tasks:
            raise DatasetError(f"world-model datasets must share one recorded task and robot; got "
                               f"tasks {sorted(map(str, tasks))}, robots {sorted(robots)}")
        task, robot = tasks.pop(), robots.pop()
        instructed = get_task(task).instructed
        self._texts = TextTable()
        text_index = [self._text_ids([ds.task_of(i) for i in range(ds.num_frames)]) if instructed
                      else np.zeros(0, np.int64) for ds in datasets]
        self.text_index = torch.from_numpy(np.concatenate(text_index))
        pairs = [self._episode_pairs(ds, WORKSPACES[robot]) if instructed else np.zeros(0, np.int64)
                 for ds in datasets]
        self.pair = torch.from_numpy(np.concatenate(pairs))
        """Per row: the (object, target) its episode ended with an object resting on, or -1."""
        parts = [self._gather(ds, cfg, WORKSPACES[robot].cube_half) for ds in datasets]
        offset = 0
        for p in parts:  # episode ids unique across datasets (for held-out splits)
            p["episode"] += offset
            offset = int(p["episode"].max()) + 1
        self.tensors = {f: torch.cat([p[f] for p in parts]) for f in self.FIELDS}
        first = datasets[0]
        features = [f for f in cfg.obs_features if f in first.data]
        n_obj = first.data[OBJECTS_FEATURE].shape[1] // 7 if OBJECTS_FEATURE in first.data else 0
        self.shapes = WorldShapes(task, robot, first.data[ACTION].shape[1],
                                  {f: int(np.prod(first.data[f].shape[1:])) for f in features}, n_obj,
                                  instructed)
        obs_all = np.concatenate([self._obs_matrix(ds, features) for ds in datasets])
        act_all = np.concatenate([ds.data[ACTION] for ds in datasets]).astype(np.float32)
        self.obs_low, self.obs_high = obs_all.min(0), obs_all.max(0)
        self.action_low, self.action_high = act_all.min(0), act_all.max(0)
        self.episode = torch.cat([p["episode"] for p in parts])
        self.group_starts = torch.zeros(0, dtype=torch.long)
        """First row of each oracle-dream decision (K rows from one state), for the rank loss."""
        self.group_size = 0
        for path in oracle_dreams:
            self._add_oracle_dreams(path, cfg, WORKSPACES[robot].cube_half)
        if instructed:
            self.shapes = dataclasses.replace(
                self.shapes, vocabulary=tuple(sorted({w for t in self.texts for w in words(t)})))

    def _add_oracle_dreams(self, path: str, cfg: WorldModelConfig, cube_half: float) -> None:
        from policy.world_model.oracle_data import load_oracle_dreams

        meta, t = load_oracle_dreams(path)
        if (meta["task"], meta["robot"]) != (self.shapes.task, self.shapes.robot):
            raise DatasetError(f"oracle dreams in {path} are of {meta['task']}/{meta['robot']}, the "
                               f"datasets of {self.shapes.task}/{self.shapes.robot}")
        if meta["obs_dims"] != self.shapes.obs_dims or meta["n_obs_steps"] != cfg.n_obs_steps:
            raise DatasetError(f"oracle dreams in {path} hold observations {meta['obs_dims']} x "
                               f"{meta['n_obs_steps']}, the world model encodes {self.shapes.obs_dims} x "
                               f"{cfg.n_obs_steps}")
        if t["action"].shape[1] != cfg.horizon:
            raise DatasetError(f"oracle dreams in {path} span {t['action'].shape[1]} steps; the world "
                               f"model dreams {cfg.horizon}")
        now = t["obs"][:, -1]
        e0 = self.shapes.offset(EE_FEATURE)
        ee_now = now[:, e0:e0 + 3]
        n = self.shapes.n_objects
        if n:
            o0 = self.shapes.offset(OBJECTS_FEATURE)
            obj_now = now[:, o0:o0 + 7 * n].reshape(-1, n, 7)[..., :3]
        else:
            obj_now = now.new_zeros(len(now), 0, 3)
        extra = {"obs": t["obs"], "action": t["action"], "ee_pos": t["ee_pos"] - ee_now[:, None],
                 "object_pos": t["object_pos"] - obj_now[:, None],
                 "holding": torch.from_numpy(holding_label(t["object_pos"].numpy(), cube_half)),
                 "touching": torch.from_numpy(touching_label(t["ee_pos"].numpy(), t["object_pos"].numpy())),
                 "progress": t["progress"], "success": t["success"]}
        for f in self.FIELDS:
            self.tensors[f] = torch.cat([self.tensors[f], extra[f].float()])
        if self.shapes.uses_instruction:
            if "instruction" not in t or "instructions" not in meta:
                raise DatasetError(f"oracle dreams in {path} were collected before instructions were "
                                   f"recorded, and a {self.shapes.task!r} world model needs them; collect "
                                   "them again with `reverie collect-dreams`")
            ids = torch.from_numpy(self._text_ids(list(meta["instructions"])))[t["instruction"]]
            # the demonstrations say what each instruction asked for; unknown wordings get -1
            pairs = zip(self.text_index.tolist(), self.pair.tolist(), strict=True)
            known = {i: p for i, p in pairs if p >= 0}
            self.pair = torch.cat([self.pair, torch.tensor([known.get(i, -1) for i in ids.tolist()])])
            self.text_index = torch.cat([self.text_index, ids])
        k = int(meta["k"])
        self.group_size = k
        first = len(self.tensors["obs"]) - len(t["obs"])
        self.group_starts = torch.cat([self.group_starts, first + torch.arange(0, len(t["obs"]), k)])
        self.episode = torch.cat([self.episode, t["group"] + int(self.episode.max()) + 1])
        self.action_low = np.minimum(self.action_low, t["action"].numpy().min((0, 1)))
        self.action_high = np.maximum(self.action_high, t["action"].numpy().max((0, 1)))

    @staticmethod
    def _obs_matrix(ds: DemoDataset, features: list[str]) -> np.ndarray:
        return np.concatenate([ds.data[f].reshape(ds.num_frames, -1) for f in features], axis=1)

    def _gather(self, ds: DemoDataset, cfg: WorldModelConfig, cube_half: float) -> dict[str, torch.Tensor]:
        for need in (EE_FEATURE, REWARD, SUCCESS):
            if need not in ds.data:
                raise DatasetError(f"{ds.root} lacks {need!r}, which world-model training needs")
        features = [f for f in cfg.obs_features if f in ds.data]
        bounds = ds.episode_bounds
        lengths = bounds[:, 1] - bounds[:, 0]
        ep = np.repeat(np.arange(len(bounds)), lengths)
        lo, hi = bounds[ep, 0][:, None], bounds[ep, 1][:, None] - 1
        t = np.arange(ds.num_frames)[:, None]
        obs_idx = np.clip(t + np.arange(-cfg.n_obs_steps + 1, 1), lo, hi)
        act_idx = np.clip(t + np.arange(cfg.horizon), lo, hi)
        next_idx = np.clip(t + 1 + np.arange(cfg.horizon), lo, hi)
        obs = self._obs_matrix(ds, features).astype(np.float32)
        ee = ds.data[EE_FEATURE][:, :3].astype(np.float32)
        if OBJECTS_FEATURE in ds.data:
            objects = ds.data[OBJECTS_FEATURE].reshape(ds.num_frames, -1, 7)[..., :3].astype(np.float32)
        else:
            objects = np.zeros((ds.num_frames, 0, 3), np.float32)
        ee_next, obj_next = ee[next_idx], objects[next_idx]
        success = np.maximum.accumulate(ds.data[SUCCESS].reshape(-1).astype(np.float32)[act_idx], axis=1)
        out = {
            "obs": obs[obs_idx], "action": ds.data[ACTION].astype(np.float32)[act_idx],
            "ee_pos": ee_next - ee[:, None], "object_pos": obj_next - objects[:, None],
            "holding": holding_label(obj_next, cube_half), "touching": touching_label(ee_next, obj_next),
            "progress": ds.data[REWARD].reshape(-1).astype(np.float32)[act_idx], "success": success,
        }
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}
        tensors["episode"] = torch.from_numpy(ep)
        return tensors

    def __len__(self) -> int:
        return len(self.tensors["obs"])

    @staticmethod
    def _episode_pairs(ds: DemoDataset, ws) -> np.ndarray:
        """Per frame: object * targets + target for the object its episode's last frame shows
        over a target and about to rest on it (the instruction's answer, in a successful
        demonstration; the last frame is recorded before the step that succeeds), else -1."""
        if OBJECTS_FEATURE not in ds.data or GOAL_FEATURE not in ds.data:
            return np.full(ds.num_frames, -1, np.int64)
        out = np.full(ds.num_frames, -1, np.int64)
        for lo, hi in ds.episode_bounds:
            objects = ds.data[OBJECTS_FEATURE][hi - 1].reshape(-1, 7)[:, :3]
            targets = ds.data[GOAL_FEATURE][hi - 1].reshape(-1, 3)
            gap = np.linalg.norm(objects[:, None, :2] - targets[None, :, :2], axis=-1)
            on = (gap < ws.pad_half) & (objects[:, None, 2] < ws.cube_half * 2)  # set down, or nearly
            if on.sum() == 1:
                out[lo:hi] = int(np.flatnonzero(on.ravel())[0])
        return out

    @property
    def texts(self) -> list[str]:
        """The distinct instructions; ``text_index`` points into it per row (instructed tasks)."""
        return self._texts.texts

    def _text_ids(self, texts: list[str]) -> np.ndarray:
        """Indices of ``texts`` in ``self.texts``, adding the new ones."""
        return self._texts.ids(texts)

    def group_spread(self, starts: torch.Tensor) -> torch.Tensor:
        """(G,) how much the true final progress of each oracle-dream decision's K candidates
        differs (standard deviation): zero where every candidate ends alike."""
        rows = starts[:, None] + torch.arange(self.group_size)
        return self.tensors["progress"][rows, -1].std(dim=1)

    def batch(self, index: torch.Tensor) -> dict:
        """The rows ``index`` as tensors, plus their instruction strings for instructed tasks."""
        out: dict = {f: self.tensors[f][index] for f in self.FIELDS}
        if self.shapes.uses_instruction:
            out[INSTRUCTIONS] = [self.texts[i] for i in self.text_index[index].tolist()]
            out[PAIR] = self.pair[index]
        return out
