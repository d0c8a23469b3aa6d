"""Every registered environment passes gymnasium's checker, seeds deterministically, and
refuses bad actions clearly."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim import keys
from sim.env import ReverieEnv
from sim.registry import ENV_IDS, TASKS, env_id


@pytest.mark.parametrize("gym_id", sorted(ENV_IDS))
def test_every_env_passes_check_env(gym_id):
    env = gym.make(gym_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    for _ in range(3):
        obs, _, _, _, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert 0.0 <= info["progress"] <= 1.0 and isinstance(info["success"], bool)
        for v in obs.values():
            assert not isinstance(v, np.ndarray) or np.all(np.isfinite(v))
    env.close()


def test_registry_covers_every_task_on_both_robots():
    assert {t for t, _ in ENV_IDS.values()} == set(TASKS)
    assert {r for _, r in ENV_IDS.values()} == {"panda", "so101"}
    assert env_id("pick_place", "so101") == "reverie/PickPlace-SO101-v0"


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match=r"unknown task 'stack'.*reach, push, pick_place, sort"):
        sim.env_id("stack", "panda")


def test_same_seed_same_episode():
    a, b = ReverieEnv("sort", "panda"), ReverieEnv("sort", "panda")
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset(seed=11)
    oc, _ = b.reset(seed=12)
    assert oa[keys.INSTRUCTION] == ob[keys.INSTRUCTION]
    np.testing.assert_array_equal(oa[keys.OBJECT_POSES], ob[keys.OBJECT_POSES])
    assert not np.array_equal(oa[keys.OBJECT_POSES], oc[keys.OBJECT_POSES])
    act = a.robot.home_action
    for _ in range(5):
        oa = a.step(act)[0]
    b.reset(seed=11)
    for _ in range(5):
        ob = b.step(act)[0]
    np.testing.assert_array_equal(oa[keys.JOINT_POS], ob[keys.JOINT_POS])


def test_nan_and_wrong_shape_are_refused_before_the_simulator():
    env = ReverieEnv("push", "panda")
    env.reset(seed=0)
    qpos = env.scene.data.qpos.copy()
    bad = env.robot.home_action.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf for \\['panda_joint3'\\]"):
        env.step(bad)
    with pytest.raises(ValueError, match=r"shape \(7,\).*expects \(8,\)"):
        env.step(np.zeros(7))
    np.testing.assert_array_equal(env.scene.data.qpos, qpos)  # nothing moved


def test_out_of_range_is_clamped_or_refused():
    env = ReverieEnv("reach", "so101")
    env.reset(seed=0)
    a = env.robot.home_action.copy()
    a[0] = 10.0
    _, _, _, _, info = env.step(a)
    assert info["action_clipped"]
    np.testing.assert_allclose(env.scene.data.ctrl[env.scene.actuators[0]], env.robot.joint_upper[0])
    strict = ReverieEnv("reach", "so101", out_of_range="error")
    strict.reset(seed=0)
    with pytest.raises(ValueError, match=r"shoulder_pan=10\.0000 not in"):
        strict.step(a)


def test_control_and_sim_dt_are_kept_apart_and_checked():
    env = ReverieEnv("reach", "panda", control_dt=0.05, sim_dt=0.001)
    assert env.n_substeps == 50 and env.metadata["render_fps"] == 20
    assert env.scene.model.opt.timestep == pytest.approx(0.001)
    with pytest.raises(ValueError, match="whole multiple"):
        ReverieEnv("reach", "panda", control_dt=0.1, sim_dt=0.003)


def test_time_limit_truncates():
    env = ReverieEnv("push", "panda", max_episode_steps=3)
    env.reset(seed=0)
    flags = [env.step(env.robot.home_action)[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_rgb_rendering_headless():
    env = ReverieEnv("push", "panda", render_mode="rgb_array", width=64, height=48, camera_obs=True)
    obs, _ = env.reset(seed=0)
    img = env.render()
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and img.std() > 1
    assert obs[keys.IMAGE].shape == (48, 64, 3)
    env.close()


def test_simulator_instability_is_reported_not_silently_reset():
    env = ReverieEnv("push", "panda")
    env.reset(seed=0)
    env.scene.data.qvel[0] = np.nan  # a blow-up, as a broken scene would produce
    with pytest.raises(RuntimeError, match="simulation diverged"):
        env.step(env.robot.home_action)


@pytest.mark.parametrize("task", list(TASKS))
def test_place_goal_puts_every_task_goal_back(task):
    """Replaying a dataset relies on it: a recorded goal vector puts the markers where they were."""
    env = ReverieEnv(task, "panda")
    obs, _ = env.reset(seed=3)
    before = env.scene.data.mocap_pos.copy()
    env.scene.data.mocap_pos[:] = 9.0
    env.task.place_goal(env.scene, obs[keys.GOAL])
    np.testing.assert_allclose(env.scene.data.mocap_pos, before)
    with pytest.raises(ValueError, match="does not place"):
        env.task.place_goal(env.scene, np.zeros(obs[keys.GOAL].size + 1))


@pytest.mark.parametrize("task", ["push", "pick_place", "sort"])
def test_progress_starts_from_where_the_cube_was_placed(task):
    """Nothing has been carried at reset, so progress is at most the reaching stage, on every
    episode of one env (a start distance read from the previous episode's cube once made Sort's
    progress begin at the carrying stage)."""
    env = ReverieEnv(task, "panda")
    for seed in range(8):
        env.reset(seed=seed)
        assert env.task.progress(env.scene) <= 0.2 + 1e-9, f"seed {seed}"
