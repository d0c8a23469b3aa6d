"""World model: training targets, causal dreaming, training and checkpoints, the oracle dreamer,
and world-model data from the policy's own candidates."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from policy import checkpoint
from policy.checkpoint import CheckpointError, load_world_model
from policy.configs import WorldModelTrainConfig
from policy.diffusion.text import words
from policy.dreamers import DREAMERS, LearnedDreamer, OracleDreamer, make_dreamer
from policy.training.world_model import train_world_model
from policy.world_model.config import WorldModelConfig, WorldShapes
from policy.world_model.data import DreamTensors
from policy.world_model.model import WorldModel
from sim import keys
from sim.data.reader import DemoDataset
from sim.env import ReverieEnv
from sim.language import CUBE_COLOURS, PAD_COLOURS, parse_instruction

TINY_WM = {"horizon": 8, "latent_dim": 16, "d_model": 16, "layers": 1, "heads": 2}


def _wm(data: DreamTensors) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(WorldModelConfig(**TINY_WM), data.shapes, data.obs_low, data.obs_high,
                      data.action_low, data.action_high)


@pytest.fixture(scope="module")
def push_tensors(push_data):
    return DreamTensors([DemoDataset(push_data)], WorldModelConfig(**TINY_WM))


def test_targets_are_the_states_that_followed(push_data, push_tensors):
    ds = DemoDataset(push_data)
    t = 3  # inside the first episode
    ee = ds.data["observation.ee_pose"][:, :3]
    d = push_tensors.tensors
    np.testing.assert_allclose(d["ee_pos"][t, 0].numpy(), ee[t + 1] - ee[t], atol=1e-6)
    np.testing.assert_allclose(d["ee_pos"][t, 4].numpy(), ee[t + 5] - ee[t], atol=1e-6)
    np.testing.assert_allclose(d["action"][t, 0].numpy(), ds.data["action"][t], atol=1e-6)
    assert torch.all(d["success"][:, 1:] >= d["success"][:, :-1])  # once solved, stays solved
    last = int(ds.episode_bounds[0, 1]) - 1  # the last frame of a successful episode
    assert d["success"][last, -1] == 1.0
    assert push_tensors.shapes.n_objects == 1


def test_dreams_are_batched_and_causal(push_tensors):
    wm = _wm(push_tensors).eval()
    batch = push_tensors.batch(torch.arange(3))
    latent = wm.encode(batch["obs"])
    trajs = batch["action"][:, None].repeat(1, 5, 1, 1)
    d = wm.dream(latent, trajs)
    assert d.shape == (3, 5, 8) and d.object_pos.shape == (3, 5, 8, 1, 3)
    changed = trajs.clone()
    changed[:, :, 5:] += 0.3  # only steps 5.. differ
    d2 = wm.dream(latent, changed)
    np.testing.assert_allclose(d.ee_pos[:, :, :5], d2.ee_pos[:, :, :5], atol=1e-5)
    assert not np.allclose(d.ee_pos[:, :, 5:], d2.ee_pos[:, :, 5:])
    with pytest.raises(ValueError, match="dreams trajectories"):
        wm.dream(latent, trajs[:, :, :4])


def test_kinematic_tokens_put_the_tool_where_the_targets_send_it(push_tensors):
    """With the residual head silenced, the dreamed tool is the observed tool moved by exactly
    what forward kinematics says the targets do; the cubes' offsets from it reach the network."""
    wm = _wm(push_tensors).eval()
    assert wm.cfg.kinematic
    with torch.no_grad():
        wm.head.weight.zero_()
        wm.head.bias.zero_()
    batch = push_tensors.batch(torch.arange(2))
    latent = wm.encode(batch["obs"])
    trajs = batch["action"][:, None].repeat(1, 3, 1, 1)
    trajs[:, 1, :, 0] += 0.2  # candidate 1 turns the base
    d = wm.dream(latent, trajs)
    tool = wm.kinematics(trajs[..., :7])[0] - wm.kinematics(latent.joints)[0][:, None, None]
    np.testing.assert_allclose(d.ee_pos, (latent.ee_pos[:, None, None] + tool).numpy(), atol=1e-5)
    assert np.abs(d.ee_pos[:, 1] - d.ee_pos[:, 0]).max() > 0.05
    features, _ = wm._kinematic_features(latent, trajs)
    assert features.shape == (2, 3, 8, 9 + 6 * push_tensors.shapes.n_objects)


