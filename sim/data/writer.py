"""Writes demonstrations as a LeRobotDataset v3.0 (pyarrow + pandas only).

The dataset is assembled in ``<out>.partial`` and renamed into place by ``close``, so an
interrupted collection never leaves something that looks like a finished dataset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.data.format import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILE_MB,
    DATA_PATH,
    DEFAULT_FEATURES,
    ENV_TASK,
    EPISODES_PATH,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    DatasetError,
    feature_stats,
)

_ARROW = {"float32": pa.float32(), "int64": pa.int64(), "bool": pa.bool_()}


class DemoWriter:
    """Appends episodes (dicts of per-frame arrays) to a new dataset at ``root``."""

    def __init__(self, root: str | Path, fps: int, robot_type: str,
                 features: dict[str, dict[str, Any]], overwrite: bool = False,
                 data_file_mb: float = DATA_FILE_MB, env_task: str | None = None) -> None:
        self.root = Path(root)
        self.env_task = env_task
        if self.root.exists() and any(self.root.iterdir()) and not overwrite:
            raise DatasetError(f"{self.root} already exists and is not empty; choose another "
                               "out= or pass overwrite=true to replace it")
        self.tmp = self.root.with_name(self.root.name + ".partial")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.fps, self.robot_type, self.data_file_mb = fps, robot_type, data_file_mb
        self.features = {**features, **DEFAULT_FEATURES}
        for name in self.features:
            if "/" in name:
                raise DatasetError(f"feature name {name!r} must not contain '/'")
        self.schema = pa.schema([(k, self._arrow_type(f)) for k, f in self.features.items()])
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict[str, Any]] = []
        self.columns: dict[str, list[np.ndarray]] = {k: [] for k in self.features}
        self.n_frames = 0
        self._file = (0, 0)
        self._file_bytes = 0
        self._writer: pq.ParquetWriter | None = None

    @staticmethod
    def _arrow_type(feature: dict[str, Any]) -> pa.DataType:
        base = _ARROW[feature["dtype"]]
        shape = feature["shape"]
        return base if list(shape) == [1] else pa.list_(base, int(np.prod(shape)))

    def add_episode(self, frames: dict[str, np.ndarray], task: str,
                    extra: dict[str, Any] | None = None) -> None:
        """Append one episode. ``frames`` maps each non-default feature to (T, *shape)."""
        missing = set(self.features) - set(DEFAULT_FEATURES) - set(frames)
        if missing:
            raise DatasetError(f"episode lacks features {sorted(missing)}")
        length = len(next(iter(frames.values())))
        if length == 0:
            raise DatasetError("cannot write an empty episode")
        ep = len(self.episodes)
        task_index = self.tasks.setdefault(task, len(self.tasks))
        cols: dict[str, np.ndarray] = {}
        for name, f in self.features.items():
            if name in DEFAULT_FEATURES:
                continue
            v = np.asarray(frames[name]).reshape(length, -1)
            if v.shape[1] != int(np.prod(f["shape"])):
                raise DatasetError(f"feature {name!r} has {v.shape[1]} values per frame, "
                                   f"declared shape {f['shape']}")
            if f["dtype"] == "float32" and not np.all(np.isfinite(v)):
                raise DatasetError(f"feature {name!r} of episode {ep} contains NaN or inf")
            cols[name] = v.astype(f["dtype"])
        frame_index = np.arange(length)
        cols["timestamp"] = (frame_index / self.fps).astype(np.float32)[:, None]
        cols["frame_index"] = frame_index[:, None]
        cols["episode_index"] = np.full((length, 1), ep)
        cols["index"] = (self.n_frames + frame_index)[:, None]
        cols["task_index"] = np.full((length, 1), task_index)
        chunk, file = self._write_data(cols, length)
        stats = {f"stats/{k}/{s}": v.tolist() for k in self.features
                 for s, v in feature_stats(cols[k]).items()}
        self.episodes.append({
            "episode_index": ep, "tasks": [task], "length": length,
            "data/chunk_index": chunk, "data/file_index": file,
            "dataset_from_index": self.n_frames, "dataset_to_index": self.n_frames + length,
            **(extra or {}), **stats,
            "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
        })
        for k, v in cols.items():
            self.columns[k].append(v)
        self.n_frames += length

    def _write_data(self, cols: dict[str, np.ndarray], length: int) -> tuple[int, int]:
        arrays = []
        for name, f in self.features.items():
            v = cols[name]
            if list(f["shape"]) == [1]:
                arrays.append(pa.array(v[:, 0], type=_ARROW[f["dtype"]]))
            else:
                arrays.append(pa.FixedSizeListArray.from_arrays(
                    pa.array(v.reshape(-1), type=_ARROW[f["dtype"]]), v.shape[1]))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if self._writer is not None and self._file_bytes + table.nbytes > self.data_file_mb * 2**20:
            self._writer.close()
            self._writer = None
            chunk, file = self._file
            self._file = (chunk + 1, 0) if file + 1 >= CHUNKS_SIZE else (chunk, file + 1)
            self._file_bytes = 0
        if self._writer is None:
            path = self.tmp / DATA_PATH.format(chunk_index=self._file[0], file_index=self._file[1])
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema, compression="snappy")
        self._writer.write_table(table)  # one row group per episode
        self._file_bytes += table.nbytes
        return self._file

    def close(self) -> Path:
        """Write the metadata and move the finished dataset into place."""
        if self._writer is not None:
            self._writer.close()
        if not self.episodes:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise DatasetError("no episodes were written")
        meta = self.tmp / "meta"
        ep_path = self.tmp / EPISODES_PATH.format(chunk_index=0, file_index=0)
        ep_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self.episodes), ep_path, compression="snappy")
        tasks = pd.DataFrame({"task_index": list(self.tasks.values())},
                             index=pd.Index(list(self.tasks), name="task"))
        tasks.to_parquet(self.tmp / TASKS_PATH)
        stats = {k: {s: v.tolist() for s, v in feature_stats(np.concatenate(c)).items()}
                 for k, c in self.columns.items()}
        (self.tmp / STATS_PATH).write_text(json.dumps(stats, indent=4))
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type,
            **({ENV_TASK: self.env_task} if self.env_task else {}),
            "total_episodes": len(self.episodes), "total_frames": self.n_frames,
            "total_tasks": len(self.tasks), "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": self.data_file_mb, "video_files_size_in_mb": 200,
            "fps": self.fps, "splits": {"train": f"0:{len(self.episodes)}"},
            "data_path": DATA_PATH, "video_path": None, "features": self.features,
        }
        meta.mkdir(parents=True, exist_ok=True)
        (self.tmp / INFO_PATH).write_text(json.dumps(info, indent=4))
        if self.root.exists():
            shutil.rmtree(self.root)
        self.tmp.rename(self.root)
        return self.root
