"""Policy benchmarks: latency from observation to action chunk."""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from policy import checkpoint
from policy.diffusion.config import DiffusionConfig, PolicyShapes
from policy.diffusion.policy import DiffusionPolicy
from sim import keys
from sim.bench import machine
from sim.data.format import STATE, frame_from_obs
from sim.registry import env_id, get_task


def untrained_policy(task: str, robot: str, preset: str) -> DiffusionPolicy:
    """A randomly initialised policy with the shapes ``task`` on ``robot`` gives (for timing)."""
    cfg = DiffusionConfig(preset=preset)
    env = gym.make(env_id(task, robot))
    obs, _ = env.reset(seed=0)
    env.close()
    frame = frame_from_obs(obs)
    dims = {f: len(frame[f]) for f in cfg.obs_features if f in frame}
    action_dim = len(frame[STATE])  # joint targets + gripper, like the state
    shapes = PolicyShapes(task, robot, action_dim, dims, get_task(task).instructed)
    obs_dim = sum(dims.values())
    return DiffusionPolicy(cfg, shapes, -np.ones(obs_dim), np.ones(obs_dim), -np.ones(action_dim),
                           np.ones(action_dim))


def bench_latency(policy: DiffusionPolicy, ks: list[int], steps_list: list[int], repeats: int = 50,
                  scheduler: str | None = None, compile_mode: str | None = None) -> dict[str, Any]:
    """p50/p95 ms of observation dict -> K candidate trajectories (and the chunk), per (K, steps).

    Timed path: flatten and normalise the observation, encode, sample K trajectories with
    ``steps`` denoising steps, unnormalise and copy to numpy.
    """
    policy = policy.eval()
    if scheduler:
        policy.cfg.scheduler = scheduler
    if compile_mode:
        policy.compile_denoiser(compile_mode)
    env = gym.make(env_id(policy.shapes.task, policy.shapes.robot))
    obs, _ = env.reset(seed=0)
    env.close()
    dev = policy.obs_norm.centre.device
    results = []
    for k in ks:
        for steps in steps_list:
            def once(k: int = k, steps: int = steps) -> None:
                policy.reset()
                policy.observe(obs)
                traj = policy.sample(policy.observation_window(), policy.instructions, k, steps=steps)
                traj.cpu().numpy()
            for _ in range(3):
                once()
            times = []
            for _ in range(repeats):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                once()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            results.append({"k": k, "steps": steps, "p50_ms": statistics.median(times),
                            "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
                            "repeats": repeats})
    return {"task": policy.shapes.task, "robot": policy.shapes.robot, "scheduler": policy.cfg.scheduler,
            "preset": policy.cfg.preset, "down_dims": policy.cfg.dims,
            "params": sum(p.numel() for p in policy.parameters()), "device": str(dev),
            "threads": torch.get_num_threads(), "compile": compile_mode, "results": results,
            "machine": machine()}


def load_for_bench(ckpt: str | None, task: str, robot: str, preset: str, device: str) -> DiffusionPolicy:
    if ckpt:
        return checkpoint.load_policy(ckpt, device=device)
    return untrained_policy(task, robot, preset).to(device)


def bench_cycle(policy: DiffusionPolicy, dreamer, ks: list[int], steps: int | None = None,
                refine: int = 0, repeats: int = 30, compile_mode: str | None = None) -> dict[str, Any]:
    """p50/p95 ms of one whole control cycle for one robot: observation -> K candidates -> dreams ->
    value scores -> chosen chunk (optionally refined), against the time the robot spends executing
    the previous chunk (Ta control steps): the cycle must fit inside it so the robot never waits.
    ``dreamer``: a learned one (a world model) or ``physics`` (one that reads observations only).
    ``compile_mode``: torch.compile the denoiser in that mode first (None: eager)."""
    from policy.controller import Controller, ControllerConfig
    from policy.planners.registry import make_planner

    if compile_mode:
        policy.compile_denoiser(compile_mode)

    env = gym.make(env_id(policy.shapes.task, policy.shapes.robot))
    obs, _ = env.reset(seed=0)
    budget_ms = policy.cfg.n_action_steps * env.unwrapped.control_dt * 1000
    env.close()
    results = []
    for k in ks:
        ctrl = Controller(policy, dreamer, make_planner("value"),
                          ControllerConfig(k=k, refine=refine, steps=steps))
        times, parts = [], []
        for i in range(repeats + 3):
            ctrl.reset()
            t0 = time.perf_counter()
            ctrl.select_action(obs)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000)
                parts.append(ctrl.decisions[-1].timings_ms)
        times.sort()
        results.append({"k": k, "p50_ms": statistics.median(times),
                        "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
                        "parts_p50_ms": {p: statistics.median(t[p] for t in parts) for p in parts[0]},
                        "fits_in_chunk": times[round(0.95 * (len(times) - 1))] < budget_ms})
    return {"task": policy.shapes.task, "robot": policy.shapes.robot,
            "steps": steps or policy.cfg.num_inference_steps, "refine": refine, "dreamer": dreamer.name,
            "chunk_execution_ms": budget_ms, "threads": torch.get_num_threads(), "compile": compile_mode,
            "device": str(policy.obs_norm.centre.device), "results": results, "machine": machine()}


