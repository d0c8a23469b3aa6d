"""The MuJoCo-simulated arm: its own process, the Robot interface, physics that runs on its own."""

from __future__ import annotations

import time

import numpy as np
import pytest

from robots import keys
from robots.drivers.base import SafeRobot
from robots.drivers.mujoco import MujocoRobot
from robots.registry import get_robot


def test_the_simulated_arm_follows_commands_when_stepped():
    rb = get_robot("so101")
    with MujocoRobot("so101", realtime=False) as arm:
        obs = arm.get_observation()
        np.testing.assert_allclose(obs[keys.JOINT_POS], rb.home, atol=1e-6)
        target = rb.home_action + np.r_[0.2, np.zeros(rb.n_joints)]
        assert np.array_equal(arm.send_action(target), target)
        arm.advance(round(1.0 / arm.dt))  # one simulated second
        obs = arm.get_observation()
        assert obs[keys.JOINT_POS][0] == pytest.approx(target[0], abs=0.01)
        assert obs["sim_time"] == pytest.approx(1.0)


def test_real_time_physics_runs_on_its_own_clock():
    with MujocoRobot("so101") as arm:
        t0 = arm.get_observation()["sim_time"]
        time.sleep(0.3)
        elapsed = arm.get_observation()["sim_time"] - t0
    assert 0.2 < elapsed < 0.6


def test_a_dead_arm_process_is_reported_and_the_stop_holds_position():
    rb = get_robot("panda")
    with SafeRobot(MujocoRobot("panda", realtime=False)) as robot:
        robot.driver.advance(10)
        robot.driver.stop()
        held = robot.get_observation()[keys.JOINT_POS]
        robot.driver.advance(200)
        np.testing.assert_allclose(robot.get_observation()[keys.JOINT_POS], held, atol=2e-3)
        robot.driver._proc.kill()
        robot.driver._proc.join()
        with pytest.raises(RuntimeError, match="not running"):
            robot.get_observation()
    assert rb.n_joints == 7
