"""The one safety layer below every driver: nothing reaches a robot without passing ``SafetyLayer``.

Each command is an absolute target ``(n_joints + 1,)``: arm joints (rad), then the gripper, in the
robot's units, sent at ``rate_hz``. In order:

1. **Shape and finiteness**: a wrong shape, NaN or inf raises ``UnsafeCommand``; nothing is sent.
2. **E-stop**: while engaged, every command raises ``EStopped``.
3. **Position**: each joint within its limits minus ``position_margin``; the gripper within its range.
4. **Velocity**: the change from the last command is at most ``velocity_scale`` x the joint's
   velocity limit x dt, and at most ``max_step`` per command.
5. **Acceleration**: the implied velocity changes by at most ``acceleration_scale`` x the joint's
   acceleration limit x dt from the last command's.

A clamped command never goes beyond the position asked for (arriving is left to the robot's own
position controller). Steps 3-5 clamp the command and report what they clamped
(``on_violation="clamp"``), or refuse it (``"reject"``). A watchdog (``watchdog_ms``) tells the
caller when no fresh command has come: hold the last position or stop, by ``on_timeout``.
Every limit is range-checked at construction.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from robots.base import RobotConstants


class UnsafeCommand(ValueError):
    """A command that must not reach the robot; the message names the joint and the limit."""


class EStopped(RuntimeError):
    """The software e-stop is engaged: nothing is sent until it is released."""


@dataclass
class SafetyConfig:
    rate_hz: float = 100.0
    """Rate commands are sent at (the dt velocity and acceleration limits are applied over)."""
    velocity_scale: float = 1.0
    """Share of each joint's velocity limit a command may use, in (0, 1]. Lowering it slows the arm
    below what the policy was trained to expect: its observations then drift from its training
    data (measured: a Push policy's chunks turned erratic at 0.5 once two steps were committed)."""
    acceleration_scale: float = 1.0
    """Share of each joint's acceleration limit a command may use, in (0, 1]."""
    max_step: float = 0.05
    """Largest change of any arm joint per command (rad): a net under the velocity limit at low rates."""
    position_margin: float = 0.02
    """Distance kept from every joint limit (rad)."""
    watchdog_ms: float = 200.0
    """No fresh command for this long: the robot holds or stops (``on_timeout``)."""
    on_timeout: str = "hold"
    """hold (keep commanding the last position) or stop (the driver's stop: servo hold, brake)."""
    on_violation: str = "clamp"
    """clamp a command to the limits, or reject it."""

    def __post_init__(self) -> None:
        checks = {"rate_hz": (1.0, 2000.0), "velocity_scale": (1e-3, 1.0), "acceleration_scale": (1e-3, 1.0),
                  "max_step": (1e-4, 0.5), "position_margin": (0.0, 0.3), "watchdog_ms": (1.0, 5000.0)}
        for name, (lo, hi) in checks.items():
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and lo <= v <= hi):
                raise ValueError(f"safety.{name}={v!r} is out of range: it must lie in [{lo}, {hi}]")
        if self.on_timeout not in ("hold", "stop"):
            raise ValueError(f"safety.on_timeout must be hold or stop, got {self.on_timeout!r}")
        if self.on_violation not in ("clamp", "reject"):
            raise ValueError(f"safety.on_violation must be clamp or reject, got {self.on_violation!r}")
        if self.watchdog_ms < 1000.0 / self.rate_hz:
            raise ValueError(f"safety.watchdog_ms={self.watchdog_ms} is shorter than one command period "
                             f"({1000.0 / self.rate_hz:.1f} ms at rate_hz={self.rate_hz}); "
                             "it would always fire")


@dataclass
class Checked:
    """A command after the safety layer: what is sent, and which limits changed it."""

    sent: np.ndarray
    clamped: list[str] = field(default_factory=list)
    """``"<joint>: <limit>"`` for every clamp applied (empty when the command was within limits)."""


