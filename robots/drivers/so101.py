"""SO-101 over its Feetech STS3215 bus servos, through ``scservo_sdk`` (PyPI ``feetech-servo-sdk``).

Six servos on one serial bus, IDs 1..6: shoulder_pan, shoulder_lift, elbow_flex, wrist_flex,
wrist_roll, gripper (the order of ``robots/so101/constants.py``). Protocol end 0: little-endian.

```
register            address  bytes
Torque_Enable       40       1
Goal_Position       42       2      written to all six in one sync write per command
Present_Position    56       2      read with Present_Velocity (58, 2) in one sync read
```
Positions are 4096 steps per turn. A joint's angle is ``sign * (raw - mid) * 2 pi / 4096`` rad,
with ``mid`` the raw reading at the joint's zero (``So101Calibration``, a JSON file). Velocity is
sign-magnitude (bit 15), in steps/s.

The driver only talks to the bus; limits are the safety layer's job (``SafeRobot``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from robots import keys
from robots.drivers.base import Driver, RobotError
from robots.so101.constants import SO101

MOTOR_IDS = (1, 2, 3, 4, 5, 6)
TORQUE_ENABLE, GOAL_POSITION, PRESENT_POSITION = 40, 42, 56
STEPS_PER_TURN = 4096
RAD_PER_STEP = 2 * math.pi / STEPS_PER_TURN
DEFAULT_BAUDRATE = 1_000_000
VELOCITY_SIGN_BIT = 15


@dataclass(frozen=True)
class So101Calibration:
    """Per joint (constants order, gripper last): the raw reading at the joint's zero and the
    direction (+1 or -1) raw steps turn it."""

    mid: tuple[int, ...] = (2048,) * 6
    sign: tuple[int, ...] = (1,) * 6
    names: tuple[str, ...] = field(default=(*SO101.joint_names, SO101.gripper_joint), repr=False)

    def __post_init__(self) -> None:
        if len(self.mid) != 6 or len(self.sign) != 6:
            raise ValueError(f"SO-101 calibration needs 6 mids and 6 signs, "
                             f"got {len(self.mid)} and {len(self.sign)}")
        bad = [n for n, m in zip(self.names, self.mid, strict=True) if not 0 <= m < STEPS_PER_TURN]
        if bad:
            raise ValueError(f"SO-101 calibration: mid of {', '.join(bad)} lies outside "
                             f"0..{STEPS_PER_TURN - 1}")
        if any(s not in (1, -1) for s in self.sign):
            raise ValueError(f"SO-101 calibration: every sign must be +1 or -1, got {self.sign}")

    @classmethod
    def load(cls, path: str | Path) -> So101Calibration:
        """From JSON ``{"mid": {joint: raw, ...}, "sign": {joint: 1|-1, ...}}``."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
            names = (*SO101.joint_names, SO101.gripper_joint)
            return cls(tuple(int(raw["mid"][n]) for n in names), tuple(int(raw.get("sign", {}).get(n, 1))
                                                                      for n in names))
        except FileNotFoundError:
            raise FileNotFoundError(f"no SO-101 calibration at {path}") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"SO-101 calibration {path} is unreadable or incomplete ({e}); it needs "
                             "{\"mid\": {joint: raw}} for all six joints") from None

    def to_raw(self, q: np.ndarray) -> np.ndarray:
        raw = np.round(np.asarray(self.mid) + np.asarray(self.sign) * np.asarray(q) / RAD_PER_STEP)
        return np.clip(raw, 0, STEPS_PER_TURN - 1).astype(int)

    def to_rad(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(self.sign) * (np.asarray(raw, float) - np.asarray(self.mid)) * RAD_PER_STEP


def _signed(value: int, bit: int) -> int:
    """Feetech sign-magnitude -> int."""
    magnitude = value & ((1 << bit) - 1)
    return -magnitude if value >> bit & 1 else magnitude


class So101Driver(Driver):
    """An SO-101 follower arm on ``port``. ``sdk`` replaces ``scservo_sdk`` (tests pass a mock)."""

    constants = SO101

    def __init__(self, port: str = "/dev/ttyACM0", calibration: So101Calibration | str | None = None,
                 baudrate: int = DEFAULT_BAUDRATE, sdk: ModuleType | Any | None = None) -> None:
        self.port_name, self.baudrate = port, baudrate
        self.calibration = So101Calibration.load(calibration) if isinstance(calibration, str | Path) \
            else calibration or So101Calibration()
        self._sdk = sdk
        self._port = self._packet = self._reader = self._writer = None

    def _load_sdk(self):
        if self._sdk is None:
            try:
                import scservo_sdk
            except ImportError:
                raise RobotError("the SO-101 driver needs Feetech's SDK: "
                                 "`pip install feetech-servo-sdk`") from None
            self._sdk = scservo_sdk
        return self._sdk

    def _ok(self, result: int, what: str) -> None:
        if result != self._sdk.COMM_SUCCESS:
            raise RobotError(f"SO-101 bus on {self.port_name}: {what} failed "
                             f"({self._packet.getTxRxResult(result)})")

    def connect(self) -> None:
        sdk = self._load_sdk()
        self._port = sdk.PortHandler(self.port_name)
        if not self._port.openPort():
            raise RobotError(f"cannot open {self.port_name}: is the arm plugged in, "
                             "and may this user use it?")
        if not self._port.setBaudRate(self.baudrate):
            raise RobotError(f"{self.port_name}: baud rate {self.baudrate} refused")
        self._packet = sdk.PacketHandler(0)
        for name, mid in zip(self.calibration.names, MOTOR_IDS, strict=True):
            _, result, _ = self._packet.ping(self._port, mid)
            if result != sdk.COMM_SUCCESS:
                raise RobotError(f"SO-101 motor {mid} ({name}) does not answer on {self.port_name}")
        self._reader = sdk.GroupSyncRead(self._port, self._packet, PRESENT_POSITION, 4)
        for mid in MOTOR_IDS:
            self._reader.addParam(mid)
        self._writer = sdk.GroupSyncWrite(self._port, self._packet, GOAL_POSITION, 2)
        for mid in MOTOR_IDS:
            result = self._packet.write1ByteTxRx(self._port, mid, TORQUE_ENABLE, 1)[0]
            self._ok(result, f"torque on, motor {mid}")

    def disconnect(self) -> None:
        if self._port is None:
            return
        for mid in MOTOR_IDS:  # let go: a powered-down bus should not leave the arm stiff
            self._packet.write1ByteTxRx(self._port, mid, TORQUE_ENABLE, 0)
        self._port.closePort()
        self._port = None

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        if self._port is None:
            raise RobotError("SO-101 is not connected: call connect() or use it as a context manager")
        self._ok(self._reader.txRxPacket(), "reading positions")
        pos, vel = [], []
        for mid in MOTOR_IDS:
            if not self._reader.isAvailable(mid, PRESENT_POSITION, 4):
                raise RobotError(f"SO-101 motor {mid} sent no position")
            pos.append(self._reader.getData(mid, PRESENT_POSITION, 2))
            vel.append(_signed(self._reader.getData(mid, PRESENT_POSITION + 2, 2), VELOCITY_SIGN_BIT))
        velocity = np.asarray(self.calibration.sign) * np.array(vel) * RAD_PER_STEP
        return self.calibration.to_rad(np.array(pos)), velocity

    def get_observation(self) -> dict[str, Any]:
        q, qd = self._read()
        return {keys.JOINT_POS: q[:5], keys.JOINT_VEL: qd[:5], keys.GRIPPER: q[5:]}

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """One sync write of the six goal positions; returns the command as the servos take it (quantised)."""
        if self._port is None:
            raise RobotError("SO-101 is not connected: call connect() or use it as a context manager")
        raw = self.calibration.to_raw(action)
        self._writer.clearParam()
        for mid, r in zip(MOTOR_IDS, raw, strict=True):
            self._writer.addParam(mid, [int(r) & 0xFF, int(r) >> 8 & 0xFF])
        self._ok(self._writer.txPacket(), "writing goal positions")
        return self.calibration.to_rad(raw)

    def stop(self) -> None:
        """Hold where the arm is now: its present positions become its goals (torque stays on)."""
        q, _ = self._read()
        self.send_action(q)