def bench_recording(policy: DiffusionPolicy, world_model, k: int = 16, repeats: int = 30) -> dict[str, Any]:
    """The control cycle's latency with rerun recording off and on, alternating cycle by cycle on
    the same machine, so the ratio of medians is fair on a noisy one.

    A cycle is one chunk: the controller decides (sample K, dream, score, choose) and the simulated
    robot executes the chunk's Ta steps. With recording on, the decision (K dreamed paths, ghosts,
    scores, reason) and every step's state (all body poses, executed path, dream error) are logged
    to an .rrd file. Reported: the decision alone and the whole chunk, p50 off/on and on/off."""
    import tempfile

    from policy.controller import Controller, ControllerConfig
    from policy.dreamers import LearnedDreamer
    from policy.planners.registry import make_planner
    from policy.recording.recorder import Recorder
    from sim.env import ReverieEnv

    env = ReverieEnv(policy.shapes.task, policy.shapes.robot)
    ctrl = Controller(policy, LearnedDreamer(world_model), make_planner("value"), ControllerConfig(k=k))
    ta = policy.cfg.n_action_steps
    times: dict[bool, dict[str, list[float]]] = {on: {"decision": [], "chunk": []} for on in (False, True)}
    with tempfile.TemporaryDirectory() as tmp:
        rrd = Path(tmp) / "bench.rrd"
        with Recorder(str(rrd), [0]) as rec:
            obs, _ = env.reset(seed=0)
            rec.begin_episode(0, env.scene, env.control_dt, env.task.cubes, obs.get(keys.INSTRUCTION))
            t = 0
            for i in range(2 * (repeats + 2)):
                on, warm = i % 2 == 1, i >= 4
                ctrl.reset()
                obs, _ = env.reset(seed=i)
                t0 = time.perf_counter()
                for step in range(ta):
                    action = ctrl.select_action(obs)
                    if on and step == 0:
                        rec.log_decision(0, ctrl.decisions[-1])
                    if step == 0:
                        t1 = time.perf_counter()
                    obs, *_ = env.step(action)
                    t += 1
                    if on:
                        rec.log_state(0, t, env.scene.data, obs)
                if warm:
                    times[on]["decision"].append((t1 - t0) * 1000)
                    times[on]["chunk"].append((time.perf_counter() - t0) * 1000)
        size = rrd.stat().st_size
    env.close()
    out: dict[str, Any] = {"task": policy.shapes.task, "robot": policy.shapes.robot, "k": k,
                           "repeats": repeats,
                           "chunk_steps": ta, "threads": torch.get_num_threads(),
                           "rrd_bytes_per_chunk": size / (repeats + 2), "machine": machine()}
    for part in ("decision", "chunk"):
        off, on = statistics.median(times[False][part]), statistics.median(times[True][part])
        out[part] = {"off_p50_ms": off, "on_p50_ms": on, "on_over_off": on / off}
    return out