class SafetyLayer:
    """Checks, clamps and times commands for one robot (see the module docstring)."""

    def __init__(self, robot: RobotConstants, cfg: SafetyConfig | None = None,
                 clock=time.monotonic) -> None:
        self.robot, self.cfg, self.clock = robot, cfg or SafetyConfig(), clock
        c, n = self.cfg, robot.n_joints
        if c.position_margin * 2 >= float(np.min(np.subtract(robot.joint_upper, robot.joint_lower))):
            raise ValueError(f"safety.position_margin={c.position_margin} leaves no room between "
                             f"{robot.name}'s joint limits")
        self.dt = 1.0 / c.rate_hz
        self.lower = np.array([*(np.asarray(robot.joint_lower) + c.position_margin), robot.gripper_range[0]])
        self.upper = np.array([*(np.asarray(robot.joint_upper) - c.position_margin), robot.gripper_range[1]])
        vmax = np.array([*robot.velocity_limits, robot.gripper_velocity_limit]) * c.velocity_scale
        self.max_delta = vmax * self.dt
        self.max_delta[:n] = np.minimum(self.max_delta[:n], c.max_step)
        accel = np.array([*robot.acceleration_limits, np.inf]) * c.acceleration_scale
        self.max_dv = accel * self.dt  # change of velocity per command (rad/s)
        self.names = [*robot.joint_names, robot.gripper_joint]
        self._last: np.ndarray | None = None
        self._velocity = np.zeros(robot.action_dim)
        self._last_time: float | None = None
        self.estopped = False
        self.counts = {"sent": 0, "clamped": 0, "rejected": 0}

    # ---- state -------------------------------------------------------------------------------
    def reset(self, measured: np.ndarray) -> None:
        """Start from the robot's measured position ``(n_joints + 1,)``, at rest."""
        measured = self._finite(measured, "measured position")
        self._last = np.clip(measured, self.lower, self.upper)
        self._velocity = np.zeros_like(self._last)
        self._last_time = self.clock()

    @property
    def last(self) -> np.ndarray:
        """The last command sent (what holding means)."""
        if self._last is None:
            raise RuntimeError("the safety layer has no position yet: call reset(measured) after connecting")
        return self._last.copy()

    def estop(self) -> None:
        """Engage the software e-stop."""
        self.estopped = True

    def release(self, measured: np.ndarray) -> None:
        """Release the e-stop and start again from the measured position."""
        self.estopped = False
        self.reset(measured)

    def timed_out(self) -> bool:
        """Whether the watchdog has fired: no command accepted for ``watchdog_ms``."""
        return self._last_time is not None and (self.clock() - self._last_time) * 1000 > self.cfg.watchdog_ms

    # ---- the check ---------------------------------------------------------------------------
    def _finite(self, command: np.ndarray, what: str = "command") -> np.ndarray:
        try:
            q = np.asarray(command, dtype=np.float64)
        except (TypeError, ValueError):
            raise UnsafeCommand(f"{what} is not numeric: {command!r}") from None
        if q.shape != (self.robot.action_dim,):
            raise UnsafeCommand(f"{what} has shape {q.shape}; {self.robot.name} takes "
                                f"({self.robot.action_dim},): {self.robot.n_joints} joints then the gripper")
        bad = ~np.isfinite(q)
        if bad.any():
            raise UnsafeCommand(f"{what} holds NaN/inf at {', '.join(np.array(self.names)[bad])}; not sent")
        return q

    def check(self, command: np.ndarray) -> Checked:
        """The command to send in place of ``command`` (see the module docstring); counts it as sent."""
        if self.estopped:
            raise EStopped("software e-stop engaged: release it (with the measured position) to move again")
        q = self._finite(command)
        last = self.last
        clamped: list[str] = []
        out = self._clamp(q, self.lower, self.upper, "position limit", clamped)
        step = self._clamp(out - last, -self.max_delta, self.max_delta, "velocity limit", clamped)
        v_prev = self._velocity
        v = self._clamp(step / self.dt, v_prev - self.max_dv, v_prev + self.max_dv, "acceleration limit",
                        clamped)
        # never past what was asked: the acceleration limit may not carry the arm beyond its target
        move = np.clip(v * self.dt, np.minimum(0.0, out - last), np.maximum(0.0, out - last))
        out = np.clip(last + move, self.lower, self.upper)
        if clamped and self.cfg.on_violation == "reject":
            self.counts["rejected"] += 1
            raise UnsafeCommand(f"command exceeds {'; '.join(clamped)} "
                                "(safety.on_violation=reject); not sent")
        self.counts["sent"] += 1
        self.counts["clamped"] += int(bool(clamped))
        self._velocity = (out - last) / self.dt
        self._last, self._last_time = out, self.clock()
        return Checked(out, clamped)

    def hold(self) -> np.ndarray:
        """The command that holds position (the last one sent), at zero velocity."""
        self._velocity = np.zeros_like(self._velocity)
        return self.last

    def _clamp(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, limit: str, out: list[str]) -> np.ndarray:
        y = np.clip(x, lo, hi)
        for i in np.flatnonzero(np.abs(y - x) > 1e-12):
            out.append(f"{self.names[i]}: {limit}")
        return y
