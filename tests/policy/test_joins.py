"""The offline join measurement: what it records per committed depth, and its checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policy import joins
from policy.checkpoint import load_policy
from tests.policy.conftest import tiny_policy


def test_a_join_is_the_step_from_the_last_committed_action_to_the_first_new_one(monkeypatch):
    policy = tiny_policy()  # To = 2, H = 8, Ta = 4
    policy.observe({"joint_pos": np.zeros(7, np.float32), "gripper": np.array([0.02], np.float32),
                    "goal": np.zeros(3, np.float32)})
    jump, step = 0.5, 0.01

    def fake_sample(obs, instructions, k=1, *, known, keep, **kw):
        last = int(keep.nonzero().max())
        traj = known.clone().repeat(k, 1, 1)
        for i in range(last + 1, traj.shape[1]):
            traj[:, i] = known[0, last]
            traj[:, i, 0] += jump + step * (i - last - 1)
        return traj[None]

    monkeypatch.setattr(policy, "sample", fake_sample)
    past, committed = np.full(8, 0.1, np.float32), np.full((4, 8), 0.2, np.float32)
    found_joins, found_insides, per_joint = {2: []}, {2: []}, {2: []}
    joins._draw(policy, past, committed, 2, 3, None, 0.0, torch.Generator(), found_joins, found_insides, 7,
                per_joint)
    change = np.concatenate(per_joint[2])  # all of it on joint 1
    assert np.allclose(change[:, 0], jump) and np.allclose(change[:, 1:], 0)
    assert np.allclose(found_joins[2], [jump] * 3)
    # past at index 0, two committed at 1..2, then the Ta = 4 new actions the node would run: 3 steps
    assert len(found_insides[2]) == 3 * 3 and np.allclose(found_insides[2], step)


def test_measure_joins_reports_every_committed_depth(push_run):
    policy = load_policy(push_run)
    r = joins.measure_joins(policy, episodes=1, seed=5, committed=(0, 2), draws=2)
    assert [row["committed"] for row in r["per_committed"]] == [0, 2]
    for row in r["per_committed"]:
        assert row["draws"] > 0 and row["draws"] % 2 == 0
        assert np.isfinite([row["join_p95"], row["inside_p95"], row["join_over_inside_p95"]]).all()
    with pytest.raises(ValueError, match="committed steps must lie"):
        joins.measure_joins(policy, 1, 5, committed=(0, 4))


def test_bench_joins_cli_writes_json_and_names_bad_settings(push_run, tmp_path, capsys):
    import json

    from policy.cli import main

    out = tmp_path / "joins.json"
    assert main(["bench", "joins", f"checkpoint={push_run}", "episodes=1", "draws=2", "committed=[1]",
                 f"out={out}"]) == 0
    assert [row["committed"] for row in json.loads(out.read_text())["per_committed"]] == [1]
    assert main(["bench", "joins", f"checkpoint={push_run}", "guidance=-1"]) == 2
    assert "guidance must be >= 0" in capsys.readouterr().err
    assert main(["bench", "deploy", f"checkpoint={push_run}", "planner=value"]) == 2
    assert "planner= and world_model= go together" in capsys.readouterr().err
