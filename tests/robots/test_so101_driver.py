"""The SO-101 driver against a mocked Feetech SDK that checks the exact bytes each call puts on the bus."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from robots import keys
from robots.drivers.base import RobotError, SafeRobot
from robots.drivers.so101 import (
    GOAL_POSITION,
    PRESENT_POSITION,
    TORQUE_ENABLE,
    So101Calibration,
    So101Driver,
)
from robots.safety import SafetyConfig, UnsafeCommand


class FakeBus:
    """Six STS3215 servos: raw positions and velocities, and a log of every bus transaction."""

    def __init__(self, missing: tuple[int, ...] = ()) -> None:
        self.pos = {i: 2048 for i in range(1, 7)}
        self.vel = {i: 0 for i in range(1, 7)}
        self.missing = set(missing)
        self.log: list[tuple] = []
        self.fail_write = False

    def sdk(self):
        bus = self

        class PortHandler:
            def __init__(self, name):
                self.name = name

            def openPort(self):
                bus.log.append(("open", self.name))
                return True

            def setBaudRate(self, baud):
                bus.log.append(("baud", baud))
                return baud == 1_000_000

            def closePort(self):
                bus.log.append(("close",))

        class Packet:
            def ping(self, port, mid):
                return 777, (-6 if mid in bus.missing else 0), 0

            def write1ByteTxRx(self, port, mid, addr, value):
                bus.log.append(("write1", mid, addr, value))
                return 0, 0

            def getTxRxResult(self, result):
                return f"result {result}"

        class GroupSyncWrite:
            def __init__(self, port, packet, start, length):
                assert (start, length) == (GOAL_POSITION, 2)
                self.params = {}

            def clearParam(self):
                self.params = {}

            def addParam(self, mid, data):
                assert mid not in self.params and len(data) == 2
                self.params[mid] = list(data)
                return True

            def txPacket(self):
                bus.log.append(("syncwrite", dict(self.params)))
                if bus.fail_write:
                    return -2
                for mid, (lo, hi) in self.params.items():
                    bus.pos[mid] = lo | hi << 8
                return 0

        class GroupSyncRead:
            def __init__(self, port, packet, start, length):
                assert (start, length) == (PRESENT_POSITION, 4)
                self.ids = []

            def addParam(self, mid):
                self.ids.append(mid)
                return True

            def txRxPacket(self):
                return 0

            def isAvailable(self, mid, addr, length):
                return mid in self.ids

            def getData(self, mid, addr, length):
                return bus.pos[mid] if addr == PRESENT_POSITION else bus.vel[mid]

        return SimpleNamespace(PortHandler=PortHandler, PacketHandler=lambda end: Packet(), COMM_SUCCESS=0,
                               GroupSyncWrite=GroupSyncWrite, GroupSyncRead=GroupSyncRead)


def test_connect_enables_torque_and_a_command_is_one_little_endian_sync_write():
    bus = FakeBus()
    with So101Driver("/dev/ttyFAKE", sdk=bus.sdk()) as arm:
        assert bus.log[:2] == [("open", "/dev/ttyFAKE"), ("baud", 1_000_000)]
        torque_on = [("write1", i, TORQUE_ENABLE, 1) for i in range(1, 7)]
        assert [e for e in bus.log if e[0] == "write1"] == torque_on
        target = np.array([0.1, -0.2, 0.0, 0.5, -1.0, 0.3])
        sent = arm.send_action(target)
        raw = [round(2048 + v * 4096 / (2 * math.pi)) for v in target]
        assert bus.log[-1] == ("syncwrite", {i + 1: [r & 0xFF, r >> 8] for i, r in enumerate(raw)})
        np.testing.assert_allclose(sent, target, atol=2 * math.pi / 4096)  # quantised to a servo step
        obs = arm.get_observation()
        np.testing.assert_allclose(obs[keys.JOINT_POS], sent[:5])
        np.testing.assert_allclose(obs[keys.GRIPPER], sent[5:])
    torque_off = [("write1", i, TORQUE_ENABLE, 0) for i in range(1, 7)]
    assert [e for e in bus.log if e[0] == "write1"][-6:] == torque_off
    assert bus.log[-1] == ("close",)


def test_velocity_is_sign_magnitude_and_the_calibration_turns_joints_around(tmp_path):
    bus = FakeBus()
    bus.pos[2], bus.vel[2] = 2048 + 100, (1 << 15) | 400  # 400 steps/s backwards
    path = tmp_path / "so101.json"
    names = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    path.write_text(json.dumps({"mid": dict.fromkeys(names, 2048), "sign": {"shoulder_lift": -1}}))
    with So101Driver(calibration=str(path), sdk=bus.sdk()) as arm:
        obs = arm.get_observation()
    step = 2 * math.pi / 4096
    assert obs[keys.JOINT_POS][1] == pytest.approx(-100 * step)
    assert obs[keys.JOINT_VEL][1] == pytest.approx(400 * step)


def test_missing_motors_bad_calibration_and_bus_errors_are_named(tmp_path):
    with pytest.raises(RobotError, match=r"motor 3 \(elbow_flex\) does not answer"):
        So101Driver(sdk=FakeBus(missing=(3,)).sdk()).connect()
    with pytest.raises(ValueError, match="mid of wrist_roll lies outside"):
        So101Calibration(mid=(2048, 2048, 2048, 2048, 5000, 2048))
    bad = tmp_path / "bad.json"
    bad.write_text("{\"mid\": {\"shoulder_pan\": 1}}")
    with pytest.raises(ValueError, match="unreadable or incomplete"):
        So101Calibration.load(bad)
    bus = FakeBus()
    with So101Driver(sdk=bus.sdk()) as arm:
        bus.fail_write = True
        with pytest.raises(RobotError, match="writing goal positions failed"):
            arm.send_action(np.zeros(6))
    with pytest.raises(RobotError, match="not connected"):
        So101Driver(sdk=FakeBus().sdk()).send_action(np.zeros(6))


def test_below_the_safety_layer_nan_never_reaches_the_bus_and_big_jumps_arrive_small():
    bus = FakeBus()
    with SafeRobot(So101Driver(sdk=bus.sdk()), SafetyConfig(max_step=0.02)) as robot:
        writes = len([e for e in bus.log if e[0] == "syncwrite"])
        with pytest.raises(UnsafeCommand):
            robot.send_action(np.array([np.nan, 0, 0, 0, 0, 0]))
        assert len([e for e in bus.log if e[0] == "syncwrite"]) == writes
        for _ in range(50):
            before = dict(bus.pos)
            robot.send_action(np.array([1.5, 0, 0, 0, 0, 0]))
            assert abs(bus.pos[1] - before[1]) <= math.ceil(0.02 / (2 * math.pi / 4096))
        # stop holds where the arm is
        robot.driver.stop()
        assert bus.log[-1][0] == "syncwrite" and bus.log[-1][1][1] == [bus.pos[1] & 0xFF, bus.pos[1] >> 8]
