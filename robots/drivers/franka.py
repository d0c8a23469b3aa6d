"""Franka Panda through ``franky`` (PyPI ``franky-control``), over the robot's FCI interface.

Each command starts an asynchronous ``JointMotion`` to the new absolute target, which takes over
from the running one (franky re-plans with Ruckig from the current desired position, velocity and
acceleration, within the robot's limits scaled by ``relative_dynamics_factor``). An error of an
earlier asynchronous motion surfaces at the next command as ``RobotError``.

The gripper entry of an action is the Panda's per-finger opening (m, as in the simulator);
``franky.Gripper`` takes the total width between the fingers, so it is sent doubled, and only
when it changes by more than ``gripper_tolerance``.

The driver only talks to the robot; limits are the safety layer's job (``SafeRobot``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from robots import keys
from robots.drivers.base import Driver, RobotError
from robots.panda.constants import PANDA


class FrankaDriver(Driver):
    """A Panda at ``host`` (its FCI address). ``franky`` replaces the module (tests pass a mock)."""

    constants = PANDA

    def __init__(self, host: str = "172.16.0.2", relative_dynamics_factor: float = 1.0,
                 gripper_speed: float = 0.05, gripper_tolerance: float = 0.002,
                 franky: ModuleType | Any | None = None) -> None:
        if not 0 < relative_dynamics_factor <= 1:
            raise ValueError(f"relative_dynamics_factor must lie in (0, 1], got {relative_dynamics_factor}")
        if not 0 < gripper_speed <= 0.1 or gripper_tolerance < 0:
            raise ValueError(f"gripper_speed must lie in (0, 0.1] m/s and gripper_tolerance be >= 0, "
                             f"got {gripper_speed}, {gripper_tolerance}")
        self.host, self.factor = host, relative_dynamics_factor
        self.gripper_speed, self.gripper_tolerance = gripper_speed, gripper_tolerance
        self._franky = franky
        self._robot = self._gripper = None
        self._gripper_target: float | None = None

    def _load(self):
        if self._franky is None:
            try:
                import franky
            except ImportError:
                raise RobotError("the Franka driver needs franky: `pip install franky-control`") from None
            self._franky = franky
        return self._franky

    def connect(self) -> None:
        fr = self._load()
        try:
            self._robot = fr.Robot(self.host)
            self._robot.relative_dynamics_factor = self.factor
            if not self._robot.recover_from_errors():
                raise RobotError(f"the Panda at {self.host} reports errors it cannot recover from")
            self._gripper = fr.Gripper(self.host)
        except fr.Exception as e:
            raise RobotError(f"cannot connect to the Panda at {self.host}: {e}") from None

    def _check(self) -> None:
        if self._robot is None:
            raise RobotError("the Panda is not connected: call connect() or use it as a context manager")
        try:
            self._robot.poll_motion()  # re-raises an error of the last asynchronous motion
        except self._franky.Exception as e:
            raise RobotError(f"the Panda stopped a motion: {e}") from None

    def get_observation(self) -> dict[str, Any]:
        self._check()
        js = self._robot.current_joint_state
        return {keys.JOINT_POS: np.asarray(js.position, dtype=np.float64),
                keys.JOINT_VEL: np.asarray(js.velocity, dtype=np.float64),
                keys.GRIPPER: np.array([self._gripper.width / 2])}

    def send_action(self, action: np.ndarray) -> np.ndarray:
        self._check()
        fr = self._franky
        a = np.asarray(action, dtype=np.float64)
        self._robot.move(fr.JointMotion(a[:7].tolist(), fr.ReferenceType.Absolute), asynchronous=True)
        g = float(a[7])
        if self._gripper_target is None or abs(g - self._gripper_target) > self.gripper_tolerance:
            self._gripper.move_async(2 * g, self.gripper_speed)
            self._gripper_target = g
        return a.copy()

    def stop(self) -> None:
        """Brake to a stop along the current path (a ``JointStopMotion``)."""
        if self._robot is not None:
            self._robot.move(self._franky.JointStopMotion(), asynchronous=True)

    def disconnect(self) -> None:
        if self._robot is None:
            return
        self.stop()
        self._robot.join_motion(timeout=2.0)
        self._robot = self._gripper = None
