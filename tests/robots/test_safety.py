"""The safety layer: nothing unsafe passes, every limit is checked at construction, and the
watchdog and e-stop act on the driver below."""

from __future__ import annotations

import numpy as np
import pytest

from robots import keys
from robots.drivers.base import SafeRobot
from robots.registry import ROBOTS, get_robot
from robots.safety import EStopped, SafetyConfig, SafetyLayer, UnsafeCommand


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class RecordingDriver:
    """Stands in for hardware: records every command it is given."""

    def __init__(self, robot: str = "so101") -> None:
        self.constants = get_robot(robot)
        self.q = self.constants.home_action.copy()
        self.sent: list[np.ndarray] = []
        self.stops = 0
        self.connected = False

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def get_observation(self):
        n = self.constants.n_joints
        return {keys.JOINT_POS: self.q[:n].copy(), keys.JOINT_VEL: np.zeros(n),
                keys.GRIPPER: self.q[n:].copy()}

    def send_action(self, action):
        self.sent.append(np.array(action))
        self.q = np.array(action)
        return np.array(action)

    def stop(self) -> None:
        self.stops += 1


@pytest.mark.parametrize("robot", list(ROBOTS))
def test_a_layer_builds_for_every_robot_and_passes_a_small_step(robot):
    rb = get_robot(robot)
    layer = SafetyLayer(rb)
    layer.reset(rb.home_action)
    target = rb.home_action + np.r_[np.full(rb.n_joints, 1e-4), 0.0]
    out = layer.check(target)
    np.testing.assert_allclose(out.sent, target)
    assert out.clamped == []


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_never_pass(bad):
    rb = get_robot("so101")
    layer = SafetyLayer(rb)
    layer.reset(rb.home_action)
    cmd = rb.home_action.copy()
    cmd[2] = bad
    with pytest.raises(UnsafeCommand, match="NaN/inf at elbow_flex"):
        layer.check(cmd)
    with pytest.raises(UnsafeCommand, match="shape"):
        layer.check(rb.home_action[:3])
    assert layer.counts["sent"] == 0


def test_position_velocity_and_acceleration_limits_clamp_and_name_the_joint():
    rb = get_robot("so101")
    cfg = SafetyConfig(rate_hz=100, velocity_scale=0.5, acceleration_scale=1.0, max_step=0.02)
    layer = SafetyLayer(rb, cfg)
    layer.reset(rb.home_action)
    far = rb.home_action.copy()
    far[0] = 10.0  # beyond the limit and far beyond one step
    out = layer.check(far)
    assert "shoulder_pan: position limit" in out.clamped and "shoulder_pan: velocity limit" in out.clamped
    step = out.sent[0] - rb.home[0]
    # from rest the first command is bounded by the acceleration limit: dv = a * dt, step = dv * dt
    assert step == pytest.approx(rb.acceleration_limits[0] * 0.01 * 0.01)
    # keep asking: the speed ramps up but never exceeds the velocity or per-step limits
    steps = []
    for _ in range(300):
        before = layer.last[0]
        steps.append(layer.check(far).sent[0] - before)
    assert max(steps) <= min(rb.velocity_limits[0] * 0.5 * 0.01, 0.02) + 1e-12
    assert np.all(np.diff(steps) <= rb.acceleration_limits[0] * 0.01 * 0.01 + 1e-12)
    assert layer.last[0] <= rb.joint_upper[0] - cfg.position_margin + 1e-12


def test_reject_mode_refuses_instead_of_clamping():
    rb = get_robot("panda")
    layer = SafetyLayer(rb, SafetyConfig(on_violation="reject"))
    layer.reset(rb.home_action)
    far = rb.home_action + np.r_[np.zeros(rb.n_joints - 1), 0.5, 0.0]
    with pytest.raises(UnsafeCommand, match="panda_joint7: velocity limit"):
        layer.check(far)
    np.testing.assert_allclose(layer.last, rb.home_action)


@pytest.mark.parametrize("field,value,match", [
    ("rate_hz", 0.0, "rate_hz"), ("velocity_scale", 1.5, "velocity_scale"), ("max_step", np.nan, "max_step"),
    ("watchdog_ms", 5.0, "shorter than one command period"), ("on_timeout", "panic", "on_timeout"),
    ("position_margin", -0.1, "position_margin")])
