"""The `reverie` command: overrides reach the typed configs; bad input exits 2 with a reason."""

from __future__ import annotations

import json

import pytest

from policy.cli import load_config, main
from policy.configs import COMMAND_CONFIGS
from sim.data import DemoDataset


@pytest.mark.parametrize("name", sorted(COMMAND_CONFIGS))
def test_every_command_config_composes(name):
    path = name.replace("bench_", "bench/")
    cfg = load_config(path, [])
    assert isinstance(cfg, COMMAND_CONFIGS[name])


def test_collect_end_to_end(tmp_path, capsys):
    out = tmp_path / "reach"
    assert main(["collect", "task=reach", "robot=so101", "episodes=3", f"out={out}",
                 "num_envs=1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 3 and result["success_rate"] == 1.0
    assert DemoDataset(out).num_episodes == 3
    assert main(["collect", "task=reach", "robot=so101", "episodes=1", f"out={out}"]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["collect", "task=stack"], "unknown task 'stack'"),
    (["collect", "robot=ur5"], "unknown robot 'ur5'"),
    (["collect", "episodes=0"], "episodes must be >= 1"),
    (["collect", "perturb=2"], "perturb is a probability"),
    (["collect", "epsiodes=3"], "Could not override 'epsiodes'"),
    (["collect", "episodes=many"], "episodes"),
    (["bench", "speed"], "usage: reverie bench"),
    (["fly"], "unknown command 'fly'"),
])
def test_bad_input_is_named(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bench_expert_prints_json(capsys, tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "expert", "task=reach", "robot=panda", "episodes=4", f"out={out}"]) == 0
    result = json.loads(out.read_text())
    assert {"success_rate", "episodes", "task", "robot", "ci95"} <= set(result)
    assert result["episodes"] == 4 and result["success_rate"] == 1.0


def test_value_settings_compose_and_are_checked():
    c = load_config("eval", ["planner=value", "dreamer=oracle", "value.objective=false", "value.jerk=1.0"])
    assert not c.value.objective and c.value.jerk == 1.0
    with pytest.raises(ValueError, match="weight jerk must be >= 0"):
        load_config("eval", ["value.jerk=-1"])
