"""The planner interface: given K candidates and their dreams, choose one and say why.

A planner sees one observation's decision at a time (``PlanQuery``), so a slow planner (a
language model) and a fast one (``value``) share one interface. It answers with a ``Choice``:
the index, a score per candidate, a reason in words and, optionally, a request to refine the
choice (re-denoise its last ``refine_last`` steps) before it is executed, or to draw
``resample`` fresh candidates and decide again among them.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

import numpy as np

from policy.dreams import Dreams
from sim.language import SceneVocabulary


@dataclass
class PlanQuery:
    """One decision's input. ``candidates`` (K, H, A) start at the current step; ``dreams`` has
    a batch axis of 1 (see ``Dreams.row``)."""

    candidates: np.ndarray
    dreams: Dreams
    instruction: str | None = None
    observation: dict[str, Any] = field(default_factory=dict)
    _: KW_ONLY  # the many optional fields below are named at every call, never placed
    joint_limits: tuple[np.ndarray, np.ndarray] | None = None
    """(lower, upper) of the action vector, for planners that score limit margins."""
    task: str | None = None
    scene: SceneVocabulary | None = None
    """What the objects and targets are called, for planners that talk about the scene."""
    robot: str | None = None
    """The robot's registry name (its workspace sizes), for planners that score positions."""
    dreamer: str | None = None
    """Which dreamer dreamed (``learned``, ``oracle``)."""
    exact: bool = False
    """Whether the dreams' progress and success are the task's own, exactly (the simulator's)."""
    grounding: np.ndarray | None = None
    """(objects, targets) P(object, target | instruction) as the dreamer read it (instructed tasks
    with a world model that reads instructions), else None."""
    start: dict[str, Any] | None = None
    """The episode's first observation, where the tasks measure carrying progress from (the cube's
    starting distance to its target); None measures it from ``observation``."""
    dreamer_reads: bool | None = None
    """Whether every word of the instruction was in the dreamer's training instructions, so its
    ``grounding`` is a reading it was trained for (None: it cannot tell)."""


@dataclass
class Choice:
    index: int
    scores: np.ndarray
    """(K,) higher is better."""
    reason: str
    refine_last: int = 0
    """Ask the controller to re-denoise the chosen trajectory's last X steps (0: no)."""
    resample: int = 0
    """Ask the controller to draw this many fresh candidates and decide again (0: no)."""
    progress: np.ndarray | None = None
    """(K,) the task progress the planner ranked by, where it has one (what ``audit`` compares
    with the simulator's)."""


class Planner(Protocol):
    name: str

    def score(self, query: PlanQuery) -> np.ndarray:
        """(K,) scores of the query's candidates, higher is better."""

    def choose(self, query: PlanQuery) -> Choice: ...