def test_every_limit_is_range_checked_at_construction(field, value, match):
    kwargs = {field: value}
    if field == "watchdog_ms":
        kwargs["rate_hz"] = 100.0
    with pytest.raises(ValueError, match=match):
        SafetyConfig(**kwargs)


def test_the_watchdog_holds_or_stops_the_driver_below():
    clock = FakeClock()
    for mode in ("hold", "stop"):
        drv = RecordingDriver()
        with SafeRobot(drv, SafetyConfig(watchdog_ms=100, on_timeout=mode)) as robot:
            robot.safety.clock = clock
            robot.safety.reset(drv.q)
            robot.send_action(drv.q + 0.001)
            n = len(drv.sent)
            clock.t += 0.05
            assert robot.tick() is None and len(drv.sent) == n
            clock.t += 0.2
            assert robot.tick() == mode
            if mode == "hold":
                np.testing.assert_allclose(drv.sent[-1], robot.safety.last)
                assert drv.stops == 0
            else:
                assert drv.stops == 1 and len(drv.sent) == n
        assert not drv.connected


def test_the_e_stop_blocks_everything_until_released():
    drv = RecordingDriver()
    with SafeRobot(drv) as robot:
        robot.stop()
        assert drv.stops == 1
        with pytest.raises(EStopped):
            robot.send_action(drv.q)
        assert robot.tick() is None and drv.sent == []
        robot.release()
        robot.send_action(drv.q + 0.001)
        assert len(drv.sent) == 1


def test_nan_through_the_robot_never_reaches_the_driver():
    drv = RecordingDriver()
    with SafeRobot(drv) as robot, pytest.raises(UnsafeCommand):
        robot.send_action(np.full(6, np.nan))
    assert drv.sent == []


def test_a_ramping_command_never_goes_past_the_target_asked_for():
    rb = get_robot("so101")
    layer = SafetyLayer(rb, SafetyConfig(velocity_scale=1.0, acceleration_scale=0.2, max_step=0.05))
    layer.reset(rb.home_action)
    target = rb.home_action + np.r_[0.3, np.zeros(rb.n_joints)]
    sent = [layer.check(target).sent[0] for _ in range(400)]
    assert max(sent) <= target[0] + 1e-12 and sent[-1] == pytest.approx(target[0])
    assert np.all(np.diff(sent) >= -1e-12)  # monotone: no overshoot and come-back


@pytest.mark.parametrize("mode", ["hold", "stop"])
def test_the_watchdog_thread_acts_when_the_caller_goes_silent(mode):
    import time

    drv = RecordingDriver()
    with SafeRobot(drv, SafetyConfig(watchdog_ms=50, on_timeout=mode)) as robot:
        robot.send_action(drv.q + 0.001)
        last, n = robot.safety.last, len(drv.sent)
        time.sleep(0.3)  # the caller stalls: nobody calls tick()
        if mode == "hold":
            assert len(drv.sent) > n and all(np.array_equal(a, last) for a in drv.sent[n:])
        else:
            assert drv.stops == 1 and len(drv.sent) == n
        assert any("watchdog" in e for e in robot.events)
    held = len(drv.sent)
    time.sleep(0.1)
    assert len(drv.sent) == held  # the thread stops with the connection


def test_the_watchdog_never_talks_to_the_driver_while_the_caller_reads_it():
    """One link to the hardware (a serial bus, a pipe): the watchdog's hold and the control loop's
    reads must take turns, or a reply goes to the wrong caller and the loop waits forever."""
    import threading
    import time

    class OneAtATime(RecordingDriver):
        def __init__(self) -> None:
            super().__init__()
            self.busy, self.overlaps = threading.Lock(), 0

        def _use(self, call, *args):
            if not self.busy.acquire(blocking=False):
                self.overlaps += 1
                return call(*args)
            try:
                time.sleep(0.0005)  # a transfer takes time
                return call(*args)
            finally:
                self.busy.release()

        def get_observation(self):
            return self._use(super().get_observation)

        def send_action(self, action):
            return self._use(super().send_action, action)

    drv = OneAtATime()
    with SafeRobot(drv, SafetyConfig(watchdog_ms=20, on_timeout="hold")) as robot:
        robot.send_action(drv.q + 0.001)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:  # the caller only reads; the watchdog keeps holding
            robot.get_observation()
    assert len(drv.sent) > 3 and drv.overlaps == 0
