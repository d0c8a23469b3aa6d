"""`reverie run` and `reverie bench latency` on tiny settings: they run and report what they promise."""

from __future__ import annotations

import json

from policy.cli import main


def test_main_job_collects_trains_and_evaluates(tmp_path, capsys):
    out = tmp_path / "main"
    assert main(["run", "tasks=[reach]", "robots=[panda]", "episodes=2", "policy_tasks=[reach]",
                 "demos=3", "train_steps=4", "eval_episodes=2", f"out={out}", "num_envs=1",
                 "noisy_episodes=2", "world_model_minutes=0.01", "controller_k=2",
                 "llm_episodes=1", "node_episodes=1", "node_seconds=1.5"]) == 0
    text = capsys.readouterr().out
    assert "Diffusion policy (closed loop, held-out seeds)" in text
    summary = json.loads((out / "summary.json").read_text())
    row = summary["policies"][0]
    assert row["task"] == "reach" and row["train_steps"] == 4 and row["eval_episodes"] == 2
    assert 0 <= row["policy_success_rate"] <= 1
    assert 0 <= row["controller_success_rate"] <= 1 and row["controller_k"] == 2
    assert (out / "runs" / "reach_panda_wm" / "summary.json").exists()
    assert "controller" in text
    assert row["physics_dreamer"] is None  # reach has no cube for MuJoCo-from-observation dreams to score
    assert row["llm_planner"]["episodes"] == 1 and "language-model planner (llm" in text
    # and the first seed again through the real-time node on the simulated arm
    node = row["node"]
    assert node["episodes"] == 1 and node["ticks"] > 100 and 0 <= node["idle_ticks"] < node["ticks"]
    assert "through the deployment node (simulated arm, 100 Hz)" in text
    # the controller's first episodes are recorded, with their decisions, and plots sit beside the JSONs
    from policy.recording import paths
    from policy.recording.reader import read_entities

    assert f"rerun {row['recording']}" in text
    recorded = read_entities(row["recording"])
    assert {f"{paths.episode(s)}/{paths.EE_PATHS}" for s in (1_000_000, 1_000_001)} <= recorded.keys()
    evals = out / "eval" / "reach_panda"
    assert {p.name for p in evals.iterdir()} >= {
        "policy.json", "controller_value.json", "controller_llm.json", "node.json", "success_per_planner.png",
        "controller_value_dream_error.png"}


def test_bench_latency_reports_percentiles(tmp_path, capsys):
    out = tmp_path / "lat.json"
    assert main(["bench", "latency", "task=reach", "k=[1,2]", "steps=2", "repeats=3", f"out={out}"]) == 0
    result = json.loads(out.read_text())
    assert [(r["k"], r["steps"]) for r in result["results"]] == [(1, 2), (2, 2)]
    assert all(0 < r["p50_ms"] <= r["p95_ms"] for r in result["results"])


def test_bench_latency_accepts_single_values(capsys):
    assert main(["bench", "latency", "task=reach", "k=4", "steps=1", "repeats=2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["results"][0]["k"] == 4
