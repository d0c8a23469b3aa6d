"""Tiny end-to-end runs: train -> checkpoint -> eval, resume, refusal of bad checkpoints, and
DistributedDataParallel with two CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from policy import checkpoint
from policy.checkpoint import CheckpointError, load_policy
from policy.cli import load_config, main
from policy.configs import TrainConfig
from policy.evaluation import evaluate
from policy.training.loop import train
from tests.policy.conftest import TINY


def _cfg(data, out, **kw) -> TrainConfig:
    base = {"data": str(data), "out": str(out), "policy": dict(TINY), "steps": 20, "batch_size": 16,
            "log_every": 5, "save_every": 10, "eval_episodes": 0, "warmup_steps": 5, "progress": False}
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run(reach_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "reach"
    result = train(_cfg(reach_data, out))
    assert result["steps"] == 20
    return out


def test_train_checkpoint_eval_end_to_end(run, tmp_path, capsys):
    ckpt = checkpoint.resolve(run)
    assert ckpt.name == "step-0000020"
    assert {p.name for p in ckpt.iterdir()} == {checkpoint.META, checkpoint.MODEL, checkpoint.TRAIN_STATE}
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == [5, 10, 15, 20]
    out = tmp_path / "eval.json"
    assert main(["eval", f"checkpoint={run}", "episodes=3", "batch=2", f"out={out}",
                 f"video={tmp_path / 'ep.gif'}"]) == 0
    result = json.loads(out.read_text())
    assert result["episodes"] == 3 and 0 <= result["success_rate"] <= 1
    assert result["ci95"][0] <= result["success_rate"] <= result["ci95"][1]
    assert [r["seed"] for r in result["per_seed"]] == [1_000_000, 1_000_001, 1_000_002]
    assert result["joint_step_rad"]["within_chunk"] > 0
    assert (tmp_path / "ep.gif").stat().st_size > 0


def test_resume_continues_where_it_stopped(reach_data, tmp_path):
    out = tmp_path / "run"
    train(_cfg(reach_data, out, steps=20, minutes=None, save_every=10))
    full = load_policy(out).state_dict()
    interrupted = tmp_path / "interrupted"
    train(_cfg(reach_data, interrupted, steps=20, save_every=10))
    # Roll back to the step-10 checkpoint, as if the run had died there, then resume.
    (interrupted / "checkpoints" / "LATEST").write_text("step-0000010\n")
    result = train(_cfg(reach_data, interrupted, steps=20, save_every=10))
    assert result["steps"] == 20
    resumed = load_policy(interrupted).state_dict()
    for k, v in full.items():
        assert (resumed[k] - v).abs().max() < 1e-5, k


def test_existing_run_needs_resume_or_overwrite(reach_data, run):
    with pytest.raises(ValueError, match="resume=true"):
        train(_cfg(reach_data, run, resume=False))
    with pytest.raises(ValueError, match="policy settings differ"):
        train(_cfg(reach_data, run, policy={**TINY, "horizon": 16}))


def test_tampered_or_mismatched_checkpoints_are_refused(run, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(checkpoint.resolve(run), bad)
    with pytest.raises(CheckpointError, match="trained for task 'reach', not 'push'"):
        load_policy(bad, task="push")
    data = bytearray((bad / checkpoint.MODEL).read_bytes())
    data[-1] ^= 0xFF
    (bad / checkpoint.MODEL).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_policy(bad)
    (bad / checkpoint.META).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_policy(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "nowhere")


def test_checkpoint_whose_weights_do_not_fit_its_config_is_refused(run, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(checkpoint.resolve(run), bad)
    meta = json.loads((bad / checkpoint.META).read_text())
    meta["policy"]["down_dims"] = [32, 64]
    (bad / checkpoint.META).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_policy(bad)


def test_prefix_conditioning_round_trips_and_older_checkpoints_read_as_without_it(reach_data, tmp_path):
    out = tmp_path / "prefix"
    train(_cfg(reach_data, out, steps=2, save_every=2, policy={**TINY, "prefix_conditioning": True}))
    policy = load_policy(out)
    assert policy.cfg.prefix_conditioning and policy.denoiser.known_channel
    assert policy.predict_action_chunk(_reach_obs()).shape == (1, TINY["n_action_steps"], 8)
    ckpt = checkpoint.resolve(out)
    meta = json.loads((ckpt / checkpoint.META).read_text())
    for key in ("prefix_conditioning", "prefix_max", "prefix_prob"):
        del meta["policy"][key]  # as written before these settings existed
    assert checkpoint.policy_settings(meta)["prefix_conditioning"] is False
    (ckpt / checkpoint.META).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not fit"):  # these weights do have the channel
        load_policy(out)


def _reach_obs() -> dict:
    from sim.env import ReverieEnv

    env = ReverieEnv("reach", "panda")
    try:
        return env.reset(seed=0)[0]
    finally:
        env.close()


def test_eval_cli_refuses_a_checkpoint_for_another_task(run, capsys):
    assert main(["eval", f"checkpoint={run}", "task=push", "episodes=1"]) == 2
    assert "trained for task 'reach', not 'push'" in capsys.readouterr().err


def test_eval_cli_names_a_missing_checkpoint(tmp_path, capsys):
    assert main(["eval", f"checkpoint={tmp_path / 'none'}"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_evaluation_is_reproducible(run):
    policy = load_policy(run)
    a = evaluate(policy, 2, batch=2, progress=False)
    b = evaluate(policy, 2, batch=2, progress=False)
    assert [r["steps"] for r in a["per_seed"]] == [r["steps"] for r in b["per_seed"]]


def test_evaluation_with_a_lead_reports_it_and_refuses_it_with_a_controller(run):
    policy = load_policy(run)
    r = evaluate(policy, 1, batch=1, progress=False, lead=2)
    assert r["lead"] == 2 and r["episodes"] == 1 and r["per_seed"][0]["steps"] > 0
    with pytest.raises(ValueError, match="lead applies to the plain policy"):
        load_config("eval", ["lead=2", "planner=value"])
    with pytest.raises(ValueError, match="lead must be >= 0"):
        load_config("eval", ["lead=-1"])


def test_ddp_two_cpu_processes(reach_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "policy.cli", "train", f"data={reach_data}", f"out={out}", "steps=6",
           "batch_size=8", "log_every=3", "save_every=6", "eval_episodes=0", "progress=false",
           "policy.down_dims=[16,32]", "policy.step_embed_dim=16", "policy.horizon=8",
           "policy.n_action_steps=4", "device=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["steps"] == 6
    assert checkpoint.resolve(out).name == "step-0000006"
    load_policy(out)


def test_sort_policy_conditions_on_the_instruction(tmp_path):
    from sim.collection import collect

    data = tmp_path / "sort"
    collect("sort", "panda", 2, data, num_envs=1, progress=False)
    out = tmp_path / "run"
    train(_cfg(data, out, steps=3, save_every=3))
    policy = load_policy(out, task="sort")
    assert policy.shapes.uses_instruction and policy.text is not None
    r = evaluate(policy, 1, progress=False)
    assert r["episodes"] == 1
    import torch

    window = torch.zeros(2, policy.cfg.n_obs_steps, policy.shapes.obs_dim)
    a = policy.encode(window, ["put the red cube on the blue pad", "put the green cube on the yellow pad"])
    assert not torch.allclose(a[0], a[1])
    with pytest.raises(ValueError, match="needs one instruction"):
        policy.encode(window, None)


def test_lr_schedule_ends_with_whichever_budget_runs_out_first():
    from policy.training.loop import lr_at

    c = TrainConfig(steps=1000, warmup_steps=100, lr=1e-3)
    assert lr_at(0, c) == pytest.approx(1e-5) and lr_at(99, c) == pytest.approx(1e-3)
    assert lr_at(550, c) == pytest.approx(0.5e-3)  # half-way through the cosine by steps
    assert lr_at(999, c) < 1e-7
    assert lr_at(200, c, time_fraction=0.5) == pytest.approx(0.5e-3)  # the clock is further along
    assert lr_at(200, c, time_fraction=1.0) == 0.0


def test_time_budget_stops_training_with_the_schedule_annealed(reach_data, tmp_path):
    result = train(_cfg(reach_data, tmp_path / "run", steps=100000, minutes=0.02, log_every=2))
    assert 0 < result["steps"] < 100000
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["lr"] < 0.2 * 1e-3


def test_start_share_fills_that_share_of_each_batch_with_start_windows(reach_data, tmp_path):
    import torch

    from policy.training.loop import _step_generator, _Trainer

    trainer = _Trainer(_cfg(reach_data, tmp_path / "run", start_frames=2, start_share=0.5))
    frame = trainer.data.frame_in_episode
    assert (frame >= 0).all() and frame[0] == 0 and 0 < (frame == 0).sum() < len(frame) / 4
    index = trainer._batch_index(_step_generator(0, 0, 0))
    assert len(index) == 16
    assert (frame[index[-8:].numpy()] < 2).all()  # the drawn share: start windows only
    uniform = _Trainer(_cfg(reach_data, tmp_path / "run2"))._batch_index(_step_generator(0, 0, 0))
    assert torch.equal(uniform, torch.randint(len(trainer.data), (16,), generator=_step_generator(0, 0, 0)))


@pytest.mark.parametrize("kw", [{"start_share": 0.3}, {"start_frames": -1},
                                {"start_frames": 2, "start_share": 1.0}])
def test_start_window_settings_are_range_checked(kw):
    with pytest.raises(ValueError, match="start_"):
        TrainConfig(**kw)
