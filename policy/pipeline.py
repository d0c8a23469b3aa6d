"""`reverie run`: the whole job on embedded defaults.

1. expert demonstrations for every task on every robot (the experts' success table);
2. for each policy task (PickPlace on the Panda by default): 200 demonstrations, a diffusion
   policy trained with the quick CPU preset (up to 8000 steps within a 9-minute budget);
   150 noisy/perturbed expert episodes and a world model trained on both (2.5 minutes); then the
   plain policy and the sample -> dream -> choose controller (K=8, value planner, learned
   dreams) evaluated on the same held-out seeds, the same controller dreaming with MuJoCo set from
   each observation (``physics``, on the tasks it dreams) on the first ``physics_episodes`` of
   them, and the language-model planner (``llm``,
   SmolLM2-135M in process) on the first ``llm_episodes`` of them; the controller's first
   ``record_episodes`` episodes are recorded to ``OUT/recordings/<task>_<robot>.rrd`` (rerun), and
   each evaluation's JSON and PNG plots go to ``OUT/eval/<task>_<robot>/``; and the first
   ``node_episodes`` seeds run again through the real-time deployment node on the simulated arm
   (its own process, safety layer, 100 Hz);
3. tables and ``OUT/summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from policy.checkpoint import load_policy, load_world_model
from policy.configs import RunConfig, TrainConfig, WorldModelTrainConfig
from policy.controller import Controller, ControllerConfig
from policy.diffusion.config import DiffusionConfig
from policy.dreamers import LearnedDreamer
from policy.evaluation import EVAL_SEED, evaluate
from policy.physics_dreamer import PhysicsDreamer
from policy.planners.objective import FIXED_PAIR
from policy.planners.registry import make_planner
from policy.plots import write_eval_plots
from policy.recording.recorder import Recorder
from policy.training.loop import train
from policy.training.world_model import train_world_model
from sim.collection import collect


def run(c: RunConfig) -> dict[str, Any]:
    out = Path(c.out)
    experts = []
    for robot in c.robots:
        for task in c.tasks:
            r = collect(task, robot, c.episodes, out / "data" / f"{task}_{robot}", c.seed, c.num_envs,
                        overwrite=c.overwrite)
            experts.append({"task": task, "robot": robot, "episodes": r.episodes, "frames": r.frames,
                            "expert_success_rate": r.success_rate})
    _print_experts(experts)

    policies = []
    for task in c.policy_tasks:
        name = f"{task}_{c.policy_robot}"
        data = out / "data" / f"{name}_demos"
        demos = collect(task, c.policy_robot, c.demos, data, c.seed, c.num_envs, overwrite=c.overwrite)
        tc = TrainConfig(data=str(data), out=str(out / "runs" / name),
                         policy=DiffusionConfig(preset=c.preset), steps=c.train_steps,
                         minutes=c.train_minutes, eval_episodes=0, save_every=c.train_steps,
                         seed=c.seed, overwrite=c.overwrite, resume=not c.overwrite)
        t = train(tc)
        noisy = out / "data" / f"{name}_noisy"
        collect(task, c.policy_robot, c.noisy_episodes, noisy, c.seed + 500_000, c.num_envs, noise=0.03,
                perturb=0.6, overwrite=c.overwrite)
        wc = WorldModelTrainConfig(data=[str(data), str(noisy)], out=str(out / "runs" / f"{name}_wm"),
                                   steps=20_000, minutes=c.world_model_minutes, seed=c.seed, overwrite=True)
        w = train_world_model(wc)
        policy = load_policy(tc.out)
        evals = out / "eval" / name
        ev = _save(evals / "policy.json", evaluate(policy, c.eval_episodes))
        controller = Controller(policy, LearnedDreamer(load_world_model(wc.out)), make_planner("value"),
                                ControllerConfig(k=c.controller_k))
        recording = out / "recordings" / f"{name}.rrd" if c.record_episodes else None
        recorded = list(range(EVAL_SEED, EVAL_SEED + min(c.record_episodes, c.eval_episodes)))
        recorder = Recorder(str(recording), recorded) if recording else None
        try:
            ec = _save(evals / "controller_value.json",
                       evaluate(policy, c.eval_episodes, controller=controller, recorder=recorder))
        finally:
            if recorder is not None:
                recorder.close()
        physics = None
        if c.physics_episodes and task in FIXED_PAIR:
            controller = Controller(policy, PhysicsDreamer(task, c.policy_robot, policy.cfg.horizon),
                                    make_planner("value"), ControllerConfig(k=c.controller_k))
            ep = _save(evals / "controller_physics.json",
                       evaluate(policy, c.physics_episodes, controller=controller))
            physics = {"episodes": ep["episodes"], "success_rate": ep["success_rate"], "ci95": ep["ci95"],
                       "cycle_ms": ep["controller"]["cycle_ms_median"]["total"]}
        llm = None
        if c.llm_episodes:
            controller = Controller(policy, LearnedDreamer(load_world_model(wc.out)), make_planner("llm"),
                                    ControllerConfig(k=c.controller_k))
            el = _save(evals / "controller_llm.json", evaluate(policy, c.llm_episodes, controller=controller))
            llm = {"episodes": el["episodes"], "success_rate": el["success_rate"], "ci95": el["ci95"],
                   "planner_stats": el["controller"]["planner_stats"]}
        node = _through_node(tc.out, task, c, evals / "node.json") if c.node_episodes else None
        policies.append({"task": task, "robot": c.policy_robot, "demos": c.demos,
                         "expert_success_rate": demos.success_rate, "train_steps": t["steps"],
                         "train_minutes": t["train_s"] / 60, "policy_success_rate": ev["success_rate"],
                         "ci95": ev["ci95"], "eval_episodes": ev["episodes"], "checkpoint": tc.out,
                         "world_model": wc.out, "world_model_minutes": w["train_minutes"],
                         "controller_k": c.controller_k, "controller_success_rate": ec["success_rate"],
                         "controller_ci95": ec["ci95"],
                         "controller_cycle_ms": ec["controller"]["cycle_ms_median"]["total"],
                         "physics_dreamer": physics, "llm_planner": llm, "node": node,
                         "recording": str(recording) if recording else None,
                         "eval_dir": str(evals)})
    _print_policies(policies)
    summary = {"experts": experts, "policies": policies}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"datasets, runs and summary.json are in {out}/")
    for p in policies:
        print(f"plots of {p['task']}: {p['eval_dir']}/*.png")
        if p["recording"]:
            print(f"what the controller dreamed and chose in the first episodes of {p['task']}: "
                  f"`rerun {p['recording']}`")
    return summary


def _through_node(checkpoint: str, task: str, c: RunConfig, path: Path) -> dict[str, Any]:
    """The plain policy on the simulated arm through the deployment node: the summary figures."""
    from policy.deploy.config import NodeConfig
    from policy.deploy.run import deploy, task_seconds

    seconds = c.node_seconds or task_seconds(task)
    r = deploy(robot="mujoco", checkpoint=checkpoint, episodes=c.node_episodes, seed=EVAL_SEED,
               node=NodeConfig(seconds=seconds))
    _save(path, r)
    keys = ("episodes", "success_rate", "jitter_ms_p50", "jitter_ms_p99", "deadline_misses", "ticks",
            "idle_ticks", "jump_p95_rad", "inference_ms_p50")
    return {k: r[k] for k in keys}


def _save(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write an evaluation's JSON and refresh the folder's PNG plots."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    write_eval_plots(path, result)
    return result


def _print_experts(rows: list[dict[str, Any]]) -> None:
    print("\nExpert demonstrations")
    print(f"{'task':<12}{'robot':<8}{'episodes':>9}{'frames':>8}{'success':>9}")
    for row in rows:
        print(f"{row['task']:<12}{row['robot']:<8}{row['episodes']:>9}{row['frames']:>8}"
              f"{row['expert_success_rate']:>9.2f}")


def _print_policies(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    print("\nDiffusion policy (closed loop, held-out seeds)")
    print(f"{'task':<12}{'robot':<8}{'demos':>6}{'train min':>10}{'expert':>8}{'policy':>8}  95% CI"
          f"{'controller':>14}  95% CI")
    for r in rows:
        print(f"{r['task']:<12}{r['robot']:<8}{r['demos']:>6}{r['train_minutes']:>10.1f}"
              f"{r['expert_success_rate']:>8.2f}{r['policy_success_rate']:>8.2f}"
              f"  [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]{r['controller_success_rate']:>8.2f}"
              f"  [{r['controller_ci95'][0]:.2f}, {r['controller_ci95'][1]:.2f}]")
    print("policy: the plain diffusion policy (one sample per chunk); controller: K candidates per chunk, "
          "dreamed by the learned world model, chosen by the value planner")
    for r in rows:
        if r.get("node"):
            n = r["node"]
            ratio = n["jump_p95_rad"]["ratio"]
            print(f"through the deployment node (simulated arm, 100 Hz) on {r['task']}: "
                  f"{n['success_rate'] or 0:.2f} over the first {n['episodes']} seeds; tick jitter p99 "
                  f"{n['jitter_ms_p99']:.2f} ms, {n['deadline_misses']} of {n['ticks']} ticks late, "
                  f"{n['idle_ticks']} idle; p95 change at chunk joins / inside chunks "
                  + (f"{ratio:.2f}" if ratio is not None else "n/a"))
        if r.get("physics_dreamer"):
            m = r["physics_dreamer"]
            print(f"controller dreaming with MuJoCo set from each observation (physics) on {r['task']}: "
                  f"{m['success_rate']:.2f} over the first {m['episodes']} seeds, cycle p50 "
                  f"{m['cycle_ms']:.0f} ms for the batch")
        if r.get("llm_planner"):
            m = r["llm_planner"]
            s = m["planner_stats"]
            print(f"language-model planner (llm, SmolLM2-135M) on {r['task']}: {m['success_rate']:.2f} "
                  f"over the first {m['episodes']} seeds; {s['consulted']} of {s['decisions']} decisions "
                  f"put to the model ({s['cached']} from its cache), {s['fallback_total']} fallbacks, "
                  f"call p50 {s['call_ms'].get('p50', 0):.0f} ms")
