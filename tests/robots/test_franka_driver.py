"""The Franka driver against a mocked ``franky`` that records the exact calls made."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from robots import keys
from robots.drivers.base import RobotError, SafeRobot
from robots.drivers.franka import FrankaDriver
from robots.safety import UnsafeCommand


class FakeFranky:
    """Stands in for the module: a Robot and a Gripper that log every call."""

    class Exception(Exception):  # franky names its base exception Exception
        pass

    def __init__(self, q=None, recoverable: bool = True) -> None:
        self.log: list[tuple] = []
        self.q = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]) if q is None else q
        self.width = 0.08
        self.pending_error: str | None = None
        fake = self

        class Robot:
            def __init__(self, host):
                fake.log.append(("Robot", host))
                self._factor = 1.0

            @property
            def relative_dynamics_factor(self):
                return self._factor

            @relative_dynamics_factor.setter
            def relative_dynamics_factor(self, v):
                fake.log.append(("factor", v))
                self._factor = v

            def recover_from_errors(self):
                fake.log.append(("recover",))
                return recoverable

            @property
            def current_joint_state(self):
                return SimpleNamespace(position=fake.q.copy(), velocity=np.zeros(7))

            def poll_motion(self):
                if fake.pending_error:
                    msg, fake.pending_error = fake.pending_error, None
                    raise FakeFranky.Exception(msg)
                return True

            def move(self, motion, asynchronous=False):
                fake.log.append(("move", motion, asynchronous))

            def join_motion(self, timeout=None):
                fake.log.append(("join", timeout))
                return True

        class Gripper:
            def __init__(self, host):
                fake.log.append(("Gripper", host))

            @property
            def width(self):
                return fake.width

            def move_async(self, width, speed):
                fake.log.append(("gripper", width, speed))

        self.Robot, self.Gripper = Robot, Gripper
        self.ReferenceType = SimpleNamespace(Absolute="absolute", Relative="relative")
        self.JointMotion = lambda target, ref: ("JointMotion", tuple(target), ref)
        self.JointStopMotion = lambda: ("JointStopMotion",)


def test_connect_then_each_command_is_one_preempting_joint_motion():
    fr = FakeFranky()
    with FrankaDriver("10.0.0.2", relative_dynamics_factor=0.3, franky=fr) as arm:
        assert fr.log[:4] == [("Robot", "10.0.0.2"), ("factor", 0.3), ("recover",), ("Gripper", "10.0.0.2")]
        obs = arm.get_observation()
        np.testing.assert_allclose(obs[keys.JOINT_POS], fr.q)
        assert obs[keys.GRIPPER] == pytest.approx([0.04])  # per finger: half the total width
        target = np.append(fr.q + 0.01, 0.03)
        arm.send_action(target)
        assert fr.log[-2] == ("move", ("JointMotion", tuple(target[:7]), "absolute"), True)
        assert fr.log[-1] == ("gripper", pytest.approx(0.06), 0.05)
        arm.send_action(np.append(fr.q + 0.02, 0.0305))  # gripper change under the tolerance: not sent
        assert fr.log[-1][0] == "move"
    assert fr.log[-2:] == [("move", ("JointStopMotion",), True), ("join", 2.0)]


def test_an_error_of_the_running_motion_surfaces_at_the_next_command():
    fr = FakeFranky()
    with FrankaDriver(franky=fr) as arm:
        fr.pending_error = "joint velocity violation"
        with pytest.raises(RobotError, match="joint velocity violation"):
            arm.send_action(np.append(fr.q, 0.04))
    with pytest.raises(RobotError, match="cannot recover"):
        FrankaDriver(franky=FakeFranky(recoverable=False)).connect()
    with pytest.raises(ValueError, match="relative_dynamics_factor"):
        FrankaDriver(relative_dynamics_factor=1.5)


def test_below_the_safety_layer_nothing_unsafe_reaches_franky():
    fr = FakeFranky()
    with SafeRobot(FrankaDriver(franky=fr)) as robot:
        moves = len([e for e in fr.log if e[0] == "move"])
        with pytest.raises(UnsafeCommand):
            robot.send_action(np.append(fr.q, np.inf))
        assert len([e for e in fr.log if e[0] == "move"]) == moves
        robot.send_action(np.append(fr.q + np.r_[1.0, np.zeros(6)], 0.04))  # a 1 rad jump asked for
        sent = np.array(fr.log[-1][1][1] if fr.log[-1][0] == "move" else fr.log[-2][1][1])
        assert abs(sent[0] - fr.q[0]) <= 2.175 * 0.01 + 1e-9  # one 100 Hz step at the velocity limit