def test_a_world_model_saved_before_kinematic_tokens_loads_without_them(push_data, tmp_path):
    c = WorldModelTrainConfig(data=[str(push_data)], out=str(tmp_path / "wm"),
                              world_model=dict(TINY_WM, kinematic=False), steps=3, batch_size=8,
                              log_every=1, warmup_steps=1, val_fraction=0.25, progress=False)
    train_world_model(c)
    meta_file = checkpoint.resolve(tmp_path / "wm") / checkpoint.META
    meta = json.loads(meta_file.read_text())
    del meta["world_model"]["kinematic"]  # as written before the option existed
    meta_file.write_text(json.dumps(meta))
    wm = load_world_model(tmp_path / "wm", task="push")
    assert not wm.cfg.kinematic and not hasattr(wm, "kinematics")


def test_training_lowers_the_loss_and_checkpoints_round_trip(push_data, tmp_path):
    c = WorldModelTrainConfig(data=[str(push_data)], out=str(tmp_path / "wm"), world_model=dict(TINY_WM),
                              steps=60, batch_size=32, log_every=20, warmup_steps=5, val_fraction=0.25,
                              progress=False)
    summary = train_world_model(c)
    lines = (tmp_path / "wm/metrics.jsonl").read_text().splitlines()
    losses = [json.loads(x)["loss"] for x in lines]
    assert losses[-1] < losses[0]
    assert set(summary["held_out"]["ee_err_cm"]) == {"4", "8"}
    wm = load_world_model(tmp_path / "wm", task="push")
    assert wm.cfg.horizon == 8 and not wm.training
    with pytest.raises(CheckpointError, match="trained for task 'push'"):
        load_world_model(tmp_path / "wm", task="reach")
    model_file = checkpoint.resolve(tmp_path / "wm") / checkpoint.MODEL
    model_file.write_bytes(model_file.read_bytes()[:-3] + b"xyz")
    with pytest.raises(CheckpointError, match="sha256"):
        load_world_model(tmp_path / "wm")


def test_a_policy_checkpoint_is_not_taken_for_a_world_model(push_run):
    with pytest.raises(CheckpointError, match="a world model where a policy was expected"):
        load_world_model(push_run)


def test_oracle_dreams_the_future_the_simulator_then_produces():
    env = ReverieEnv("push", "panda")
    obs, _ = env.reset(seed=3)
    oracle = OracleDreamer(horizon=6)
    oracle.attach([env])
    start = obs[keys.JOINT_POS].copy()
    traj = np.stack([np.append(start + 0.02 * (i + 1), 0.0) for i in range(6)])
    dreams = oracle.dream(oracle.encode([[obs]]), np.stack([traj, traj * 0.99])[None])
    np.testing.assert_allclose(env._observe()[keys.JOINT_POS], start)  # the real env is untouched
    for t in range(6):
        obs, *_ = env.step(traj[t])
        np.testing.assert_allclose(dreams.ee_pos[0, 0, t], obs[keys.EE_POSE][:3], atol=1e-9)
    assert not np.allclose(dreams.ee_pos[0, 0], dreams.ee_pos[0, 1])


