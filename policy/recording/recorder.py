"""Record episodes, and the controller's decisions in them, to rerun (file, spawned or running viewer).

```
rec = Recorder("eval.rrd", episodes=[1000000, 1000001])      # or "spawn", or "rerun+http://..."
rec.begin_episode(seed, env.scene, env.control_dt, cubes)    # static geometry, once
rec.log_state(seed, t, env.scene.data, obs)                  # every control step (and t = 0)
rec.log_decision(seed, decision)                             # every control cycle
rec.close()
```
Entity paths are in ``policy.recording.paths``; everything an episode logs lies under
``/episodes/<id>`` on the ``step`` and ``sim_time`` timelines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import mujoco
import numpy as np
import rerun as rr

from policy.controller import Decision
from policy.dream_error import error_at, positions
from policy.recording import paths
from policy.recording.blueprint import default_blueprint
from policy.recording.geometry import SceneGeometry
from sim.scene import Scene

CHOSEN_RGBA = np.array([1.0, 0.55, 0.0, 0.9])
"""The chosen candidate: ghost, tool path."""
REJECTED_RGBA = np.array([0.55, 0.6, 0.75, 0.12])
"""Rejected candidates' ghosts, faded."""
REJECTED_PATH_RGBA = np.array([0.45, 0.55, 0.95, 0.45])
EXECUTED_RGBA = np.array([0.1, 0.8, 0.3, 1.0])
BEFORE_RGBA = np.array([0.9, 0.2, 0.9, 0.8])
"""A refinement's tool path before (magenta) and after (the chosen colour)."""
PATH_RADIUS, CHOSEN_RADIUS = 0.002, 0.005
"""Line radii (m) of faded and highlighted paths."""


def _u8(rgba: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(rgba) * 255), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class RerunTarget:
    """Where a recording goes: ``PATH.rrd`` (a file), ``spawn`` (start a viewer) or the URL of a
    running viewer (``rerun+http://HOST:PORT/proxy``)."""

    kind: Literal["file", "spawn", "connect"]
    where: str | None = None

    @classmethod
    def parse(cls, spec: str) -> RerunTarget:
        if spec == "spawn":
            return cls("spawn")
        if spec.startswith(("rerun+http://", "rerun+https://", "rerun://")):
            return cls("connect", spec)
        if spec.endswith(".rrd"):
            return cls("file", spec)
        raise ValueError(f"rerun={spec!r} is not a recording target: give a file ending in .rrd, "
                         "`spawn` to open a viewer, or a viewer URL like rerun+http://127.0.0.1:9876/proxy")


@dataclass
class _Episode:
    geometry: SceneGeometry
    scratch: Scene
    """A private copy of the scene's data, posed for ghosts."""
    control_dt: float
    object_rgba: np.ndarray
    executed: list[np.ndarray] = field(default_factory=list)
    decision: Decision | None = None
    refined_shown: bool = False


