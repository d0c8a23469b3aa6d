"""LeRobot v3 writing and reading, training windows, and clear errors on bad datasets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.collection import collect
from sim.data import DatasetError, DemoDataset, DemoWriter, TrainingWindows
from sim.data.format import ACTION, CODEBASE_VERSION, STATE


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "sort"
    r = collect("sort", "so101", episodes=4, out=out, seed=5, num_envs=2, progress=False)
    assert r.episodes == 4
    return out


def test_layout_matches_lerobot_v3(dataset_dir):
    info = json.loads((dataset_dir / "meta/info.json").read_text())
    assert info["codebase_version"] == CODEBASE_VERSION
    assert info["total_episodes"] == 4 and info["fps"] == 10 and info["robot_type"] == "so101"
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    for default in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert default in info["features"]
    assert info["features"][STATE]["names"][-1] == "gripper"
    table = pq.read_table(dataset_dir / "data/chunk-000/file-000.parquet")
    action_type = table.schema.field(ACTION).type
    assert pa.types.is_fixed_size_list(action_type) and action_type.list_size == 6
    assert action_type.value_type == pa.float32()
    tasks = pd.read_parquet(dataset_dir / "meta/tasks.parquet")
    assert tasks.index.name == "task" and list(tasks["task_index"]) == list(range(len(tasks)))
    stats = json.loads((dataset_dir / "meta/stats.json").read_text())
    assert set(stats[ACTION]) >= {"min", "max", "mean", "std", "count", "q01", "q99"}
    assert stats[ACTION]["count"] == [info["total_frames"]]
    eps = pq.read_table(next((dataset_dir / "meta/episodes").glob("*/*.parquet"))).to_pandas()
    assert {"episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index",
            "data/chunk_index", "data/file_index", "success", "seed"} <= set(eps.columns)
    assert list(eps["seed"]) == [5, 6, 7, 8]  # written in episode order, whatever finished first


def test_reader_round_trip(dataset_dir):
    ds = DemoDataset(dataset_dir)
    assert ds.num_episodes == 4
    ep = ds.episode(2)
    assert np.all(ep["episode_index"] == 2)
    np.testing.assert_array_equal(ep["frame_index"][:, 0], np.arange(len(ep["frame_index"])))
    # The instruction is the task string; state is joints + gripper.
    assert "cube" in ds.task_of(0) or "block" in ds.task_of(0)
    assert ds.data[STATE].shape[1] == 6 and ds.data["observation.object_poses"].shape[1] == 21


def test_windows_pad_at_episode_boundaries(dataset_dir):
    ds = DemoDataset(dataset_dir)
    w = TrainingWindows(ds, n_obs_steps=2, horizon=16)
    lo, hi = ds.episode_bounds[1]
    first = w[lo]
    assert first["observation_is_pad"].tolist() == [True, False]
    np.testing.assert_array_equal(first[STATE][0], first[STATE][1])  # padded by repetition
    assert not first[f"{ACTION}_is_pad"][1:].any()
    last = w[hi - 1]
    assert last[f"{ACTION}_is_pad"].tolist() == [False, False] + [True] * 14
    np.testing.assert_array_equal(last[ACTION][-1], ds.data[ACTION][hi - 1])
    mid = w[lo + 5]
    np.testing.assert_array_equal(mid[ACTION], ds.data[ACTION][lo + 4:lo + 20])
    with pytest.raises(ValueError, match="n_obs_steps <= horizon"):
        TrainingWindows(ds, n_obs_steps=4, horizon=2)


def _copy(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_missing_dataset_is_named(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        DemoDataset(tmp_path / "nope")


def test_corrupt_info_is_named(dataset_dir, tmp_path):
    d = _copy(dataset_dir, tmp_path / "c")
    (d / "meta/info.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        DemoDataset(d)


def test_old_version_is_named(dataset_dir, tmp_path):
    d = _copy(dataset_dir, tmp_path / "v")
    info = json.loads((d / "meta/info.json").read_text())
    info["codebase_version"] = "v2.1"
    (d / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=r"format v2.1.*Convert"):
        DemoDataset(d)


def test_mismatched_frame_count_is_named(dataset_dir, tmp_path):
    d = _copy(dataset_dir, tmp_path / "m")
    info = json.loads((d / "meta/info.json").read_text())
    info["total_frames"] += 1
    (d / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="frames"):
        DemoDataset(d)


def test_truncated_parquet_is_named(dataset_dir, tmp_path):
    d = _copy(dataset_dir, tmp_path / "t")
    f = d / "data/chunk-000/file-000.parquet"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(DatasetError, match="corrupt"):
        DemoDataset(d)


def test_writer_refuses_to_clobber_and_nan(tmp_path, dataset_dir):
    feats = {ACTION: {"dtype": "float32", "shape": [2], "names": None}}
    with pytest.raises(DatasetError, match="already exists"):
        DemoWriter(dataset_dir, 10, "panda", feats)
    w = DemoWriter(tmp_path / "w", 10, "panda", feats)
    with pytest.raises(DatasetError, match="NaN"):
        w.add_episode({ACTION: np.array([[0.0, np.nan]])}, "t")
    with pytest.raises(DatasetError, match="declared shape"):
        w.add_episode({ACTION: np.zeros((3, 3))}, "t")
    w.add_episode({ACTION: np.zeros((3, 2))}, "t")
    assert not (tmp_path / "w").exists()  # nothing visible until close
    w.close()
    assert DemoDataset(tmp_path / "w").num_frames == 3


def test_data_files_roll_over(tmp_path):
    feats = {ACTION: {"dtype": "float32", "shape": [64], "names": None}}
    w = DemoWriter(tmp_path / "r", 10, "panda", feats, data_file_mb=0.01)
    for _ in range(5):
        w.add_episode({ACTION: np.ones((50, 64))}, "t")
    w.close()
    files = sorted((tmp_path / "r/data/chunk-000").glob("*.parquet"))
    assert len(files) > 1
    ds = DemoDataset(tmp_path / "r")
    assert ds.num_episodes == 5 and ds.num_frames == 250


def test_reads_lerobot_files_rewritten_by_pandas(dataset_dir, tmp_path):
    """LeRobot's converter and aggregator write vectors as plain list<float> through pandas."""
    d = _copy(dataset_dir, tmp_path / "lr")
    f = d / "data/chunk-000/file-000.parquet"
    df = pq.read_table(f).to_pandas()
    df[ACTION] = df[ACTION].map(list)
    df.to_parquet(f)
    assert pa.types.is_list(pq.read_table(f).schema.field(ACTION).type)
    np.testing.assert_array_equal(DemoDataset(d).data[ACTION], DemoDataset(dataset_dir).data[ACTION])


def test_dataset_for_another_robot_is_named(dataset_dir):
    DemoDataset(dataset_dir, robot="so101")
    with pytest.raises(DatasetError, match="recorded on robot 'so101', not 'panda'"):
        DemoDataset(dataset_dir, robot="panda")