def bench_deploy(checkpoint: str, episodes: int = 20, delays_ms: tuple[float, ...] = (0, 100, 200, 300),
                 seed: int = 1_000_000, rate_hz: float = 100.0,
                 time_limit_s: float | None = None, guidance: float | None = None,
                 planner: str | None = None, world_model: str | None = None, k: int = 8,
                 join_samples: int = 1, join_blends: tuple[int, ...] | None = None,
                 reserves: tuple[bool, ...] | None = None,
                 centres: tuple[bool, ...] | None = None) -> dict[str, Any]:
    """Success and timing through the real-time node (simulated arm in its own process) at each
    injected inference delay, against in-process evaluation of the same checkpoint on the same
    seeds. Each node episode ends at success or after the task's time limit. With ``planner`` the
    node runs the sample -> dream -> choose controller, and so does the in-process evaluation.
    Each of ``join_blends``, ``reserves`` and ``centres`` (``centre_targets``; default: the node's
    own) runs at every delay, one after the other, so they share the machine's state."""
    from policy.checkpoint import load_policy, load_world_model
    from policy.deploy.config import NodeConfig
    from policy.deploy.run import deploy, task_seconds
    from policy.evaluation import evaluate

    policy = load_policy(checkpoint)
    limit_s = time_limit_s or task_seconds(policy.shapes.task)
    controller = None
    if planner is not None:
        from policy.controller import Controller, ControllerConfig
        from policy.dreamers import LearnedDreamer
        from policy.planners.registry import make_planner

        wm = load_world_model(world_model, policy.shapes.task, policy.shapes.robot)
        controller = Controller(policy, LearnedDreamer(wm), make_planner(planner), ControllerConfig(k=k))
    plain = evaluate(policy, episodes, seed, progress=False, controller=controller)
    rows = []
    blends = join_blends if join_blends is not None else (NodeConfig().join_blend,)
    reserves = reserves if reserves is not None else (NodeConfig().reserve,)
    centres = centres if centres is not None else (NodeConfig().centre_targets,)
    for delay, blend, reserve, centre in itertools.product(delays_ms, blends, reserves, centres):
        r = deploy(robot="mujoco", checkpoint=checkpoint, episodes=episodes, seed=seed,
                   node=NodeConfig(rate_hz=rate_hz, seconds=limit_s, delay_ms=delay, join_blend=blend,
                                   reserve=reserve, centre_targets=centre),
                   guidance=guidance, planner=planner, world_model=world_model, k=k,
                   join_samples=join_samples)
        figures = {k: v for k, v in r.items() if k not in ("per_episode", "node", "safety")}
        rows.append({"delay_ms": delay, "join_blend": blend, "reserve": reserve, "centre_targets": centre,
                     **figures,
                     "startup_s_median": float(np.median([e["startup_s"] for e in r["per_episode"]])),
                     "lead_median": float(np.median([e["lead"] for e in r["per_episode"]]))})
    return {"checkpoint": checkpoint, "task": policy.shapes.task, "robot": policy.shapes.robot,
            "episodes": episodes, "seed": seed, "rate_hz": rate_hz, "time_limit_s": limit_s,
            "inpaint_guidance": rows[0]["inpaint_guidance"], "planner": planner, "world_model": world_model,
            "k": k if planner else None, "join_samples": join_samples,
            "in_process": {"success_rate": plain["success_rate"], "ci95": plain["ci95"],
                           "joint_step_rad": plain["joint_step_rad"]},
            "node": rows, "machine": machine()}


