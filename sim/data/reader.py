"""Reads a LeRobotDataset v3.0 from disk into numpy arrays, checking it as it goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from robots.registry import get_robot
from sim.data.format import ACTION, INFO_PATH, STATS_PATH, TASKS_PATH, DatasetError

_REQUIRED_INFO = ("codebase_version", "fps", "features", "total_episodes", "total_frames")


class DemoDataset:
    """A whole dataset in memory: ``data[feature]`` is (total_frames, *shape).

    Raises ``DatasetError`` naming the problem for anything missing, corrupt or inconsistent.
    """

    def __init__(self, root: str | Path, robot: str | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"no dataset at {self.root}: the directory does not exist "
                               "(create one with `reverie collect ... out=DIR`)")
        self.info = self._load_info()
        self.fps: int = int(self.info["fps"])
        self.features: dict[str, dict[str, Any]] = self.info["features"]
        self.stats = self._load_json(STATS_PATH) if (self.root / STATS_PATH).exists() else None
        self.tasks = self._load_tasks()
        self.episodes = self._load_episodes()
        self.data = self._load_data()
        self._check_consistency()
        if robot is not None:
            self.check_robot(robot)

    # ---- loading -----------------------------------------------------------------------
    def _load_json(self, rel: str) -> dict[str, Any]:
        path = self.root / rel
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise DatasetError(f"{path} is missing: {self.root} is not a LeRobot v3 dataset") from None
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path} is not valid JSON ({e}); the dataset is corrupt") from None

    def _load_info(self) -> dict[str, Any]:
        info = self._load_json(INFO_PATH)
        missing = [k for k in _REQUIRED_INFO if k not in info]
        if missing:
            raise DatasetError(f"{self.root / INFO_PATH} lacks {missing}")
        version = str(info["codebase_version"])
        if not version.startswith("v3."):
            raise DatasetError(f"{self.root} is in LeRobot format {version}; Reverie reads v3.x. "
                               "Convert it with LeRobot's convert_dataset_v21_to_v30 script")
        if not int(info["fps"]) > 0:
            raise DatasetError(f"{self.root / INFO_PATH}: fps must be positive, got {info['fps']}")
        return info

    def _read_parquets(self, pattern: str) -> pa.Table:
        files = sorted(self.root.glob(pattern))
        if not files:
            raise DatasetError(f"{self.root} has no files matching {pattern}")
        try:
            return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
        except (pa.ArrowInvalid, OSError) as e:
            raise DatasetError(f"cannot read {pattern} in {self.root}: {e}; the dataset is corrupt") from None

    def _load_tasks(self) -> list[str]:
        path = self.root / TASKS_PATH
        if not path.exists():
            raise DatasetError(f"{path} is missing")
        df = pd.read_parquet(path)
        if "task_index" not in df.columns:
            raise DatasetError(f"{path} has no task_index column")
        if "task" in df.columns:
            df = df.set_index("task")
        df = df.sort_values("task_index")
        if list(df["task_index"]) != list(range(len(df))):
            raise DatasetError(f"{path}: task_index must run 0..{len(df) - 1}")
        return [str(t) for t in df.index]

    def _load_episodes(self) -> pd.DataFrame:
        eps = self._read_parquets("meta/episodes/*/*.parquet").to_pandas()
        eps = eps[[c for c in eps.columns if not c.startswith("stats/")]]
        eps = eps.sort_values("episode_index").reset_index(drop=True)
        if list(eps["episode_index"]) != list(range(len(eps))):
            raise DatasetError("episode_index in meta/episodes must run 0..N-1 without gaps")
        if len(eps) != int(self.info["total_episodes"]):
            raise DatasetError(f"info.json says {self.info['total_episodes']} episodes, "
                               f"meta/episodes holds {len(eps)}")
        return eps

    def _load_data(self) -> dict[str, np.ndarray]:
        table = self._read_parquets("data/*/*.parquet")
        out: dict[str, np.ndarray] = {}
        for name, f in self.features.items():
            if f["dtype"] in ("video", "image", "string", "language"):
                continue
            if name not in table.column_names:
                raise DatasetError(f"feature {name!r} is declared in info.json but absent from data/")
            col = table.column(name).combine_chunks()
            shape = tuple(f["shape"])
            if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or \
                    pa.types.is_large_list(col.type):
                values = np.asarray(col.flatten().to_numpy(zero_copy_only=False))
                if values.size != len(col) * int(np.prod(shape)):
                    raise DatasetError(f"feature {name!r}: rows do not all have shape {list(shape)}")
                out[name] = values.reshape(len(col), *shape)
            else:
                out[name] = np.asarray(col.to_numpy(zero_copy_only=False)).reshape(len(col), *shape)
        return out

    def _check_consistency(self) -> None:
        n = len(self.data["index"])
        if n != int(self.info["total_frames"]):
            raise DatasetError(f"info.json says {self.info['total_frames']} frames, data/ holds {n}")
        if not np.array_equal(self.data["index"][:, 0], np.arange(n)):
            raise DatasetError("the global 'index' column must run 0..N-1 in file order")
        lo = self.episodes["dataset_from_index"].to_numpy()
        hi = self.episodes["dataset_to_index"].to_numpy()
        if lo[0] != 0 or hi[-1] != n or np.any(lo[1:] != hi[:-1]) or np.any(hi <= lo):
            raise DatasetError("episode bounds in meta/episodes do not tile the frames")
        ep = self.data["episode_index"][:, 0]
        if np.any(ep != np.repeat(np.arange(len(lo)), hi - lo)):
            raise DatasetError("episode_index in data/ disagrees with the bounds in meta/episodes")
        for name, v in self.data.items():
            if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)):
                raise DatasetError(f"feature {name!r} contains NaN or inf")

    def check_robot(self, robot: str) -> None:
        """Raise unless the dataset was recorded on ``robot`` with its joint layout."""
        rb = get_robot(robot)
        found = self.info.get("robot_type")
        if found != rb.name:
            raise DatasetError(f"{self.root} was recorded on robot {found!r}, not {robot!r}; "
                               f"pass robot={found} or collect data for {robot}")
        shape = self.features.get(ACTION, {}).get("shape")
        if shape != [rb.action_dim]:
            raise DatasetError(f"{self.root}: action shape {shape} does not match {robot}'s "
                               f"{rb.action_dim} joints + gripper")

    # ---- access ------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return len(self.data["index"])

    @property
    def episode_bounds(self) -> np.ndarray:
        """(num_episodes, 2) [from, to) frame indices."""
        return self.episodes[["dataset_from_index", "dataset_to_index"]].to_numpy()

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """All features of episode ``i``, each (T, *shape)."""
        lo, hi = self.episode_bounds[i]
        return {k: v[lo:hi] for k, v in self.data.items()}

    def task_of(self, frame: int) -> str:
        return self.tasks[int(self.data["task_index"][frame, 0])]
