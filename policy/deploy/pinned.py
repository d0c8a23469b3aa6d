"""A compiled policy served from one thread, warmed up before the robot moves.

``torch.compile``'s CUDA graphs belong to the thread that recorded them: replaying them from
another thread fails (pytorch/pytorch#123177), and the node plans its first chunk on its control
thread and the rest on a fresh inference thread per episode, while a server answers on its pool's.
``PinnedSource`` therefore runs every ``plan`` on one long-lived thread of its own. ``warm_up``
plans on that thread from a simulated observation of the task before the first request, so the
compilation (tens of seconds) and the graph recording are never paid by a robot waiting for a
chunk, nor counted in the latencies the node chooses its lead from.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from policy.deploy.source import ChunkSource, PlanRequest

WARM_UP_CALLS = 3
"""Plans per request shape: torch.compile traces on the first, CUDA graph trees record on the
second and replay from the third."""


class PinnedSource:
    """``source`` with every ``plan`` run on one thread (``thread_name``); other attributes are
    the source's own."""

    def __init__(self, source: ChunkSource, thread_name: str = "reverie-policy") -> None:
        self.source = source
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)

    def plan(self, request: PlanRequest) -> np.ndarray:
        return self._pool.submit(self.source.plan, request).result()

    def run(self, fn, *args: Any) -> Any:
        """``fn(*args)`` on the source's thread (its result, or its exception re-raised here)."""
        return self._pool.submit(fn, *args).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __getattr__(self, name: str) -> Any:  # max_committed, execute_steps, policy, decisions...
        if name == "source":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.source, name)


def warm_up_requests(task: str, robot: str, n_obs_steps: int, committed: int) -> list[PlanRequest]:
    """One request of each shape a node sends: the first (no past, nothing committed) and a later
    one (To-1 past actions, ``committed`` committed), from the task's simulated start state."""
    from sim.env import ReverieEnv

    env = ReverieEnv(task, robot)
    try:
        obs, _ = env.reset(seed=0)
    finally:
        env.close()
    action = env.robot.home_action  # the arm holding its start pose
    a_dim = len(action)
    empty = np.zeros((0, a_dim))
    return [PlanRequest([obs], empty, empty),
            PlanRequest([obs] * n_obs_steps, np.tile(action, (max(n_obs_steps - 1, 0), 1)),
                        np.tile(action, (committed, 1)))]


def warm_up(source: PinnedSource, requests: list[PlanRequest], calls: int = WARM_UP_CALLS) -> dict[str, Any]:
    """Plan each request ``calls`` times on the source's thread; the time of each call (ms): the
    first is the compilation, the last what a robot will see."""
    ms = []

    def timed(fn, *args: Any) -> np.ndarray:
        t = time.perf_counter()
        out = np.asarray(fn(*args))
        ms.append((time.perf_counter() - t) * 1e3)
        if not np.all(np.isfinite(out)):
            raise ValueError("the compiled policy planned NaN/inf while warming up; run without "
                             "compile_mode (eager) and report the checkpoint")
        return out

    for request in requests:
        for _ in range(calls):
            timed(source.plan, request)
    controller = getattr(source, "controller", None)
    if controller is not None:  # a refinement's batch (refine_candidates) is a graph of its own
        p, n = controller.policy, controller.cfg.refine_candidates

        def refine_batch() -> np.ndarray:
            return p.sample(p.observation_window(), p.instructions, n, steps=source.steps).cpu().numpy()

        for _ in range(calls):
            timed(source.run, refine_batch)
    return {"calls": len(ms), "first_ms": ms[0], "last_ms": ms[-1], "total_s": sum(ms) / 1e3}


def compile_source(source: ChunkSource, mode: str, device: str) -> tuple[PinnedSource, dict[str, Any]]:
    """``source``'s denoiser compiled in ``mode`` on a thread of its own, warmed up; and the
    warm-up's report."""
    from policy.diffusion.config import check_compile_device, check_compile_mode

    check_compile_mode(mode)
    check_compile_device(mode, device)
    policy = source.policy
    pinned = PinnedSource(source)
    try:
        pinned.run(policy.compile_denoiser, mode)
        report = warm_up(pinned, warm_up_requests(policy.shapes.task, policy.shapes.robot,
                                                  policy.cfg.n_obs_steps, source.max_committed))
    except BaseException:
        pinned.close()
        raise
    return pinned, {"mode": mode, **report}