@pytest.mark.parametrize("task", ["push", "pick_place", "sort"])
def test_the_planners_progress_on_the_simulators_futures_is_the_simulators(task):
    """The value planner scores learned dreams by the task's progress computed from positions: on
    the simulator's own futures it must give the simulator's progress, episode after episode."""
    import dataclasses

    from policy.planners.base import PlanQuery
    from policy.planners.objective import objective_progress

    env = ReverieEnv(task, "panda")
    oracle = OracleDreamer(horizon=6)
    oracle.attach([env])
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        start = obs[keys.JOINT_POS].copy()
        still = np.tile(np.append(start, 0.0), (6, 1))
        move = np.stack([np.append(start + 0.03 * (i + 1), 0.0) for i in range(6)])
        trajs = np.stack([still, move])
        dreams = oracle.dream(oracle.encode([[obs]]), trajs[None])
        grounding = None
        if task == "sort":
            grounding = np.zeros((len(CUBE_COLOURS), len(PAD_COLOURS)))
            grounding[CUBE_COLOURS.index(env.task.cube_colour), PAD_COLOURS.index(env.task.pad_colour)] = 1
        q = PlanQuery(trajs, dreams, obs.get(keys.INSTRUCTION), obs, task=task, robot="panda",
                      dreamer="learned", start=obs)
        progress, _ = objective_progress(q, grounding)
        np.testing.assert_allclose(progress, dreams.progress[0, :, -1], atol=1e-9, err_msg=f"seed {seed}")
        assert objective_progress(dataclasses.replace(q, start=None), grounding)[0] == pytest.approx(progress)


def test_every_dreamer_builds(push_tensors):
    for name in DREAMERS:
        d = make_dreamer(name, world_model=_wm(push_tensors), horizon=8, task="push", robot="panda")
        assert d.name == name and d.horizon == 8
    with pytest.raises(ValueError, match="needs a trained world model"):
        make_dreamer("learned")
    with pytest.raises(ValueError, match="unknown dreamer"):
        make_dreamer("crystal_ball")


def test_an_ensemble_dreams_its_members_average(push_tensors):
    from policy.configs import EvalConfig
    from policy.dreamers import EnsembleDreamer

    t = push_tensors
    a = _wm(t).eval()
    torch.manual_seed(1)
    b = WorldModel(WorldModelConfig(**TINY_WM), t.shapes, t.obs_low, t.obs_high, t.action_low,
                   t.action_high).eval()
    batch = push_tensors.batch(torch.arange(2))
    ens = make_dreamer("learned", [a, b])
    assert isinstance(ens, EnsembleDreamer) and ens.name == "learned" and ens.horizon == 8
    assert isinstance(make_dreamer("learned", [a]), LearnedDreamer)
    trajs = batch["action"][:, None].repeat(1, 3, 1, 1).numpy()
    with torch.no_grad():
        latents = [a.encode(batch["obs"]), b.encode(batch["obs"])]
    mean = ens.dream(latents, trajs)
    da, db = (m.dream(z, trajs) for m, z in zip(ens.members, latents, strict=True))
    assert not np.allclose(da.progress, db.progress)  # two different models
    for name in ("ee_pos", "object_pos", "holding", "progress", "success"):
        want = (getattr(da, name) + getattr(db, name)) / 2
        np.testing.assert_allclose(getattr(mean, name), want, rtol=1e-6)
    longer = WorldModel(WorldModelConfig(**{**TINY_WM, "horizon": 4}), t.shapes, t.obs_low, t.obs_high,
                        t.action_low, t.action_high)
    with pytest.raises(ValueError, match=r"different horizons \[4, 8\]"):
        EnsembleDreamer([a, longer])
    with pytest.raises(ValueError, match="at least two world models"):
        EnsembleDreamer([a])
    with pytest.raises(ValueError, match="ensemble= adds world models"):
        EvalConfig(planner="value", dreamer="oracle", ensemble=["runs/x"])


