"""A compiled policy in the node and the server: planned on one thread, warmed up before use.

The real torch.compile (and CUDA graphs) are not run here: a stand-in ``compile_denoiser``
records the thread it ran on and the thread and batch of every denoiser call after it.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from policy.checkpoint import load_policy
from policy.cli import main
from policy.configs import ServeConfig
from policy.deploy.config import NodeConfig
from policy.deploy.pinned import WARM_UP_CALLS, PinnedSource, warm_up, warm_up_requests
from policy.deploy.run import deploy
from policy.deploy.server import PolicyServer, RemoteSource
from policy.deploy.source import PlanRequest, PolicySource
from policy.diffusion.policy import DiffusionPolicy


class Recorder:
    def __init__(self) -> None:
        self.threads: list[int] = []

    def plan(self, request: PlanRequest) -> np.ndarray:
        self.threads.append(threading.get_ident())
        if request.meta.get("fail"):
            raise ValueError("bad request")
        return np.zeros((3, 8))

    max_committed = 5


def _stand_in_compile(monkeypatch) -> dict:
    """Replace compile_denoiser; returns what it records: ``compiled_on`` and per denoiser call
    (thread, batch)."""
    seen: dict = {"compiled_on": [], "calls": []}

    def compile_denoiser(self, mode="default"):
        seen["compiled_on"].append(threading.get_ident())
        eager = self.denoiser.forward

        def forward(x, *args, **kwargs):
            seen["calls"].append((threading.get_ident(), x.shape[0]))
            return eager(x, *args, **kwargs)
        self.denoiser.forward = forward

    monkeypatch.setattr(DiffusionPolicy, "compile_denoiser", compile_denoiser)
    return seen


def test_a_pinned_source_plans_every_request_on_one_thread_of_its_own():
    inner = Recorder()
    pinned = PinnedSource(inner)
    try:
        request = PlanRequest([{}], np.zeros((0, 8)), np.zeros((0, 8)))
        pinned.plan(request)  # from this thread, as the node's first chunk is
        workers = [threading.Thread(target=pinned.plan, args=(request,)) for _ in range(2)]
        for w in workers:  # as the node's inference thread of each episode is
            w.start()
            w.join()
        assert len(inner.threads) == 3 and len(set(inner.threads)) == 1
        assert inner.threads[0] != threading.get_ident()
        with pytest.raises(ValueError, match="bad request"):  # the caller sees the source's error
            pinned.plan(PlanRequest([{}], np.zeros((0, 8)), np.zeros((0, 8)), meta={"fail": True}))
        assert pinned.max_committed == 5  # the source's own attributes show through
    finally:
        pinned.close()


def test_a_warm_up_that_plans_nan_stops_before_any_robot_is_driven():
    class NaNs(Recorder):
        def plan(self, request):
            return np.full((3, 8), np.nan)

    pinned = PinnedSource(NaNs())
    try:
        with pytest.raises(ValueError, match="planned NaN/inf while warming up; run without compile_mode"):
            warm_up(pinned, [PlanRequest([{}], np.zeros((0, 8)), np.zeros((0, 8)))])
    finally:
        pinned.close()


def test_warm_up_requests_are_ones_a_real_policy_plans(push_run):
    policy = load_policy(push_run)
    source = PinnedSource(PolicySource(policy))
    try:
        requests = warm_up_requests("push", "panda", policy.cfg.n_obs_steps, source.max_committed)
        assert [len(r.committed) for r in requests] == [0, source.max_committed]
        report = warm_up(source, requests, calls=2)
    finally:
        source.close()
    assert report["calls"] == 4 and report["first_ms"] > 0 and report["last_ms"] > 0


def test_a_compiled_controller_in_the_node_plans_only_on_the_thread_it_was_compiled_on(
        push_run, push_wm, monkeypatch):
    seen = _stand_in_compile(monkeypatch)
    r = deploy(checkpoint=str(push_run), planner="value", world_model=str(push_wm), k=2, episodes=2,
               node=NodeConfig(seconds=1.0), compile_mode="default")
    assert len(seen["compiled_on"]) == 1
    pinned = seen["compiled_on"][0]
    assert pinned != threading.get_ident()
    threads = {t for t, _ in seen["calls"]}
    assert threads == {pinned}, "a denoiser call ran off the thread its graphs belong to"
    # warmed up before the first request: both request shapes, then a refinement's batch
    warm = r["compile"]
    assert warm["mode"] == "default" and warm["calls"] == 3 * WARM_UP_CALLS
    assert {b for _, b in seen["calls"]} >= {2, 4}  # K candidates, and refine_candidates variants
    assert all(e["chunks"] >= 2 for e in r["per_episode"])


def test_a_compiled_server_answers_from_its_pinned_thread(push_run, monkeypatch):
    seen = _stand_in_compile(monkeypatch)
    from policy.deploy.pinned import compile_source

    source, warm = compile_source(PolicySource(load_policy(push_run)), "default", "cpu")
    server = PolicyServer(source, port=0).start()
    try:
        remote = RemoteSource(f"127.0.0.1:{server.port}", timeout_s=30)
        before = len(seen["calls"])
        req = warm_up_requests("push", "panda", 2, 2)[1]
        actions = remote.plan(req)
        assert actions.ndim == 2 and np.all(np.isfinite(actions))
        assert len(seen["calls"]) > before
        assert {t for t, _ in seen["calls"]} == set(seen["compiled_on"])
    finally:
        server.stop(None)
        source.close()
    assert warm["calls"] == 2 * WARM_UP_CALLS


def test_compile_settings_are_checked_before_anything_loads(push_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["deploy", f"checkpoint={push_run}", "compile_mode=reduce-overhead"]) == 2
    assert "needs device=cuda" in capsys.readouterr().err
    assert main(["deploy", f"checkpoint={push_run}", "compile_mode=fastest"]) == 2
    assert "unknown compile mode 'fastest'" in capsys.readouterr().err
    assert main(["deploy", "server=127.0.0.1:1", "compile_mode=default"]) == 2
    assert "give it to `reverie serve`" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs device=cuda"):
        ServeConfig(compile_mode="max-autotune")
    assert ServeConfig(compile_mode="reduce-overhead", device="cuda:0").compile_mode == "reduce-overhead"

