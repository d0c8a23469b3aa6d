"""The physics dreamer: MuJoCo set from the observation alone reproduces the simulation's future,
its deliberate errors change that future, and it refuses what it cannot model."""

from __future__ import annotations

import numpy as np
import pytest

from policy.configs import EvalConfig
from policy.dreamers import OracleDreamer, make_dreamer
from policy.physics_dreamer import PhysicsDreamer, PhysicsDreamerConfig, simplex_offsets, stable_steps
from sim import keys
from sim.env import ReverieEnv
from sim.experts import EXPERTS


def _mid_episode(task: str, steps: int, seed: int = 4):
    """An environment an expert has driven for ``steps`` (the arm moving, perhaps at the cube),
    with its last two observations."""
    env = ReverieEnv(task, "panda")
    obs, _ = env.reset(seed=seed)
    expert = EXPERTS[task](env.robot, env.task.ws)
    expert.reset(obs, np.random.default_rng(seed))
    history = [obs]
    for _ in range(steps):
        obs, *_ = env.step(expert.act(obs))
        history.append(obs)
    return env, history[-2:]


def _candidates(obs, k: int, h: int, seed: int = 0) -> np.ndarray:
    """(1, k, h, A) smooth joint-target paths from where the arm is."""
    rng = np.random.default_rng(seed)
    start = np.append(obs[keys.JOINT_POS], obs[keys.GRIPPER])
    drift = rng.normal(0.0, 0.01, (k, 1, start.size)) * np.arange(1, h + 1)[None, :, None]
    drift[..., -1] = 0.0
    return (start + drift)[None]


def _carry(h: int = 4):
    """PickPlace mid-carry: the environment, its last two observations as one-row history, and two
    candidates of ``h`` steps from there."""
    env, history = _mid_episode("pick_place", 40)
    return env, [[o] for o in history], _candidates(history[-1], k=2, h=h)


def _assert_the_mean_of(parts, mixed) -> None:
    """``mixed`` dreams the average of ``parts``' positions and holding shares, and keeps each
    part's dream as one of its draws, for a planner that scores them one by one."""
    assert len(mixed.draws) == len(parts)
    for draw, part in zip(mixed.draws, parts, strict=True):
        np.testing.assert_allclose(draw.object_pos, part.object_pos, atol=1e-9)
        np.testing.assert_array_equal(draw.holding, part.holding)
    np.testing.assert_allclose(mixed.object_pos, np.mean([p.object_pos for p in parts], axis=0), atol=1e-9)
    np.testing.assert_allclose(mixed.ee_pos, np.mean([p.ee_pos for p in parts], axis=0), atol=1e-9)
    np.testing.assert_allclose(mixed.holding, np.mean([p.holding for p in parts], axis=0))


@pytest.mark.parametrize(("task", "steps"), [("push", 30), ("pick_place", 40)])
def test_rebuilt_from_the_observation_it_dreams_what_the_simulator_does(task, steps):
    env, history = _mid_episode(task, steps)
    trajs = _candidates(history[-1], k=3, h=8)
    oracle = OracleDreamer(8)
    oracle.attach([env])
    truth = oracle.dream(oracle.encode([[o] for o in history]), trajs)
    physics = PhysicsDreamer(task, "panda", horizon=8)
    physics.attach([env])
    dreams = physics.dream(physics.encode([[o] for o in history]), trajs)
    moved = np.linalg.norm(truth.object_pos[0, :, -1, 0] - history[-1][keys.OBJECT_POSES][0, :3], axis=-1)
    assert moved.max() > 0.02  # pushed or carried: the test is about contact, not a cube at rest
    # the tool follows the same targets from the same joints; the cube from its observed pose
    assert np.abs(dreams.ee_pos - truth.ee_pos).max() < 2e-3
    assert np.abs(dreams.object_pos - truth.object_pos).max() < 5e-3
    np.testing.assert_array_equal(dreams.holding, truth.holding)
    assert not dreams.progress.any()  # left to the planner's objective: the dreamer is not exact
    assert physics.exact is False