def test_oracle_dream_data_trains_the_world_model(push_run, push_data, tmp_path):
    from policy.checkpoint import load_policy
    from policy.world_model.oracle_data import collect_oracle_dreams

    policy = load_policy(push_run)
    r = collect_oracle_dreams(policy, tmp_path / "dreams", episodes=2, seed=5, k=3, batch=2, progress=False)
    assert r["trajectories"] == 3 * r["decisions"] and r["decisions"] > 0
    cfg = WorldModelConfig(**TINY_WM)
    with_dreams = DreamTensors([DemoDataset(push_data)], cfg, [str(tmp_path / "dreams")])
    plain = DreamTensors([DemoDataset(push_data)], cfg)
    assert len(with_dreams) == len(plain) + r["trajectories"]
    # positions become displacements from where things were at the decision
    from policy.world_model.oracle_data import load_oracle_dreams

    _, raw = load_oracle_dreams(tmp_path / "dreams")
    e0 = with_dreams.shapes.offset("observation.ee_pose")
    ee_now = raw["obs"][:, -1, e0:e0 + 3]
    torch.testing.assert_close(with_dreams.tensors["ee_pos"][len(plain):] + ee_now[:, None], raw["ee_pos"])
    summary = train_world_model(WorldModelTrainConfig(
        data=[str(push_data)], oracle_dreams=[str(tmp_path / "dreams")], out=str(tmp_path / "wm"),
        world_model=dict(TINY_WM), steps=4, batch_size=16, rank_groups=2, log_every=2, warmup_steps=1,
        val_fraction=0.0, progress=False, rank_focus=0.5))
    assert summary["examples"] == len(with_dreams) and summary["steps"] == 4
    # decisions whose candidates all end alike have no spread for the focused draws to favour
    spread = with_dreams.group_spread(with_dreams.group_starts)
    final = with_dreams.tensors["progress"][with_dreams.group_starts[:, None] + torch.arange(3), -1]
    assert spread.shape == (r["decisions"],) and bool((spread >= 0).all())
    torch.testing.assert_close(spread == 0, (final == final[:, :1]).all(1))
    with pytest.raises(ValueError, match="rank_focus must lie in"):
        WorldModelTrainConfig(rank_focus=1.5)
    with pytest.raises(Exception, match="holds no oracle dreams"):
        DreamTensors([DemoDataset(push_data)], cfg, [str(tmp_path)])


def test_oracle_dreams_can_show_a_cube_moved_mid_episode(push_run, tmp_path):
    from policy.checkpoint import load_policy
    from policy.configs import CollectDreamsConfig
    from policy.evaluation import Displacement
    from policy.world_model.oracle_data import collect_oracle_dreams as collect
    from policy.world_model.oracle_data import load_oracle_dreams

    policy = load_policy(push_run)
    moved = collect(policy, tmp_path / "moved", episodes=1, seed=5, k=2, batch=1, progress=False,
                    displace=Displacement(step=3, cm=5.0))
    still = collect(policy, tmp_path / "still", episodes=1, seed=5, k=2, batch=1, progress=False)
    assert moved["displace"] == {"step": 3, "cm": 5.0} and still["displace"] is None
    _, a = load_oracle_dreams(tmp_path / "moved")
    _, b = load_oracle_dreams(tmp_path / "still")
    assert not torch.equal(a["object_pos"], b["object_pos"])  # the later decisions see the cube elsewhere
    with pytest.raises(ValueError, match="displace_step"):
        CollectDreamsConfig(displace_step=0)


def test_oracle_dreams_can_follow_the_best_candidate(push_run, tmp_path):
    from policy.checkpoint import load_policy
    from policy.configs import CollectDreamsConfig
    from policy.world_model.oracle_data import collect_oracle_dreams as collect
    from policy.world_model.oracle_data import load_oracle_dreams

    policy = load_policy(push_run)
    best = collect(policy, tmp_path / "best", episodes=1, seed=5, k=4, batch=1, progress=False,
                   execute="best")
    first = collect(policy, tmp_path / "first", episodes=1, seed=5, k=4, batch=1, progress=False)
    assert best["execute"] == "best" and first["execute"] == "first"
    _, a = load_oracle_dreams(tmp_path / "best")
    _, b = load_oracle_dreams(tmp_path / "first")
    n = min(len(a["obs"]), len(b["obs"]))
    torch.testing.assert_close(a["obs"][:4], b["obs"][:4])  # the same first state and candidates
    assert not torch.equal(a["obs"][:n], b["obs"][:n])  # then a different candidate was executed
    with pytest.raises(ValueError, match="execute must be one of first, best"):
        CollectDreamsConfig(execute="worst")
    with pytest.raises(ValueError, match="execute must be one of"):
        collect(policy, tmp_path / "x", episodes=1, seed=5, k=2, batch=1, progress=False, execute="worst")


