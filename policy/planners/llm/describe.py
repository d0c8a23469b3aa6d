"""Dreams -> words: what each dreamed future does to the scene, in a form a language model reads.

Every candidate gets one ``Outcome``: the object it acts on, what it does to it (reaches for,
pushes, grasps, carries, places), the target the object ends on or heads for, and whether it
collides. Outcomes are qualitative on purpose: candidates that do the same thing read the same,
so they are offered to the language model as one option (the value score picks among them), and
identical prompts recur, so a deterministic model's answer can be reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policy.dreams import Dreams
from sim import keys
from sim.language import SceneVocabulary

HELD = 0.5
"""Probability above which a dreamed cube counts as held (touched)."""
MOVED = 0.01
"""A cube moved further than this (m) in the dream was pushed or carried."""
HEADING = 0.01
"""A cube whose distance to a target shrinks by more than this (m) is heading for it."""
APPROACH = 0.02
"""A tool whose distance to a cube shrinks by more than this (m) is moving towards it."""
TABLE = 0.003
"""Tool heights below this (m) count as hitting the table (as in the value planner)."""


@dataclass(frozen=True)
class Outcome:
    """What one dreamed future does, qualitatively (the grouping key is the whole record)."""

    obj: int | None
    """Index of the object acted on (``SceneVocabulary.objects``), or None."""
    action: str
    """idle, moves towards, reaches, pushes, grasps, carries, places."""
    target: int | None
    """Target the object ends on or heads for, or None."""
    on_target: bool
    collision: bool

    def text(self, vocab: SceneVocabulary) -> str:
        if self.obj is None:
            words = "moves the arm without touching anything"
        else:
            name = vocab.objects[self.obj]
            words = {"moves towards": f"moves the gripper towards the {name}",
                     "reaches": f"reaches the {name}", "pushes": f"pushes the {name}",
                     "grasps": f"grasps the {name}", "carries": f"carries the {name}",
                     "places": f"places the {name}"}[self.action]
            if self.target is not None:
                where = "onto" if self.on_target else "towards"
                words += f" {where} the {vocab.targets[self.target]}"
        return words + (" and hits the table" if self.collision else "")


def outcomes(dreams: Dreams, observation: dict, vocab: SceneVocabulary) -> list[Outcome]:
    """One ``Outcome`` per candidate of a one-row ``Dreams`` (see ``Dreams.row``)."""
    d = dreams.take_row(0)  # (K, H, ...)
    n_obj = d["object_pos"].shape[2]
    if n_obj != len(vocab.objects):
        raise ValueError(f"dreams have {n_obj} objects but the vocabulary names {len(vocab.objects)}")
    now = np.asarray(observation[keys.OBJECT_POSES], dtype=float)[:, :3] if n_obj else np.zeros((0, 3))
    tool_now = np.asarray(observation[keys.EE_POSE], dtype=float)[:3]
    targets = np.asarray(observation[keys.GOAL], dtype=float).reshape(-1, 3)
    if len(targets) != len(vocab.targets):
        raise ValueError(f"goal has {len(targets)} targets but the vocabulary names {len(vocab.targets)}")
    return [_outcome({k: v[j] for k, v in d.items()}, now, tool_now, targets, vocab.on_radius)
            for j in range(d["progress"].shape[0])]


def _outcome(d: dict[str, np.ndarray], now: np.ndarray, tool_now: np.ndarray, targets: np.ndarray,
             on_radius: float) -> Outcome:
    collision = bool((d["ee_pos"][:, 2] < TABLE).any())
    if not len(now):
        return Outcome(None, "idle", _target_of(d["ee_pos"][0], d["ee_pos"][-1], targets, on_radius)[0],
                       False, collision)
    end = d["object_pos"][-1]
    held = d["holding"].max(0) > HELD
    moved = np.linalg.norm(end[:, :2] - now[:, :2], axis=-1)
    touched = d["touching"].max(0) > HELD
    if held.any():
        obj = int(np.argmax(np.where(held, d["holding"].mean(0), -1)))
        if d["holding"][-1, obj] <= HELD:
            action = "places"
        elif d["holding"][0, obj] > HELD:
            action = "carries"
        else:
            action = "grasps"
    elif moved.max() > MOVED:
        obj, action = int(np.argmax(moved)), "pushes"
    elif touched.any():
        obj, action = int(np.argmax(np.where(touched, d["touching"].mean(0), -1))), "reaches"
    else:
        gap_now = np.linalg.norm(now - tool_now, axis=-1)
        gap_end = np.linalg.norm(now - d["ee_pos"][-1], axis=-1)
        closer = gap_now - gap_end
        if closer.max() <= APPROACH:
            return Outcome(None, "idle", None, False, collision)
        obj, action = int(np.argmax(closer)), "moves towards"
    target, on = (None, False)
    if action in ("pushes", "grasps", "carries", "places"):
        target, on = _target_of(now[obj], end[obj], targets, on_radius)
    return Outcome(obj, action, target, on, collision)


def _target_of(start: np.ndarray, end: np.ndarray, targets: np.ndarray,
               on_radius: float) -> tuple[int | None, bool]:
    """The target ``end`` lies on, else the one it closed in on most (if any)."""
    gap_end = np.linalg.norm(targets[:, :2] - end[:2], axis=-1)
    if gap_end.min() < on_radius:
        return int(np.argmin(gap_end)), True
    closer = np.linalg.norm(targets[:, :2] - start[:2], axis=-1) - gap_end
    return (int(np.argmax(closer)), False) if closer.max() > HEADING else (None, False)


@dataclass
class Option:
    """Candidates whose dreams do the same thing; ``best`` is the one the value score prefers."""

    outcome: Outcome
    members: list[int]
    best: int


def group(found: list[Outcome], scores: np.ndarray) -> list[Option]:
    """Options in order of their best member's score, best first."""
    by: dict[Outcome, list[int]] = {}
    for j, o in enumerate(found):
        by.setdefault(o, []).append(j)
    options = [Option(o, m, max(m, key=lambda j: scores[j])) for o, m in by.items()]
    return sorted(options, key=lambda opt: -scores[opt.best])
