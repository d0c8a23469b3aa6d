"""A MuJoCo-simulated arm in its own process, standing in for a real robot behind ``Robot``.

The child process runs physics in real time (one ``mj_step`` per ``dt`` of wall-clock time)
whatever the caller does, like hardware: commands set the position targets the actuators track;
an observation is the state at the moment it is asked for. Messages between the processes use
``robots.wire`` (npz bytes, no pickle).

What is simulated is a ``World``. ``ArmWorld`` is the bare arm from its MJCF; the simulator's
tasks provide worlds with objects (``sim.world.TaskWorld``), passed in as a picklable factory so
this module does not depend on them.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import mujoco
import numpy as np

from robots import keys
from robots.base import RobotConstants
from robots.drivers.base import Driver, measured_action
from robots.registry import get_robot
from robots.wire import decode, encode

OP, REPLY_TIMEOUT_S = "op", 5.0


class World(Protocol):
    constants: RobotConstants
    dt: float
    """Physics step (s)."""

    def set_target(self, target: np.ndarray) -> None:
        """Position targets (n + 1,) the actuators track from now on."""

    def step(self) -> None:
        """Advance one physics step."""

    def observation(self) -> dict[str, Any]:
        """At least ``robots.keys``; a task world adds its own (objects, goal, success...)."""


class ArmWorld:
    """The bare arm from its MJCF, at home, holding its targets."""

    def __init__(self, robot: str = "so101") -> None:
        self.constants = rb = get_robot(robot)
        self.model = mujoco.MjModel.from_xml_path(str(rb.model_path))
        self.data = mujoco.MjData(self.model)
        self.dt = float(self.model.opt.timestep)
        joints = [self.model.joint(n) for n in (*rb.joint_names, rb.gripper_joint)]
        self._qpos = np.array([j.qposadr[0] for j in joints])
        self._qvel = np.array([j.dofadr[0] for j in joints])
        ids = [j.id for j in joints]
        self._act = np.array([next(a for a in range(self.model.nu) if self.model.actuator_trnid[a, 0] == i)
                              for i in ids])
        self.data.qpos[self._qpos] = rb.home_action
        self.set_target(rb.home_action)
        mujoco.mj_forward(self.model, self.data)

    def set_target(self, target: np.ndarray) -> None:
        self.data.ctrl[self._act] = target

    def step(self) -> None:
        mujoco.mj_step(self.model, self.data)

    def observation(self) -> dict[str, Any]:
        n = self.constants.n_joints
        q, qd = self.data.qpos[self._qpos], self.data.qvel[self._qvel]
        return {keys.JOINT_POS: q[:n].copy(), keys.JOINT_VEL: qd[:n].copy(), keys.GRIPPER: q[n:].copy()}


def _serve(conn, make_world: Callable[[], World], realtime: bool) -> None:
    """The child: physics in real time, answering ``obs``, ``act``, ``stop``, ``close``."""
    world = make_world()
    conn.send_bytes(encode({"ready": 1, "dt": world.dt}))
    start, steps = time.monotonic(), 0
    while True:
        due = int((time.monotonic() - start) / world.dt) if realtime else steps
        while steps < due:
            world.step()
            steps += 1
        wait = max(0.0, start + (steps + 1) * world.dt - time.monotonic()) if realtime else None
        if not conn.poll(wait):
            continue
        msg = decode(conn.recv_bytes())
        op = msg.get(OP)
        if op == "obs":
            conn.send_bytes(encode({**world.observation(), "sim_time": steps * world.dt}))
        elif op == "act":
            world.set_target(msg["target"])
            conn.send_bytes(encode({"ok": 1}))
        elif op == "step":  # not real time: advance n physics steps on request (tests, fast eval)
            for _ in range(int(msg["n"])):
                world.step()
            steps += int(msg["n"])
            conn.send_bytes(encode({"ok": 1}))
        elif op == "stop":
            world.set_target(measured_action(world.observation()))
            conn.send_bytes(encode({"ok": 1}))
        elif op == "close":
            conn.send_bytes(encode({"ok": 1}))
            return


class MujocoRobot(Driver):
    """A simulated arm behind the ``Robot`` interface; ``world`` builds what the child simulates
    (default: the bare arm). ``realtime=False`` advances physics only on ``advance``."""

    def __init__(self, robot: str = "so101", world: Callable[[], World] | None = None,
                 realtime: bool = True) -> None:
        self.constants = get_robot(robot)
        self._make = world if world is not None else _ArmFactory(robot)
        self.realtime = realtime
        self._proc: mp.Process | None = None
        self._conn = None
        self._call_lock = threading.Lock()
        self.dt = 0.0

    def connect(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self._make, self.realtime), daemon=True)
        self._proc.start()
        deadline = time.monotonic() + 60.0
        while not self._conn.poll(0.05):
            if not self._proc.is_alive() or time.monotonic() > deadline:
                code = self._proc.exitcode
                self.disconnect()
                why = f"exited with code {code}" if code is not None else "did not start within 60 s"
                raise RuntimeError(f"the simulated arm's process {why} before it was ready")
        self.dt = float(decode(self._conn.recv_bytes())["dt"])

    def _call(self, **msg: Any) -> dict[str, Any]:
        if self._proc is None or not self._proc.is_alive():
            raise RuntimeError("the simulated arm is not running: connect() first (or it has died)")
        with self._call_lock:  # one request and its reply at a time on the pipe
            self._conn.send_bytes(encode(msg))
            if not self._conn.poll(REPLY_TIMEOUT_S):
                raise RuntimeError(f"the simulated arm did not answer {msg[OP]!r} within {REPLY_TIMEOUT_S} s")
            return decode(self._conn.recv_bytes())

    def get_observation(self) -> dict[str, Any]:
        return self._call(op="obs")

    def send_action(self, action: np.ndarray) -> np.ndarray:
        target = np.asarray(action, dtype=np.float64)
        self._call(op="act", target=target)
        return target

    def advance(self, n: int) -> None:
        """Physics steps to run now (``realtime=False`` only)."""
        if self.realtime:
            raise RuntimeError("advance() is for realtime=False; a real-time arm moves on its own")
        self._call(op="step", n=n)

    def stop(self) -> None:
        self._call(op="stop")

    def disconnect(self) -> None:
        if self._proc is None:
            return
        if self._proc.is_alive():
            with contextlib.suppress(RuntimeError, OSError, EOFError):  # already gone: terminate below
                self._call(op="close")
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.terminate()
        self._proc = None


class _ArmFactory:
    """Picklable ``ArmWorld`` factory (the child process builds its own world)."""

    def __init__(self, robot: str) -> None:
        self.robot = robot

    def __call__(self) -> ArmWorld:
        return ArmWorld(self.robot)