def test_oracle_dreams_can_follow_the_learned_controller(push_run, push_wm, tmp_path):
    from policy.checkpoint import load_policy
    from policy.configs import CollectDreamsConfig
    from policy.world_model.oracle_data import collect_oracle_dreams as collect
    from policy.world_model.oracle_data import load_oracle_dreams

    policy = load_policy(push_run)
    learned = collect(policy, tmp_path / "learned", episodes=1, seed=5, k=4, batch=1, progress=False,
                      execute="learned", world_model=push_wm)
    collect(policy, tmp_path / "first", episodes=1, seed=5, k=4, batch=1, progress=False)
    assert learned["execute"] == "learned" and learned["world_model"] == str(push_wm)
    _, a = load_oracle_dreams(tmp_path / "learned")
    _, b = load_oracle_dreams(tmp_path / "first")
    # the first decision: the same state and candidates, and the recorded futures are the
    # simulator's (the audit's), not the learned model's dreams
    for key in ("obs", "action", "ee_pos", "object_pos", "progress", "success"):
        torch.testing.assert_close(a[key][:4], b[key][:4])
    assert learned["decisions"] > 1
    with pytest.raises(ValueError, match="execute=learned needs world_model"):
        CollectDreamsConfig(execute="learned")
    with pytest.raises(ValueError, match="world_model is used only with execute=learned"):
        CollectDreamsConfig(world_model=str(push_wm))
    with pytest.raises(ValueError, match="execute=learned needs world_model"):
        collect(policy, tmp_path / "x", episodes=1, seed=5, k=2, batch=1, progress=False, execute="learned")


def test_a_world_model_can_be_fine_tuned_from_a_trained_one(push_data, push_wm, tmp_path):
    start = load_world_model(push_wm)
    common = dict(data=[str(push_data)], steps=1, batch_size=8, log_every=1, warmup_steps=0,
                  val_fraction=0.0, progress=False, init=str(push_wm))
    small = {"horizon": 8, "latent_dim": 16, "d_model": 16, "layers": 1, "heads": 2}
    train_world_model(WorldModelTrainConfig(out=str(tmp_path / "tuned"), world_model=dict(small), lr=1e-12,
                                            **common))
    tuned = load_world_model(tmp_path / "tuned")
    for (name, a), b in zip(start.state_dict().items(), tuned.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)  # its weights and normalisation
    with pytest.raises(ValueError, match=r"different network: it has world_model.layers=1 \(asked 2\)"):
        train_world_model(WorldModelTrainConfig(out=str(tmp_path / "bad"), world_model={**small, "layers": 2},
                                                **common))


def test_a_policy_conditioned_on_the_world_models_latent_saves_and_loads(push_data, push_wm, tmp_path):
    from policy.checkpoint import load_policy
    from policy.configs import TrainConfig
    from policy.training.loop import train
    from tests.policy.conftest import TINY

    out = tmp_path / "shared"
    train(TrainConfig(data=str(push_data), out=str(out), policy=dict(TINY), world_model=str(push_wm),
                      steps=4, batch_size=8, log_every=2, save_every=4, eval_episodes=0, warmup_steps=1,
                      progress=False))
    policy = load_policy(out)
    wm = load_world_model(push_wm)
    assert policy.world_encoder is not None
    assert not any(p.requires_grad for p in policy.world_encoder.parameters())
    window = torch.zeros(2, 2, policy.shapes.obs_dim) + torch.as_tensor(wm.obs_norm.centre)
    torch.testing.assert_close(policy.world_encoder(window), wm.encode(window).z)  # the same encoder
    assert policy.encode(window).shape[1] == 2 * policy.shapes.obs_dim + wm.cfg.latent_dim


def test_rank_loss_sees_only_how_candidates_of_one_state_differ(push_tensors):
    wm = _wm(push_tensors)
    rows = torch.arange(8)
    batch = push_tensors.batch(rows)
    batch["obs"] = batch["obs"][:1].repeat(8, 1, 1)  # two groups of four sharing one state
    shifted = {k: v.clone() for k, v in batch.items()}
    shifted["progress"][:4] += 0.3  # a whole group moved together: nothing to rank differently
    shifted["object_pos"][4:] += 0.05
    torch.testing.assert_close(wm.rank_loss(batch, 4), wm.rank_loss(shifted, 4))
    shifted["progress"][0] += 0.3  # one candidate better than its siblings: the loss sees it
    assert not torch.isclose(wm.rank_loss(batch, 4), wm.rank_loss(shifted, 4))
    # which candidate holds the cube counts only with a rank_holding weight
    grasp = {k: v.clone() for k, v in batch.items()}
    grasp["holding"][0] = 1 - grasp["holding"][0]
    torch.testing.assert_close(wm.rank_loss(batch, 4), wm.rank_loss(grasp, 4))
    wm.cfg.loss_weights["rank_holding"] = 1.0
    assert not torch.isclose(wm.rank_loss(batch, 4), wm.rank_loss(grasp, 4))


