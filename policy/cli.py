"""The `reverie` command: subcommands configured by Hydra-style ``key=value`` overrides.

    reverie run [key=value ...]                 the whole job on embedded defaults
    reverie collect task=push robot=panda episodes=200 out=data/push
    reverie bench expert task=pick_place robot=so101 episodes=100
    reverie bench throughput task=push robot=panda
    reverie train data=data/push out=runs/push [policy.preset=small steps=20000 minutes=30 ...]
    reverie collect-dreams checkpoint=runs/push out=data/push_dreams episodes=100 k=16
    reverie train-world-model data=[data/push,data/push_noisy] out=runs/push_wm [minutes=10 ...]
    reverie eval checkpoint=runs/push episodes=100 out=eval.json [steps=4 video=ep.gif]
    reverie eval checkpoint=runs/push planner=value world_model=runs/push_wm rerun=eval.rrd
    reverie viz data=data/push episodes=3 [rerun=spawn|replay.rrd]
    reverie bench recording checkpoint=runs/push world_model=runs/push_wm k=16
    reverie deploy robot=mujoco checkpoint=runs/push episodes=5 [node.rate_hz=100 node.delay_ms=200]
    reverie serve checkpoint=runs/push port=50051           # then: reverie deploy server=127.0.0.1:50051
    reverie bench latency checkpoint=runs/push k=16 steps=10
    reverie bench cycle checkpoint=runs/push world_model=runs/push_wm k=[1,4,16]
    reverie eval checkpoint=runs/sort planner=llm world_model=runs/sort_wm phrasing=novel
    reverie bench grounding planners=[value,llm,llm_value] episodes=40
    reverie bench memory episodes=40 store_dir=runs/memory
    reverie bench joins checkpoint=runs/push committed=[0,1,2,3,4,5]
    reverie bench planner checkpoint=runs/sort world_model=runs/sort_wm planners=[value,llm,llm_value]
    torchrun --nproc_per_node=N -m policy.cli train ...      multi-GPU / multi-node training
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from policy.configs import register_configs
from sim.data.format import DatasetError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def load_config(name: str, overrides: list[str]) -> Any:
    """Compose ``configs/<name>.yaml`` with ``overrides`` into its typed, checked dataclass."""
    if not CONFIG_DIR.is_dir():
        raise FileNotFoundError(f"Hydra configs not found at {CONFIG_DIR}; install Reverie from "
                                "its source tree with `pip install -e .`")
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides)
    return OmegaConf.to_object(cfg)


def _print_json(result: dict[str, Any], out: str | None = None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def cmd_collect(overrides: list[str]) -> None:
    from sim.collection import collect

    c = load_config("collect", overrides)
    r = collect(c.task, c.robot, c.episodes, c.out, c.seed, c.num_envs, c.noise, c.perturb,
                c.overwrite)
    _print_json({"out": r.out, "task": r.task, "robot": r.robot, "episodes": r.episodes,
                 "frames": r.frames, "success_rate": r.success_rate, "seconds": r.seconds,
                 "frames_per_s": r.frames_per_second})


def cmd_train(overrides: list[str]) -> None:
    from policy.training.loop import train

    c = load_config("train", overrides)
    r = train(c)
    if r["checkpoint"] is not None:  # rank 0 only under torchrun
        _print_json(r)


def cmd_train_world_model(overrides: list[str]) -> None:
    from policy.training.world_model import train_world_model

    _print_json(train_world_model(load_config("train_world_model", overrides)))


def cmd_collect_dreams(overrides: list[str]) -> None:
    from policy.checkpoint import load_policy
    from policy.evaluation import Displacement
    from policy.world_model.oracle_data import collect_oracle_dreams

    c = load_config("collect_dreams", overrides)
    policy = load_policy(c.checkpoint, device=c.device)
    displace = Displacement(c.displace_step, c.displace_cm) if c.displace_step else None
    _print_json(collect_oracle_dreams(policy, c.out, c.episodes, c.seed, c.k, c.batch, displace=displace,
                                      execute=c.execute, world_model=c.world_model))


def cmd_eval(overrides: list[str]) -> None:
    from policy.checkpoint import load_policy
    from policy.evaluation import Displacement, evaluate

    c = load_config("eval", overrides)
    policy = load_policy(c.checkpoint, c.task, c.robot, device=c.device)
    if c.scheduler:
        policy.cfg.scheduler = c.scheduler
    if c.inpaint_past is not None:
        policy.cfg.inpaint_past = c.inpaint_past
    controller = None
    if c.planner:
        from policy.controller import Controller, ControllerConfig
        from policy.dreamers import OracleDreamer, load_dreamer
        from policy.planners.registry import make_planner

        runs = ([c.world_model] if c.world_model else []) + list(c.ensemble)
        dreamer = load_dreamer(c.dreamer, policy, runs, c.device, c.physics)
        audit = OracleDreamer(dreamer.horizon) if c.audit else None
        value = dataclasses.asdict(c.value)
        settings = {**dataclasses.asdict(c.llm), "value": value} if c.planner.startswith("llm") else value
        controller = Controller(policy, dreamer, make_planner(c.planner, **settings),
                                ControllerConfig(c.k, c.refine, c.refine_candidates, c.refine_strength),
                                audit)
    displace = Displacement(c.displace_step, c.displace_cm) if c.displace_step else None
    task_kwargs = {"phrasing": c.phrasing} if c.phrasing else None
    recorder = None
    if c.rerun:
        from policy.recording.recorder import Recorder

        recorder = Recorder(c.rerun, list(range(c.seed, c.seed + c.rerun_episodes)), images=c.rerun_images)
    try:
        r = evaluate(policy, c.episodes, c.seed, batch=c.batch, steps=c.steps, video=c.video,
                     controller=controller, displace=displace, task_kwargs=task_kwargs, recorder=recorder,
                     lead=c.lead)
    finally:
        if recorder is not None:
            recorder.close()
    r["checkpoint"] = c.checkpoint
    if c.world_model:
        r["world_model"] = c.world_model
    if c.ensemble:
        r["ensemble"] = list(c.ensemble)
    if c.planner:
        r["value"] = dataclasses.asdict(c.value)  # the value score's weights, as the planner used them
    if c.planner and c.dreamer == "physics":
        r["physics"] = dataclasses.asdict(c.physics)
    if c.rerun:
        r["rerun"] = {"target": c.rerun, "episodes": c.rerun_episodes}
    _print_json(r, c.out)
    if c.out:
        from policy.plots import write_eval_plots

        for png in write_eval_plots(c.out, r):
            print(f"wrote {png}", file=sys.stderr)
    if c.rerun and c.rerun.endswith(".rrd"):
        print(f"recording: {c.rerun} (open it with `rerun {c.rerun}`)", file=sys.stderr)


def cmd_deploy(overrides: list[str]) -> None:
    from policy.deploy.run import deploy

    c = load_config("deploy", overrides)
    r = deploy(robot=c.robot, checkpoint=c.checkpoint, server=c.server, episodes=c.episodes, seed=c.seed,
               node=c.node, safety=c.safety, port=c.port, calibration=c.calibration, token_env=c.token_env,
               steps=c.steps, planner=c.planner, world_model=c.world_model, k=c.k,
               guidance=c.inpaint_guidance, join_samples=c.join_samples, dreamer=c.dreamer, physics=c.physics,
               device=c.device, compile_mode=c.compile_mode)
    _print_json(r, c.out)


def cmd_serve(overrides: list[str]) -> None:
    from policy.deploy.run import serve

    c = load_config("serve", overrides)
    serve(c.checkpoint, c.host, c.port, c.token_env, c.steps, c.device, c.planner, c.world_model, c.k,
          c.join_samples, c.dreamer, c.physics, c.compile_mode)


def cmd_viz(overrides: list[str]) -> None:
    from policy.recording.replay import replay

    c = load_config("viz", overrides)
    _print_json(replay(c.data, c.rerun, c.episodes))


def cmd_bench(overrides: list[str]) -> None:
    from sim.bench import bench_expert, bench_throughput, machine

    if not overrides or overrides[0] not in BENCHES:
        raise ValueError(f"usage: reverie bench {{{'|'.join(BENCHES)}}} [key=value ...]")
    kind, rest = overrides[0], overrides[1:]
    c = load_config(f"bench/{kind}", rest)
    if kind == "expert":
        r = bench_expert(c.task, c.robot, c.episodes, c.seed, c.num_envs, c.noise, c.perturb)
    elif kind == "throughput":
        r = bench_throughput(c.task, c.robot, c.steps, c.repeats, c.collect_episodes, c.num_envs)
    elif kind == "memory":
        from policy.benchmarks import bench_memory

        r = bench_memory(c.robot, dataclasses.asdict(c.llm), c.store_dir, c.episodes, c.horizon,
                         repeats=c.repeats, block=c.block)
    elif kind == "grounding":
        from policy.benchmarks import bench_grounding

        r = bench_grounding(c.robot, c.planners, dataclasses.asdict(c.llm), c.episodes, c.horizon,
                            tuple(c.phrasings))
    elif kind == "planner":
        import torch

        from policy.benchmarks import bench_planner
        from policy.checkpoint import load_policy, load_world_model

        if c.threads:
            torch.set_num_threads(c.threads)
        policy = load_policy(c.checkpoint)
        wm = load_world_model(c.world_model, policy.shapes.task, policy.shapes.robot)
        r = bench_planner(policy, wm, c.planners, dataclasses.asdict(c.llm), c.k, c.repeats,
                          {"phrasing": c.phrasing} if c.phrasing and policy.shapes.task == "sort" else None)
        r.update(checkpoint=c.checkpoint, world_model=c.world_model)
    elif kind == "deploy":
        from policy.benchmarks import bench_deploy

        r = bench_deploy(c.checkpoint, c.episodes, tuple(c.delays_ms), c.seed, c.rate_hz, c.time_limit_s,
                         c.inpaint_guidance, c.planner, c.world_model, c.k, c.join_samples,
                         tuple(c.join_blend), tuple(bool(x) for x in c.reserve),
                         tuple(bool(x) for x in c.centre_targets))
    elif kind == "joins":
        import torch

        from policy.checkpoint import load_policy
        from policy.joins import measure_joins

        if c.threads:
            torch.set_num_threads(c.threads)
        r = measure_joins(load_policy(c.checkpoint), c.episodes, c.seed, tuple(c.committed), c.draws,
                          c.steps, c.guidance)
        r.update(checkpoint=c.checkpoint, machine=machine())
    elif kind == "recording":
        import torch

        from policy.benchmarks import bench_recording
        from policy.checkpoint import load_policy, load_world_model

        if c.threads:
            torch.set_num_threads(c.threads)
        policy = load_policy(c.checkpoint)
        wm = load_world_model(c.world_model, policy.shapes.task, policy.shapes.robot)
        r = bench_recording(policy, wm, c.k, c.repeats)
        r.update(checkpoint=c.checkpoint, world_model=c.world_model)
    elif kind == "cycle":
        import torch

        from policy.benchmarks import bench_cycle
        from policy.checkpoint import load_policy
        from policy.dreamers import load_dreamer

        if c.threads:
            torch.set_num_threads(c.threads)
        policy = load_policy(c.checkpoint, device=c.device)
        learned = c.dreamer == "learned"
        dreamer = load_dreamer(c.dreamer, policy, [c.world_model] if learned else [], c.device, c.physics)
        r = bench_cycle(policy, dreamer, c.k, c.steps, c.refine, c.repeats,
                        c.compile_mode if c.compile else None)
        r.update(checkpoint=c.checkpoint, world_model=c.world_model if learned else None,
                 physics=dataclasses.asdict(c.physics) if c.dreamer == "physics" else None)
    else:
        import torch

        from policy.benchmarks import bench_latency, load_for_bench

        if c.threads:
            torch.set_num_threads(c.threads)
        policy = load_for_bench(c.checkpoint, c.task, c.robot, c.preset, c.device)
        r = bench_latency(policy, c.k, c.steps, c.repeats, c.scheduler, c.compile_mode if c.compile else None)
        r["checkpoint"] = c.checkpoint
    _print_json(r, c.out)


def cmd_run(overrides: list[str]) -> None:
    from policy.pipeline import run

    run(load_config("run", overrides))


BENCHES = ("expert", "throughput", "latency", "cycle", "planner", "grounding", "memory", "recording",
           "deploy", "joins")
COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "run": cmd_run, "collect": cmd_collect, "train": cmd_train,
    "train-world-model": cmd_train_world_model, "collect-dreams": cmd_collect_dreams, "eval": cmd_eval,
    "bench": cmd_bench, "viz": cmd_viz, "deploy": cmd_deploy, "serve": cmd_serve,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    try:
        COMMANDS[command](rest)
    except (ValueError, DatasetError, FileNotFoundError, HydraException,
            OmegaConfBaseException) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
