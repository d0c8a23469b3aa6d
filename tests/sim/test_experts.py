"""Experts solve their tasks on both robots, are multimodal, and can be made to fail."""

from __future__ import annotations

import numpy as np
import pytest

from sim.collection import rollouts
from sim.experts import EXPERTS
from sim.experts.push import MODES
from sim.registry import ENV_IDS, TASKS


def test_every_task_has_an_expert():
    assert set(EXPERTS) == set(TASKS)


@pytest.mark.parametrize(("task", "robot"), sorted(ENV_IDS.values()))
def test_expert_solves_seeded_episodes(task, robot):
    episodes = list(rollouts(task, robot, episodes=3, seed=0, num_envs=1))
    assert [e.success for e in episodes] == [True, True, True]
    assert all(e.length < TASKS[task].max_steps for e in episodes)


def test_push_expert_is_multimodal():
    from robots.registry import get_robot
    from sim.env import ReverieEnv
    from sim.workspace import WORKSPACES

    env = ReverieEnv("push", "panda")
    expert = EXPERTS["push"](get_robot("panda"), WORKSPACES["panda"])
    modes, first_dirs = set(), []
    for seed in range(12):
        obs, _ = env.reset(seed=0)  # the same scene every time: only the expert's choice differs
        expert.reset(obs, np.random.default_rng(seed))
        modes.add(expert.mode)
        first_dirs.append(expert.dir.copy())
    assert modes == set(MODES)
    # Approach directions from different sides of the cube, not one line.
    angles = {round(float(np.degrees(np.arctan2(d[1], d[0])))) for d in first_dirs}
    assert len(angles) >= 2


def test_noise_and_perturbation_produce_failures():
    outcomes = [e.success for e in rollouts("pick_place", "panda", episodes=8, seed=0,
                                           num_envs=2, noise=0.08, perturb=1.0)]
    assert not all(outcomes)


def test_equivalent_yaws_are_chosen_in_one_window_away_from_the_axes():
    from robots.registry import get_robot
    from sim.experts.base import wrap_yaw

    centre = get_robot("panda").tool_yaw_centre
    # a push along +y or -y, a hair either side of the axis: the same wrist angle every time
    # (centred on 0 the wrap sat exactly on these, and float noise picked +pi/2 or -pi/2)
    along_y = [wrap_yaw(np.arctan2(s, e) + np.pi, np.pi, centre) for s in (1, -1) for e in (1e-9, -1e-9)]
    np.testing.assert_allclose(along_y, np.pi / 2)
    assert wrap_yaw(np.pi, np.pi, centre) == pytest.approx(0.0)  # along x
    np.testing.assert_allclose([wrap_yaw(a, 2 * np.pi) for a in (np.pi, -np.pi / 2, 3 * np.pi / 2)],
                               [np.pi, -np.pi / 2, -np.pi / 2])  # SO-101 (one jaw): as before, (-pi, pi]


def test_push_demonstrations_turn_the_panda_wrist_one_way_for_the_same_tool_yaw():
    """Joint 7 minus joint 1 follows the tool's yaw up to a constant on one branch only: the
    demonstrations never reach the same hand orientation by the opposite half turn of the wrist."""
    from robots.registry import get_robot
    from sim import keys
    from sim.experts.base import ee_yaw, wrap_yaw

    centre = get_robot("panda").tool_yaw_centre
    offsets = []
    for e in rollouts("push", "panda", episodes=6, seed=0, num_envs=1):
        q = np.stack(e.frames["observation.state"])
        yaw = [ee_yaw({keys.EE_POSE: pose}) for pose in e.frames["observation.ee_pose"]]
        offsets += list(q[:, 6] - q[:, 0] + np.array([wrap_yaw(a, np.pi, centre) for a in yaw]))
    assert np.ptp(offsets) < 2.0  # one branch (two would lie pi apart)