def bench_planner(policy: DiffusionPolicy, world_model, planners: list[str], llm_settings: dict[str, Any],
                  k: int = 16, repeats: int = 20,
                  task_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """p50/p95 ms of one planning call (the planner's ``choose`` inside a real control cycle) per
    planner, each decision on a fresh episode, so nothing is answered from a cache: every ``llm``
    call reaches the model and every ``llm_value`` call reads a new instruction."""
    from policy.controller import Controller, ControllerConfig
    from policy.dreamers import LearnedDreamer
    from policy.planners.registry import make_planner

    env = gym.make(env_id(policy.shapes.task, policy.shapes.robot), **({"task_kwargs": task_kwargs}
                                                                       if task_kwargs else {}))
    budget_ms = policy.cfg.n_action_steps * env.unwrapped.control_dt * 1000
    results = []
    for name in planners:
        settings = {**llm_settings, "cache": 0} if name.startswith("llm") else {}
        ctrl = Controller(policy, LearnedDreamer(world_model), make_planner(name, **settings),
                          ControllerConfig(k=k))
        times = []
        for i in range(repeats):
            obs, _ = env.reset(seed=10_000 + i)
            ctrl.reset()
            ctrl.select_action(obs)
            times.append(ctrl.decisions[-1].timings_ms["choose"])
        times.sort()
        stats = getattr(ctrl.planner, "stats", None)
        results.append({"planner": name, "p50_ms": statistics.median(times),
                        "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
                        "fits_in_chunk": times[round(0.95 * (len(times) - 1))] < budget_ms,
                        **({"stats": stats.summary()} if stats is not None else {})})
    env.close()
    return {"task": policy.shapes.task, "robot": policy.shapes.robot, "k": k, "repeats": repeats,
            "chunk_execution_ms": budget_ms, "llm": {x: llm_settings[x] for x in ("backend", "model_path",
                                                                               "base_url", "n_threads")},
            "task_kwargs": task_kwargs, "results": results, "machine": machine()}


def bench_grounding(robot: str, planners: list[str], llm_settings: dict[str, Any], episodes: int = 40,
                    horizon: int = 60, phrasings: tuple[str, ...] = ("familiar", "novel"),
                    seed: int = 20_000) -> dict[str, Any]:
    """Selection accuracy on Sort, independent of any trained policy: from each start state the
    scripted expert proposes six futures (every cube onto every pad, ``horizon`` steps), the
    simulator dreams where the arm and cubes go (the oracle, with its instruction-aware progress
    and success blanked), and each planner chooses. A choice is right when its future handles
    the cube the instruction names and heads for the pad it names. The language is the only
    thing that tells the futures apart: a planner that cannot read scores at chance (1/6)."""

    from policy.planners.base import PlanQuery
    from policy.planners.llm.describe import outcomes
    from policy.planners.registry import make_planner
    from sim.env import ReverieEnv
    from sim.language import CUBE_COLOURS, SceneVocabulary

    vocab = SceneVocabulary.for_task("sort", robot)
    built = {name: make_planner(name, **({**llm_settings} if name.startswith("llm") else {}))
             for name in planners}
    pairs = _pairs()
    out: dict[str, Any] = {}
    for phrasing in phrasings:
        env = ReverieEnv("sort", robot, task_kwargs={"phrasing": phrasing}, max_episode_steps=10**6)
        right = {name: 0 for name in planners}
        ms: dict[str, list[float]] = {name: [] for name in planners}
        read = 0
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            want = (env.task.cube_colour, env.task.pad_colour)
            trajs, dreams = _propose_every_pair(env, obs, robot, horizon, i)
            q = PlanQuery(trajs[0], dreams.row(0), obs[keys.INSTRUCTION], obs, task="sort", scene=vocab)
            read += [CUBE_COLOURS[o_.obj] if o_.obj is not None else None for o_ in outcomes(
                dreams.row(0), obs, vocab)] == [c for c, _ in pairs]
            for name, planner in built.items():
                t0 = time.perf_counter()
                choice = planner.choose(q)
                ms[name].append((time.perf_counter() - t0) * 1e3)
                right[name] += pairs[choice.index] == want
        env.close()
        out[phrasing] = {"episodes": episodes, "dreams_name_the_right_cube": read / episodes,
                         "accuracy": {n: right[n] / episodes for n in planners},
                         "choose_ms_p50": {n: statistics.median(ms[n]) for n in planners}}
    stats = {n: p.stats.summary() for n, p in built.items() if hasattr(p, "stats")}
    return {"task": "sort", "robot": robot, "horizon": horizon, "chance": 1 / len(pairs),
            "results": out, "planner_stats": stats, "machine": machine()}


def _pairs() -> list[tuple[str, str]]:
    from sim.language import CUBE_COLOURS, PAD_COLOURS

    return [(c, p) for c in CUBE_COLOURS for p in PAD_COLOURS]


def _propose_every_pair(env, obs: dict, robot: str, horizon: int, seed: int):
    """The Sort expert's ``horizon``-step plan for every (cube, pad) pair from ``env``'s state, and
    the simulator's dreams of them with the instruction-aware progress and success blanked."""
    import copy

    from policy.dreamers import OracleDreamer
    from robots.registry import get_robot
    from sim.experts import EXPERTS
    from sim.workspace import WORKSPACES

    trajs = []
    for c, p in _pairs():
        shadow = copy.deepcopy(env)
        expert = EXPERTS["sort"](get_robot(robot), WORKSPACES[robot], env.control_dt)
        plain = f"put the {c} cube on the {p} pad"
        o = {**obs, keys.INSTRUCTION: plain}
        expert.reset(o, np.random.default_rng(seed))
        steps = []
        for _ in range(horizon):
            a = expert.act(o)
            steps.append(a)
            o = {**shadow.step(a)[0], keys.INSTRUCTION: plain}
        trajs.append(np.stack(steps))
        shadow.close()
    trajs = np.stack(trajs)[None]
    oracle = OracleDreamer(horizon)
    oracle.attach([env])
    dreams = oracle.dream(oracle.encode([[obs]]), trajs)
    # keep the geometry, drop the task's own progress and success: the simulator computes them
    # for the instructed cube, which would hand every planner the answer
    dreams.progress[:], dreams.success[:] = 0.0, 0.0
    return trajs, dreams


def bench_memory(robot: str, llm_settings: dict[str, Any], store_dir: str, episodes: int = 40,
                 horizon: int = 60, seed: int = 30_000, repeats: int = 1, block: int = 5) -> dict[str, Any]:
    """Consecutive Sort decisions with a world model that is systematically wrong: its dreams mix
    up the red and the green cube. ``llm_value`` with memory off and on (a fresh lesson store)
    chooses among the six expert-proposed futures (see ``bench_grounding``); after each episode
    the planner with memory writes what its choice really did. Success per episode, per arm;
    ``repeats`` runs on other start states, each from an empty store, give the learning curve
    (mean success per ``block`` of consecutive episodes) and whether the language model read the
    instruction right (the ceiling no lesson can lift)."""
    wins: dict[str, list[list[int]]] = {"memory_off": [], "memory_on": []}
    read_right: list[list[int]] = []
    for r in range(repeats):
        got, read = _memory_run(robot, llm_settings, Path(store_dir) / f"lessons_{r}.jsonl",
                                episodes, horizon, seed + 10_000 * r)
        for arm, w in got.items():
            wins[arm].append(w)
        read_right.append(read)
    n_blocks = episodes // block
    read = np.asarray(read_right, dtype=bool)

    def summary(w: list[list[int]]) -> dict[str, Any]:
        a = np.asarray(w, dtype=float)  # (repeats, episodes)
        return {"success": float(a.mean()),
                "curve": [float(a[:, b * block:(b + 1) * block].mean()) for b in range(n_blocks)],
                "first_block": float(a[:, :block].mean()), "after_first_block": float(a[:, block:].mean()),
                "when_read_right": float(a[read].mean()) if read.any() else None,
                "per_episode": w}

    return {"task": "sort", "robot": robot, "episodes": episodes, "repeats": repeats, "block": block,
            "horizon": horizon, "error": "dreams swap the red and the green cube",
            "instruction_read_right": float(read.mean()),
            "results": {arm: summary(w) for arm, w in wins.items()}, "machine": machine()}


def _memory_run(robot: str, llm_settings: dict[str, Any], store: Path, episodes: int,
                horizon: int, seed: int) -> tuple[dict[str, list[int]], list[int]]:
    """One run of ``bench_memory`` from an empty ``store``: per arm, 1 per episode it got right;
    and 1 per episode whose instruction the language model read as the right cube and pad (read
    by the memory-off arm, whose reading both arms share: same model, same prompt)."""
    import dataclasses

    from policy.planners.base import PlanQuery
    from policy.planners.llm.describe import outcomes
    from policy.planners.llm.memory import Lesson
    from policy.planners.registry import make_planner
    from sim.env import ReverieEnv
    from sim.language import SceneVocabulary

    vocab = SceneVocabulary.for_task("sort", robot)
    store.unlink(missing_ok=True)
    arms = {"memory_off": make_planner("llm_value", **{**llm_settings, "memory": None}),
            "memory_on": make_planner("llm_value", **{**llm_settings, "memory": str(store)})}
    pairs = _pairs()
    env = ReverieEnv("sort", robot, max_episode_steps=10**6)
    wins: dict[str, list[int]] = {a: [] for a in arms}
    read: list[int] = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        want = (env.task.cube_colour, env.task.pad_colour)
        reading = PlanQuery(np.zeros((1, 1, 1)), None, obs[keys.INSTRUCTION], scene=vocab)
        p = arms["memory_off"].grounding(reading)
        read.append(int(p is not None and pairs[int(np.argmax(p))] == want))
        trajs, true = _propose_every_pair(env, obs, robot, horizon, i)
        swap = [1, 0, 2]
        wrong = dataclasses.replace(true, object_pos=true.object_pos[..., swap, :],
                                    holding=true.holding[..., swap], touching=true.touching[..., swap])
        q = PlanQuery(trajs[0], wrong.row(0), obs[keys.INSTRUCTION], obs, task="sort", scene=vocab)
        real = outcomes(true.row(0), obs, vocab)
        said = outcomes(wrong.row(0), obs, vocab)
        for name, planner in arms.items():
            j = planner.choose(q).index
            ok = pairs[j] == want
            wins[name].append(int(ok))
            if planner.memory is not None:
                meant = planner.intended(said[j], obs[keys.INSTRUCTION], vocab, "sort")
                planner.memory.add(Lesson("sort", obs[keys.INSTRUCTION], said[j].text(vocab), 0.0, ok,
                                          f"it really {real[j].text(vocab)}", i, said[j].obj, real[j].obj,
                                          meant))
    env.close()
    return wins, read