class Recorder:
    """Writes one recording holding the episodes named at construction (see the module docstring)."""

    def __init__(self, target: RerunTarget | str, episodes: list[int | str], *, images: bool = False,
                 app_id: str = "reverie", recording_id: str | None = None) -> None:
        self.target = RerunTarget.parse(target) if isinstance(target, str) else target
        if not episodes:
            raise ValueError("a recording needs at least one episode to record")
        self.wanted = set(episodes)
        self.images = images
        self.rec = rr.RecordingStream(app_id, recording_id=recording_id)
        blueprint = default_blueprint(list(episodes), images)
        if self.target.kind == "file":
            Path(self.target.where).parent.mkdir(parents=True, exist_ok=True)
            self.rec.save(self.target.where, default_blueprint=blueprint)
        elif self.target.kind == "spawn":
            self.rec.spawn(default_blueprint=blueprint)
        else:
            self.rec.connect_grpc(self.target.where, default_blueprint=blueprint)
        self._episodes: dict[int | str, _Episode] = {}

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def records(self, eid: int | str) -> bool:
        return eid in self.wanted

    def close(self) -> None:
        """Flush everything to the file or viewer."""
        self.rec.flush()
        self.rec.disconnect()

    # ---- logging -----------------------------------------------------------------------------
    def _log(self, eid: int | str, path: str, arch: Any, static: bool = False) -> None:
        self.rec.log(f"{paths.episode(eid)}/{path}", arch, static=static)

    def _at(self, ep: _Episode, t: int) -> None:
        self.rec.set_time(paths.STEP, sequence=t)
        self.rec.set_time(paths.SIM_TIME, duration=t * ep.control_dt)

    def begin_episode(self, eid: int | str, scene: Scene, control_dt: float,
                      objects: tuple[str, ...] = (), instruction: str | None = None) -> None:
        """Static geometry of ``scene`` (its model and the robot's bodies); ``objects`` name the
        bodies whose positions observations carry (``object_poses`` order)."""
        geometry = SceneGeometry(scene.model, scene.robot_bodies)
        rgba = np.array([geometry.rgba[geometry.geoms_of[scene.model.body(o).id][0]] for o in objects]
                        ).reshape(-1, 4)
        ep = self._episodes[eid] = _Episode(geometry, Scene(scene.model, scene.robot), control_dt, rgba)
        for path, arch in geometry.static():
            self._log(eid, path, arch, static=True)
        self._log(eid, paths.WORLD, rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        if instruction:
            self._at(ep, 0)
            self._log(eid, paths.REASON, rr.TextLog(f"instruction: {instruction}", level="INFO"))

    def log_state(self, eid: int | str, t: int, data: mujoco.MjData, obs: dict[str, Any],
                  image: np.ndarray | None = None) -> None:
        """The scene after ``t`` control steps: body poses, the executed tool path so far, the chosen
        dream's error against this state and, given one, the camera image."""
        ep = self._episodes[eid]
        self._at(ep, t)
        for path, tf in ep.geometry.poses(data):
            self._log(eid, path, tf)
        ee, objects = positions(obs)
        ep.executed.append(ee)
        if len(ep.executed) > 1:
            self._log(eid, paths.EXECUTED, rr.LineStrips3D([np.stack(ep.executed)],
                                                           colors=[_u8(EXECUTED_RGBA)], radii=[PATH_RADIUS]))
        d = ep.decision
        if d is not None and 1 <= t - d.step <= d.dreams["ee_pos"].shape[1]:
            e, o = error_at(d.executed_dream(), t - d.step, ee, objects)
            self._log(eid, paths.DREAM_ERROR_EE, rr.Scalars([e * 100]))
            if o is not None:
                self._log(eid, paths.DREAM_ERROR_OBJECT, rr.Scalars([o * 100]))
        if image is not None:
            self._log(eid, paths.CAMERA, rr.Image(image))

    def log_scalars(self, eid: int | str, t: int, values: dict[str, float]) -> None:
        """Scalar plots under ``metrics/`` (``values``: path below metrics -> value) at step ``t``."""
        self._at(self._episodes[eid], t)
        for name, v in values.items():
            self._log(eid, f"{paths.METRICS}/{name}", rr.Scalars([float(v)]))

    def log_text(self, eid: int | str, t: int, text: str) -> None:
        self._at(self._episodes[eid], t)
        self._log(eid, paths.REASON, rr.TextLog(text, level="INFO"))

    def log_decision(self, eid: int | str, d: Decision) -> None:
        """All K dreamed futures (chosen bright, rejected faded), ghosts of the arm at each
        candidate's final target, the scores, the reason and any refinement."""
        ep = self._episodes[eid]
        ep.decision = d
        self._at(ep, d.step)
        k = len(d.scores)
        chosen = np.arange(k) == d.choice
        ee = d.dreams["ee_pos"]
        self._log(eid, paths.EE_PATHS, rr.LineStrips3D(
            list(ee), colors=_u8(np.where(chosen[:, None], CHOSEN_RGBA, REJECTED_PATH_RGBA)),
            radii=np.where(chosen, CHOSEN_RADIUS, PATH_RADIUS), labels=[f"{i}: {s:.3f}" for i, s in
                                                                        enumerate(d.scores)]))
        obj = d.dreams["object_pos"]  # (K, H, n, 3)
        n = obj.shape[2]
        if n:
            rgba = np.repeat(ep.object_rgba[None], k, 0).copy()  # (K, n, 4)
            rgba[~chosen, :, 3] = 0.3
            self._log(eid, paths.OBJECT_PATHS, rr.LineStrips3D(
                [obj[i, :, j] for i in range(k) for j in range(n)], colors=_u8(rgba.reshape(-1, 4)),
                radii=np.repeat(np.where(chosen, CHOSEN_RADIUS, PATH_RADIUS), n)))
        executed = d.executed_dream()
        self._log(eid, paths.CHOSEN, rr.LineStrips3D([executed["ee_pos"]], colors=[_u8(CHOSEN_RGBA)],
                                                     radii=[CHOSEN_RADIUS]))
        scratch = ep.scratch
        ghost_rgba = np.where(chosen[:, None], CHOSEN_RGBA, REJECTED_RGBA)
        ghosts = ep.geometry.ghosts(scratch.data, lambda q: scratch.set_robot(q[:-1], q[-1]),
                                    d.candidates[:, -1], ghost_rgba)
        for kind, arch in ghosts.items():
            self._log(eid, f"{paths.GHOSTS}/{kind}", arch)
        self._log(eid, paths.SCORES, rr.BarChart(np.asarray(d.scores, np.float64)))
        self._log(eid, paths.REASON, rr.TextLog(self.describe(d), level="INFO"))
        self._log_refinements(eid, ep, d)

    @staticmethod
    def describe(d: Decision) -> str:
        """The decision in words, as the TextLog shows it."""
        order = np.argsort(d.scores)[::-1]
        runner = f", next best {d.scores[order[1]]:.3f}" if len(order) > 1 else ""
        dream = d.dreams
        head = (f"step {d.step}: {d.planner} chose candidate {d.choice} of {len(d.scores)} "
                f"(score {d.scores[d.choice]:.3f}{runner}; dreamed success "
                f"{dream['success'][d.choice, -1]:.2f}, progress {dream['progress'][d.choice, -1]:.2f})")
        if d.resampled:
            head += f" after resampling {d.resampled}"
        scores = " ".join(f"{s:.2f}" for s in d.scores)
        return f"{head}\nreason: {d.reason}\nscores: {scores}"

    def _log_refinements(self, eid: int | str, ep: _Episode, d: Decision) -> None:
        if not d.refinements:
            if ep.refined_shown:
                for path in (paths.REFINE_BEFORE, paths.REFINE_AFTER):
                    self._log(eid, path, rr.Clear(recursive=False))
                ep.refined_shown = False
            return
        for r in d.refinements:
            best = int(np.argmax(r.scores))
            self._log(eid, paths.REASON, rr.TextLog(
                f"step {d.step}: refined the last {r.last_x} steps ({len(r.scores)} variants, "
                f"{r.denoising_steps} denoising steps each): best {r.scores[best]:.3f} against "
                f"{r.score_before:.3f} before, {'kept' if r.kept else 'discarded'}", level="INFO"))
            before = rr.LineStrips3D([d.dreams["ee_pos"][d.choice]], colors=[_u8(BEFORE_RGBA)],
                                     radii=[PATH_RADIUS])
            self._log(eid, paths.REFINE_BEFORE, before)
            if r.dreams is not None:
                self._log(eid, paths.REFINE_AFTER, rr.LineStrips3D(
                    [r.dreams["ee_pos"][best]], colors=[_u8(CHOSEN_RGBA if r.kept else REJECTED_PATH_RGBA)],
                    radii=[PATH_RADIUS]))
        ep.refined_shown = True