def test_its_deliberate_errors_move_the_dreamed_cube():
    env, history = _mid_episode("push", 2)  # the cube at rest, far from the tool
    trajs = _candidates(history[-1], k=2, h=4)
    seen = [[o] for o in history]
    faithful = PhysicsDreamer("push", "panda", horizon=4)
    noisy = PhysicsDreamer("push", "panda", horizon=4, cfg=PhysicsDreamerConfig(pose_noise_mm=10, seed=1))
    a = faithful.dream(faithful.encode(seen), trajs).object_pos[0, 0, -1, 0]
    b = noisy.dream(noisy.encode(seen), trajs).object_pos[0, 0, -1, 0]
    cube = history[-1][keys.OBJECT_POSES][0, :3]
    assert np.linalg.norm(a[:2] - cube[:2]) < 1e-3
    assert 1e-3 < np.linalg.norm(b[:2] - a[:2]) < 0.05
    slippery = PhysicsDreamer("push", "panda", cfg=PhysicsDreamerConfig(friction=0.5, mass=2.0))
    body = slippery.env.scene.model.body(slippery.env.task.cubes[0]).id
    assert slippery.env.scene.model.body_mass[body] == pytest.approx(2 * env.scene.model.body_mass[body])


def test_it_refuses_what_it_cannot_model():
    with pytest.raises(ValueError, match="fixed cube and target"):
        PhysicsDreamer("sort", "panda")
    with pytest.raises(ValueError, match="must be > 0"):
        PhysicsDreamerConfig(friction=0)
    with pytest.raises(ValueError, match="standard deviation"):
        PhysicsDreamerConfig(pose_noise_mm=-1)
    with pytest.raises(ValueError, match="hedge_mm is a standard deviation"):
        PhysicsDreamerConfig(hedge_mm=-1)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        PhysicsDreamerConfig(threads=0)
    physics = PhysicsDreamer("push", "panda")
    with pytest.raises(ValueError, match="controls"):
        physics.attach([ReverieEnv("pick_place", "panda")])
    _, history = _mid_episode("push", 1)
    blind = {k: v for k, v in history[-1].items() if k != keys.OBJECT_POSES}
    with pytest.raises(ValueError, match="rebuilds the scene from"):
        physics.encode([[blind]])
    with pytest.raises(ValueError, match="pass both"):
        make_dreamer("physics")
    with pytest.raises(ValueError, match="drop world_model"):
        EvalConfig(planner="value", dreamer="physics", world_model="runs/x")


def test_its_variants_dream_the_average_of_models_from_slippery_and_heavy_to_grippy_and_light():
    env, seen, trajs = _carry()
    hedged = PhysicsDreamer("pick_place", "panda", horizon=4,
                            cfg=PhysicsDreamerConfig(variants=3, spread=0.5))
    body = env.scene.model.body(env.task.cubes[0]).id
    assert [v.scene.model.body_mass[body] / env.scene.model.body_mass[body] for v in hedged.variants] == \
        pytest.approx([1.5, 1.0, 0.5])
    singles = [PhysicsDreamer("pick_place", "panda", horizon=4, cfg=PhysicsDreamerConfig(friction=f, mass=w))
               for f, w in ((0.5, 1.5), (1.0, 1.0), (1.5, 0.5))]
    parts = [s.dream(s.encode(seen), trajs) for s in singles]
    _assert_the_mean_of(parts, hedged.dream(hedged.encode(seen), trajs))
    with pytest.raises(ValueError, match="several variants and a spread"):
        PhysicsDreamerConfig(variants=3)


def test_a_rollout_mujoco_finds_unstable_is_counted_and_held_not_taken_from_the_reset_state():
    _, history = _mid_episode("push", 2)
    physics = PhysicsDreamer("push", "panda", horizon=4)
    latent = physics.encode([[o] for o in history])
    latent[0].cube_vel[:] = 1e12  # a nonsense velocity estimate: the simulation blows up at once
    dreams = physics.dream(latent, _candidates(history[-1], k=2, h=4))
    assert physics.diverged == physics.rollouts == 2
    start = np.broadcast_to(latent[0].cubes[0, :3], (2, 4, 3))
    np.testing.assert_allclose(dreams.object_pos[0, :, :, 0], start, atol=1e-6)
    assert np.isfinite(dreams.ee_pos).all()


