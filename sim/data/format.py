"""The LeRobotDataset v3.0 on-disk layout, as far as Reverie reads and writes it.

```
ROOT/meta/info.json                              codebase_version, fps, features, totals, paths
ROOT/meta/stats.json                             per feature: min max mean std count q01..q99
ROOT/meta/tasks.parquet                          index "task" (the string) -> task_index
ROOT/meta/episodes/chunk-000/file-000.parquet    one row per episode (bounds, tasks, stats/...)
ROOT/data/chunk-000/file-000.parquet             one row per frame; vectors as fixed-size lists
```
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim import keys

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH, STATS_PATH, TASKS_PATH = "meta/info.json", "meta/stats.json", "meta/tasks.parquet"
CHUNKS_SIZE = 1000
DATA_FILE_MB = 100
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)

ENV_TASK = "reverie_task"
"""info.json key naming the Reverie task the episodes were recorded on (an extension to v3.0)."""
STATE = "observation.state"
ACTION = "action"
REWARD, DONE, SUCCESS = "next.reward", "next.done", "next.success"
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
OBS_FEATURES = {
    keys.JOINT_VEL: "observation.joint_vel",
    keys.EE_POSE: "observation.ee_pose",
    keys.OBJECT_POSES: "observation.object_poses",
    keys.GOAL: "observation.goal",
}
"""Observation key -> dataset feature; ``observation.state`` is joint_pos then gripper."""


def frame_from_obs(obs: dict[str, Any]) -> dict[str, np.ndarray]:
    """One environment observation -> its dataset features, each a flat float32 vector."""
    out = {STATE: np.append(obs[keys.JOINT_POS], obs[keys.GRIPPER]).astype(np.float32)}
    for key, feature in OBS_FEATURES.items():
        if key in obs:
            out[feature] = np.asarray(obs[key], dtype=np.float32).reshape(-1)
    return out


class DatasetError(ValueError):
    """A dataset on disk is missing, corrupt, or does not match what was asked of it."""


def quantile_key(q: float) -> str:
    return f"q{round(q * 100):02d}"


def feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot-style statistics of (N, D) values, each of shape (D,), count of shape (1,)."""
    v = values.reshape(len(values), -1).astype(np.float64)
    out = {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0),
           "count": np.array([len(v)])}
    for q in QUANTILES:
        out[quantile_key(q)] = np.quantile(v, q, axis=0)
    return out