def test_a_sort_world_model_reads_the_instruction(tmp_path):
    """On Sort, progress depends on which cube and pad are named: the latent must carry it."""
    from sim.collection import collect

    collect("sort", "panda", 2, tmp_path / "sort", num_envs=1, progress=False)
    data = DreamTensors([DemoDataset(tmp_path / "sort")], WorldModelConfig(**TINY_WM))
    assert data.shapes.uses_instruction and len(data.texts) == 2
    batch = data.batch(torch.arange(4))
    assert len(batch["instructions"]) == 4 and all(isinstance(t, str) for t in batch["instructions"])
    # each row's (cube, pad) label is what its demonstration did, which is what the words asked
    for row in (0, len(data) // 2, len(data) - 1):
        cube, pad = parse_instruction(data.texts[int(data.text_index[row])])
        assert int(data.pair[row]) == CUBE_COLOURS.index(cube) * 2 + PAD_COLOURS.index(pad)
    wm = _wm(data).eval()
    with pytest.raises(ValueError, match="needs one instruction per observation window"):
        wm.encode(batch["obs"])
    z_a = wm.encode(batch["obs"], ["put the red cube on the blue pad"] * 4).z
    z_b = wm.encode(batch["obs"], ["put the green cube on the yellow pad"] * 4).z
    assert not torch.allclose(z_a, z_b)
    assert wm.encode(batch["obs"], batch["instructions"]).grounding.shape == (4, 3, 2)
    loss, terms = wm.compute_loss(batch)
    assert torch.isfinite(loss) and terms["grounding"] > 0
    c = WorldModelTrainConfig(data=[str(tmp_path / "sort")], out=str(tmp_path / "wm"),
                              world_model=dict(TINY_WM), steps=3, batch_size=8, log_every=1,
                              warmup_steps=1, val_fraction=0.4, progress=False)
    train_world_model(c)
    loaded = load_world_model(tmp_path / "wm", task="sort")
    assert loaded.shapes.uses_instruction and hasattr(loaded, "text")
    # it knows which words it was trained on, so a planner can tell when to trust its reading
    assert set(loaded.shapes.vocabulary) == {w for t in data.texts for w in words(t)}
    dreamer = LearnedDreamer(loaded)
    assert dreamer.reads(data.texts[0].upper()) is True
    assert dreamer.reads("could you drop the scarlet brick onto the amber tile") is False
    assert WorldShapes.from_json({**loaded.shapes.to_json(), "vocabulary": []}).reads("put") is None
    # the controller hands the planner the model's grounding and whether it knows the words
    from policy.checkpoint import load_policy
    from policy.configs import TrainConfig
    from policy.controller import Controller, ControllerConfig
    from policy.planners.value import ValuePlanner
    from policy.training.loop import train
    from tests.policy.conftest import TINY

    train(TrainConfig(data=str(tmp_path / "sort"), out=str(tmp_path / "policy"), policy=dict(TINY),
                      steps=2, batch_size=8, log_every=1, save_every=2, eval_episodes=0, warmup_steps=1,
                      progress=False))
    ctrl = Controller(load_policy(tmp_path / "policy"), dreamer, ValuePlanner(), ControllerConfig(k=2))
    env = ReverieEnv("sort", "panda")
    obs, _ = env.reset(seed=1)
    ctrl.reset([env])
    ctrl.select_action(obs, generator=torch.Generator().manual_seed(0))
    q = ctrl._query(np.zeros((2, 16, 8)), None, obs, 0)
    assert q.grounding.shape == (3, 2) and q.dreamer_reads is True and q.exact is False
