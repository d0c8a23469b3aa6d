"""The real-time deployment node: a chunk source (the policy) drives a robot through the safety layer.

```
control thread, every 1/rate_hz s          inference thread
  at each plan step (plan_dt): observe        waits for a request
    ask for the next chunk early enough  -->    plan(observations, past, committed)
  command = the current chunk at now          <--  a chunk for the steps after the committed ones
    (linear between plan steps, passing each     (checked: shape, finite; else refused)
     target mid-step; held if none)
  robot.send_action(command)  (SafeRobot)
```
The request goes out ``lead`` plan steps before the current chunk's last step, with the actions
that will execute meanwhile (``committed``), which the policy inpaints: the new chunk continues the
old one. It takes over at the old chunk's last step, whose target serves only as the end of the
last interpolation segment; without it the command would hold still for a plan step at every join
(no next target to move towards) and then catch up in a jerk. A chunk arriving late has its stale
steps dropped; until it arrives the robot follows the current chunk's reserve (the policy's
prediction past its plan, ``chunks.Chunk``) when the source returns one. With ``join_blend`` set,
what inpainting leaves of a mismatch at the join is spread over the new chunk's first steps
(``chunks.blend_join``). If the source fails or takes longer than ``source_timeout_s``, the robot
holds its position until a fresh chunk arrives.

Measured per run (``NodeReport``): tick jitter p50/p99, deadline misses, idle ticks (no chunk to
follow after the first), the p95 action change between plan steps at chunk boundaries against
inside chunks, inference latency, stale and refused chunks, success when the world reports it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policy.deploy.chunks import Chunk, blend_join
from policy.deploy.config import NodeConfig
from policy.deploy.source import ChunkSource, PlanRequest
from robots.drivers.base import SafeRobot
from robots.safety import EStopped, UnsafeCommand

log = logging.getLogger("reverie.deploy")

INTERPOLATION_TAIL = 1
"""Plan steps at the end of each chunk kept only as interpolation targets: the next chunk is
asked to take over this many steps before the current one ends, so the 100 Hz command always has
a target to move towards."""


@dataclass
class NodeReport:
    seconds: float
    ticks: int
    jitter_ms: dict[str, float]
    deadline_misses: int
    idle_ticks: int
    """Ticks after the first chunk with no chunk covering them (the robot held and waited)."""
    startup_s: float
    """Time until the first chunk arrived (the robot held meanwhile)."""
    chunks: int
    stale_dropped: int
    refused_chunks: int
    source_failures: int
    holds: int
    inference_ms: dict[str, float]
    jump_p95: dict[str, float | None]
    """p95 joint-target change between consecutive plan steps (rad, arm joints): inside chunks and
    at chunk boundaries, and their ratio."""
    success: bool | None
    lead: int
    events: list[str] = field(default_factory=list)


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


LEAD_WINDOW = 20
"""How many recent inferences the adaptive lead must cover."""


def lead_for(latencies_ms: list[float], period_s: float, plan_dt: float, max_committed: int) -> int:
    """Plan steps to commit ahead so that a chunk as slow as the slowest of the last
    ``LEAD_WINDOW`` inferences still takes over in time: the request leaves at the first tick of a
    plan step (up to one tick after its start) and the loop sees the chunk at the tick after it
    arrives (up to one more), so two ticks are added.
    Covering only their 90th percentile let the controller's occasional slow cycle (K=8 on 2 CPU
    cores: p50 124 ms, p95 up to 180 ms, at lead 2) arrive late; stale steps were dropped, its
    chunks turned erratic and Push success through the node fell to 0.80, against 0.95 with the
    lead held at 3 (BENCHMARKS.md)."""
    if not latencies_ms:
        raise ValueError("the lead needs at least one measured inference")
    est = max(latencies_ms[-LEAD_WINDOW:]) / 1000 + 2 * period_s
    return max(1, min(max_committed, math.ceil(est / plan_dt)))


class DeployNode:
    """Runs one episode of ``source`` on ``robot`` (already connected)."""

    def __init__(self, robot: SafeRobot, source: ChunkSource, n_obs_steps: int, cfg: NodeConfig | None = None,
                 max_committed: int | None = None, earlier_ms: Sequence[float] = (),
                 execute_steps: int | None = None) -> None:
        """``earlier_ms``: inference latencies of earlier episodes with the same source, which the
        adaptive lead covers from this episode's first request (else it rests on one measurement,
        the first chunk's, until slower cycles arrive late and teach it). ``execute_steps``: how
        many of each chunk's targets are its plan (the policy's ``n_action_steps``); the rest are
        reserve, followed only while the next chunk is late (None: every target is plan)."""
        if execute_steps is not None and execute_steps < 1:
            raise ValueError(f"execute_steps must be >= 1 plan step, got {execute_steps}")
        self.robot, self.source, self.cfg = robot, source, cfg or NodeConfig()
        self.earlier_ms = [float(x) for x in earlier_ms][-LEAD_WINDOW:]
        self.n_obs_steps = n_obs_steps
        self.execute_steps = execute_steps
        self.max_committed = max_committed if max_committed is not None else 8
        self.a_dim = robot.constants.action_dim
        self._lock = threading.Lock()
        self._request: tuple[int, PlanRequest, float] | None = None
        self._arrived: deque[Chunk] = deque()
        self._wake = threading.Event()
        self._running = False
        self.latencies: list[float] = []
        self.failures = self.refused = 0

    # ---- inference thread --------------------------------------------------------------------
    def _infer_loop(self) -> None:
        while self._running:
            if not self._wake.wait(0.05):
                continue
            self._wake.clear()
            with self._lock:
                job = self._request
            if job is None:
                continue
            start, request, asked = job
            try:
                if self.cfg.delay_ms:
                    time.sleep(self.cfg.delay_ms / 1000)
                actions = np.asarray(self.source.plan(request), dtype=np.float64)
                if actions.ndim != 2 or actions.shape[1] != self.a_dim or len(actions) == 0:
                    raise UnsafeCommand(f"chunk has shape {actions.shape}, expected (n, {self.a_dim})")
                if not np.all(np.isfinite(actions)):
                    raise UnsafeCommand("chunk holds NaN/inf")
                chunk = self._chunk(start, actions, asked)
            except UnsafeCommand as e:
                self.refused += 1
                log.error("refused a chunk from the policy: %s", e)
                chunk = None
            except Exception as e:  # any failure of the source (network, server, model) is survivable: hold
                self.failures += 1
                log.error("the policy failed to plan (%s: %s); holding", type(e).__name__, e)
                chunk = None
            with self._lock:
                self.latencies.append((time.monotonic() - asked) * 1000)
                if chunk is not None:
                    self._arrived.append(chunk)
                if self._request is job:
                    self._request = None

    def _ask(self, start: int, request: PlanRequest) -> None:
        with self._lock:
            self._request = (start, request, time.monotonic())
        self._wake.set()

    # ---- control loop ------------------------------------------------------------------------
    def run(self) -> NodeReport:
        c = self.cfg
        period = 1.0 / c.rate_hz
        history: deque[dict[str, Any]] = deque(maxlen=self.n_obs_steps)
        sent_at_step: dict[int, np.ndarray] = {}
        chunk_at_step: dict[int, int] = {}
        jitter, idle, holds, misses, stale = [], 0, 0, 0, 0
        n_joints = self.robot.constants.n_joints
        current: Chunk | None = None
        pending: list[Chunk] = []  # arrived, not started yet: each takes over at its first step
        pending_since: float | None = None
        success = None
        # start-up: the arm waits at rest for the first chunk, which also measures the latency
        # the first lead is chosen from; the plan's clock starts when it arrives
        startup = time.monotonic()
        obs = self.robot.get_observation()
        history.append(obs)
        first = self._first_chunk(obs)
        last_step, current, next_id = 0, self._chunk(0, first, startup, chunk_id=1), 1
        first_chunk_at = time.monotonic() - startup
        self.latencies.append(first_chunk_at * 1000)
        lead = c.lead or lead_for(self.earlier_ms + self.latencies[-LEAD_WINDOW:], period, c.plan_dt,
                                  self.max_committed)
        self._running = True
        worker = threading.Thread(target=self._infer_loop, daemon=True, name="reverie-inference")
        worker.start()
        t0 = time.monotonic()
        next_tick, ticks = t0, 0
        try:
            while True:
                now = time.monotonic()
                if now - t0 >= c.seconds:
                    break
                jitter.append((now - next_tick) * 1000)
                u = (now - t0) / c.plan_dt
                step = math.floor(u)
                with self._lock:
                    arrived = list(self._arrived)
                    self._arrived.clear()
                    in_flight = self._request is not None
                for ch in arrived:
                    next_id += 1
                    ch.id = next_id
                    if ch.end <= step:
                        stale += len(ch.actions)
                        continue
                    if ch.start < step:
                        stale += step - ch.start
                        ch = ch.from_step(step)
                    log.debug("chunk %d: steps %d..%d arrived at %.2f", ch.id, ch.start, ch.end - 1, u)
                    if c.join_blend:  # against the targets the robot runs up to the chunk's first step
                        before = self._targets_before(ch.start, [current, *pending], sent_at_step)
                        ch.actions = blend_join(before, ch.actions, c.join_blend, n_joints)
                    pending_since = None
                    # a newer chunk supersedes those that would start with or after it; those
                    # starting earlier still run until it takes over
                    pending = [p for p in pending if p.start < ch.start]
                    if ch.start <= step or current is None:
                        current, pending = ch, []
                    else:
                        pending.append(ch)
                while pending and step >= pending[0].start:
                    current = pending.pop(0)
                if step > last_step:  # a plan step boundary: observe, and ask for more in time
                    last_step = step
                    obs = self.robot.get_observation()
                    history.append(obs)
                    if obs.get("success") and c.stop_on_success:
                        success = True
                        break
                    if not c.lead:
                        with self._lock:
                            lead = lead_for(self.earlier_ms + self.latencies[-LEAD_WINDOW:], period,
                                            c.plan_dt, self.max_committed)
                    latest = pending[-1] if pending else current
                    due = latest is None or latest.planned_end - INTERPOLATION_TAIL - step <= lead
                    if due and not in_flight:
                        self._ask(*self._request_for(step, lead if latest else 0, [current, *pending],
                                                     history, sent_at_step))
                        pending_since = pending_since or now
                stalled = pending_since is not None and now - pending_since > c.source_timeout_s
                if current is not None and current.covers(u) and not stalled:
                    command = self._command(u, current, sent_at_step)
                    if step not in chunk_at_step:
                        chunk_at_step[step] = current.id
                        sent_at_step[step] = current.actions[step - current.start]
                else:
                    command = None
                    idle += 1
                try:
                    if command is not None:
                        self.robot.send_action(command)
                    else:
                        self._hold()
                        holds += 1
                except (UnsafeCommand, EStopped) as e:
                    log.error("command not sent: %s", e)
                    holds += 1
                ticks += 1
                misses += time.monotonic() - now > period
                next_tick += period
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_tick = time.monotonic()  # behind: do not try to catch up in a burst
        finally:
            self._running = False
            worker.join(timeout=5)
        self.sent_at_step, self.chunk_at_step = sent_at_step, chunk_at_step  # what was planned per step
        if success is None and history and "success" in history[-1]:
            success = bool(history[-1]["success"])
        return NodeReport(
            seconds=time.monotonic() - t0, ticks=ticks,
            jitter_ms={"p50": _pct([abs(j) for j in jitter], 50), "p99": _pct([abs(j) for j in jitter], 99)},
            deadline_misses=misses, idle_ticks=idle, startup_s=first_chunk_at, chunks=next_id,
            stale_dropped=stale, refused_chunks=self.refused,
            source_failures=self.failures, holds=holds,
            inference_ms={"p50": _pct(self.latencies, 50), "p95": _pct(self.latencies, 95)},
            jump_p95=self._jumps(sent_at_step, chunk_at_step), success=success, lead=lead,
            events=list(self.robot.events))

    def _first_chunk(self, obs: dict[str, Any]) -> np.ndarray:
        """The first chunk, planned while the arm waits; a policy that cannot plan stops the run."""
        if self.cfg.delay_ms:
            time.sleep(self.cfg.delay_ms / 1000)
        actions = np.asarray(self.source.plan(PlanRequest([obs], np.zeros((0, self.a_dim)),
                                                          np.zeros((0, self.a_dim)))), dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != self.a_dim or not np.all(np.isfinite(actions)):
            raise UnsafeCommand(f"the policy's first chunk is unusable (shape {actions.shape}, "
                                f"finite: {bool(np.all(np.isfinite(actions)))}); nothing was sent")
        return actions

    def _chunk(self, start: int, actions: np.ndarray, asked: float, chunk_id: int = 0) -> Chunk:
        """A checked chunk with its plan marked (and its reserve cut when ``reserve`` is off)."""
        planned = None if self.execute_steps is None else min(self.execute_steps, len(actions))
        if planned is not None and not self.cfg.reserve:
            actions, planned = actions[:planned], None
        return Chunk(start, actions, asked, chunk_id, planned)

    @staticmethod
    def _scheduled(s: int, timeline: Sequence[Chunk | None]) -> np.ndarray | None:
        """The target planned for step ``s``: from the chunk that will be running then (the last of
        ``timeline``, in start order, starting by ``s``), held at its last target past its end."""
        active = None
        for ch in timeline:
            if ch is not None and ch.start <= s:
                active = ch
        if active is None:
            return None
        return active.actions[min(s - active.start, len(active.actions) - 1)]

    def _targets_before(self, start: int, timeline: Sequence[Chunk | None],
                        sent: dict[int, np.ndarray]) -> np.ndarray:
        """The targets of the (up to) two plan steps before ``start``, oldest first: as sent, else
        as scheduled; none when the step just before is unknown."""
        rows = []
        for s in (start - 1, start - 2):
            got = sent.get(s)
            if got is None:
                got = self._scheduled(s, timeline)
            if got is None:
                break
            rows.insert(0, got)
        return np.array(rows, dtype=np.float64)

    def _command(self, u: float, current: Chunk, sent: dict[int, np.ndarray]) -> np.ndarray:
        """The command at plan time ``u``. With ``centre_targets`` the command passes target k at
        the middle of plan step k, so its mean over the step is target k, as under the simulator's
        zero-order hold the policy was trained with (target k held through step k); the first half
        of a chunk's first step runs from the target sent before it. Else it reaches target k at
        the start of step k, half a step ahead of that."""
        if not self.cfg.centre_targets:
            return current.at(u)
        v = u - 0.5
        i = math.floor(v)
        if i >= current.start:
            return current.at(v)
        before = sent.get(i)
        if before is None:
            return current.actions[0].copy()
        f = v - i
        return (1 - f) * before + f * current.actions[0]

    def _hold(self) -> np.ndarray:
        """Hold position: re-send the last command the safety layer passed."""
        return self.robot.send_action(self.robot.safety.last)

    def _request_for(self, step: int, lead: int, timeline: Sequence[Chunk | None], history, sent_at_step):
        """Ask for the chunk starting ``lead`` steps after ``step``, committed to what runs until
        then (``timeline``: the current chunk and those waiting to take over, in start order)."""
        past = [sent_at_step[s] for s in range(step - self.n_obs_steps + 1, step) if s in sent_at_step]
        planned = (self._scheduled(s, timeline) for s in range(step, step + lead))
        committed = [a for a in planned if a is not None]
        req = PlanRequest(list(history), np.asarray(past).reshape(-1, self.a_dim),
                          np.asarray(committed).reshape(-1, self.a_dim), {"step": step})
        return step + len(committed), req

    def _jumps(self, sent: dict[int, np.ndarray], chunk_of: dict[int, int]) -> dict[str, float | None]:
        n = self.robot.constants.n_joints
        inside, boundary = [], []
        for s in sorted(sent):
            if s - 1 in sent and s in chunk_of and s - 1 in chunk_of:
                jump = float(np.linalg.norm(sent[s][:n] - sent[s - 1][:n]))
                (boundary if chunk_of[s] != chunk_of[s - 1] else inside).append(jump)
        self.jumps = {"inside": inside, "boundary": boundary}
        p_in = _pct(inside, 95) if inside else None
        p_b = _pct(boundary, 95) if boundary else None
        return {"inside": p_in, "boundary": p_b,
                "ratio": p_b / p_in if p_in and p_b is not None and p_in > 0 else None,
                "boundaries": len(boundary)}
