"""The ``Robot`` interface every driver implements, and the wrapper that puts the safety layer
below it.

```
with SafeRobot(driver, SafetyConfig(...)) as robot:     # connect; the safety layer starts at
    obs = robot.get_observation()                        #   the measured position
    sent = robot.send_action(target)                     # checked, clamped or refused, then sent
    # the watchdog (its own thread, calling tick()): hold or stop when no command comes
```
A driver talks to hardware (or a simulator) and nothing else; ``SafeRobot`` is the only way a
command reaches it. Nothing here imports torch: a robot's computer runs drivers without the
learning stack.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import numpy as np

from robots import keys
from robots.base import RobotConstants
from robots.safety import Checked, SafetyConfig, SafetyLayer

log = logging.getLogger("reverie.robot")


class Robot(Protocol):
    constants: RobotConstants

    def connect(self) -> None: ...

    def get_observation(self) -> dict[str, Any]:
        """``joint_pos`` (n,), ``joint_vel`` (n,), ``gripper`` (1,) in SI units (``robots.keys``)."""

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Command absolute targets ``(n + 1,)``; returns the command actually sent."""

    def stop(self) -> None:
        """Stop moving now (brake, servo stop or torque hold, whatever the hardware offers)."""

    def disconnect(self) -> None: ...


class RobotError(RuntimeError):
    """The hardware did not do what was asked (bus error, missing motor, no connection)."""


def measured_action(obs: dict[str, Any]) -> np.ndarray:
    """(n + 1,) the measured joints then gripper of an observation: the command that holds them."""
    return np.append(obs[keys.JOINT_POS], obs[keys.GRIPPER])


class Driver:
    """Base class of drivers: the context manager."""

    constants: RobotConstants

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


class SafeRobot(Driver):
    """A driver below the safety layer: the only way commands reach it. Thread-safe."""

    def __init__(self, driver: Robot, safety: SafetyConfig | None = None,
                 watchdog_thread: bool = True) -> None:
        self.driver = driver
        self.watchdog_thread = watchdog_thread
        """Run ``tick`` in a thread of its own while connected, so a stalled caller cannot keep the
        watchdog from firing."""
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None
        self.constants = driver.constants
        self.safety = SafetyLayer(driver.constants, safety)
        self._lock = threading.Lock()
        self.stopped = False
        self._last_clamp = ""
        self.events: list[str] = []
        """What the safety layer did that an operator should know (timeouts, stops, refusals)."""

    def connect(self) -> None:
        self.driver.connect()
        self.safety.reset(measured_action(self.driver.get_observation()))
        if self.watchdog_thread:
            self._watching.set()
            self._watcher = threading.Thread(target=self._watch, daemon=True, name="reverie-watchdog")
            self._watcher.start()

    def _watch(self) -> None:
        period = self.safety.cfg.watchdog_ms / 4000
        while self._watching.is_set():
            self.tick()
            time.sleep(period)

    def disconnect(self) -> None:
        self._watching.clear()
        if self._watcher is not None:
            self._watcher.join(timeout=1.0)
            self._watcher = None
        with self._lock:
            self.driver.disconnect()

    def get_observation(self) -> dict[str, Any]:
        with self._lock:  # the watchdog thread may be commanding the same link right now
            return self.driver.get_observation()

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Check ``action`` and send what the safety layer allows; ``UnsafeCommand`` or ``EStopped``
        propagate and nothing is sent."""
        with self._lock:
            checked: Checked = self.safety.check(action)
            if checked.clamped:
                what = "; ".join(checked.clamped)
                if what != self._last_clamp:
                    log.info("clamped: %s", what)
                self._last_clamp = what
            else:
                self._last_clamp = ""
            self.stopped = False
            return self.driver.send_action(checked.sent)

    def tick(self) -> str | None:
        """The watchdog, called at the robot's rate: with no fresh command for ``watchdog_ms``, hold
        the last position or stop. Returns what it did ("hold", "stop") or None."""
        with self._lock:
            if not self.safety.timed_out() or self.safety.estopped:
                return None
            action = self.safety.cfg.on_timeout
            if action == "hold":
                self.driver.send_action(self.safety.hold())
            elif not self.stopped:
                self.driver.stop()
                self.stopped = True
            self._event(f"watchdog: no command for {self.safety.cfg.watchdog_ms:.0f} ms, {action}")
            return action

    def stop(self) -> None:
        """The software e-stop: stop now and refuse every command until ``release``."""
        with self._lock:
            self.safety.estop()
            self.driver.stop()
            self.stopped = True
            self._event("e-stop engaged")

    def release(self) -> None:
        with self._lock:
            self.safety.release(measured_action(self.driver.get_observation()))
            self._event("e-stop released")

    def _event(self, text: str) -> None:
        if not self.events or self.events[-1] != text:
            log.warning(text)
        self.events.append(text)