@pytest.mark.parametrize("sigma", [(0.005, 0.005, 0.0), (0.005, 0.005, 0.09), (0.0, 0.0, 0.09),
                                   (0.0, 0.0, 0.0)])
def test_the_hedge_points_have_the_pose_errors_mean_and_covariance(sigma):
    sigma = np.array(sigma)
    points = simplex_offsets(sigma)
    n = int((sigma > 0).sum())
    assert points.shape == (n + 1, 3)
    np.testing.assert_allclose(points.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(points.T @ points / len(points), np.diag(sigma**2), atol=1e-12)


def test_a_hedged_dream_is_the_average_of_dreams_from_the_cube_read_at_each_hedge_point():
    _, seen, trajs = _carry()
    hedged = PhysicsDreamer("pick_place", "panda", horizon=4,
                            cfg=PhysicsDreamerConfig(hedge_mm=5, hedge_deg=5))
    assert len(hedged.hedges) == 4 and np.abs(hedged.hedges[:, :2]).max() > 5e-3
    faithful = PhysicsDreamer("pick_place", "panda", horizon=4)
    parts = []
    for dx, dy, yaw in hedged.hedges:
        latent = faithful.encode(seen)
        latent[0].cubes[:, :2] += (dx, dy)
        c, s = np.cos(yaw / 2), np.sin(yaw / 2)
        w, x, y, z = latent[0].cubes[0, 3:]
        latent[0].cubes[0, 3:] = (c * w - s * z, c * x - s * y, c * y + s * x, c * z + s * w)  # yaw first
        parts.append(faithful.dream(latent, trajs))
    mixed = hedged.dream(hedged.encode(seen), trajs)
    assert hedged.rollouts == 4 * 2
    _assert_the_mean_of(parts, mixed)
    spread = np.ptp([p.object_pos[0, 0, 0, 0, :2] for p in parts], axis=0)
    assert spread.max() > 5e-3  # the readings really differ


def test_spread_over_threads_it_dreams_exactly_what_it_dreams_on_one():
    _, history = _mid_episode("pick_place", 40)
    trajs = np.concatenate([_candidates(history[-1], k=5, h=6, seed=s) for s in (0, 1)])
    seen = [[o, o] for o in history]  # two rows: the same state, different candidates
    one = PhysicsDreamer("pick_place", "panda", horizon=6, cfg=PhysicsDreamerConfig(hedge_mm=3))
    three = PhysicsDreamer("pick_place", "panda", horizon=6, cfg=PhysicsDreamerConfig(hedge_mm=3, threads=3))
    a, b = one.dream(one.encode(seen), trajs), three.dream(three.encode(seen), trajs)
    np.testing.assert_array_equal(a.object_pos, b.object_pos)
    np.testing.assert_array_equal(a.ee_pos, b.ee_pos)
    assert three.rollouts == 3 * 2 * 5 and three.diverged == 0
    assert not np.array_equal(a.object_pos[0], a.object_pos[1])  # the rows stay apart


def test_a_repeated_state_marks_the_control_step_that_went_unstable():
    ns, h = 5, 4
    rng = np.random.default_rng(0)
    states = np.column_stack([0.002 * np.arange(1, h * ns + 2), rng.normal(size=(h * ns + 1, 3))])
    assert stable_steps(states, ns, h) == h  # healthy: one physics step past the horizon
    failed = states.copy()
    failed[12] = (0.002, 0.0, 0.0, 0.0)  # step 12 (in control step 2) reset the state ...
    failed[13:] = failed[12]  # ... and the rollout repeated it from then on
    assert stable_steps(failed, ns, h) == 2
    last = states.copy()
    last[-1] = (0.002, 0.0, 0.0, 0.0)  # only the extra step past the horizon failed: the dream is whole
    assert stable_steps(last, ns, h) == h
    in_last = states.copy()
    in_last[-1] = in_last[-2]  # the horizon's last physics step failed: its control step is lost
    assert stable_steps(in_last, ns, h) == h - 1
    first = np.broadcast_to(states[0], states.shape)
    assert stable_steps(first, ns, h) == 0
