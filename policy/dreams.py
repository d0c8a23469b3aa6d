"""What a dreamer predicts for K candidate trajectories, and the shared definitions of its labels.

A candidate is ``(H, A)`` absolute joint targets starting at the current control step. Its dream
gives, for every step h = 1..H (the state after executing targets 0..h-1):

```
ee_pos      (B, K, H, 3)       tool-centre point, m, world frame
object_pos  (B, K, H, n, 3)    each observed cube, m (n = 0 for Reach)
holding     (B, K, H, n)       probability the cube is lifted off the table (grasped)
touching    (B, K, H, n)       probability the tool is within TOUCH_RADIUS of the cube
progress    (B, K, H)          task progress in [0, 1] (the task's own dense measure)
success     (B, K, H)          probability the task has been solved by step h
```
The learned world model and the simulator oracle fill the same record, so planners, evaluation
and visualisation never care which produced it. A dreamer that dreams each candidate several ways
(an ensemble's members, the physics dreamer's model variants and hedged readings) returns their
field-by-field mean and keeps the dreams themselves as ``draws``, equally likely, so a planner can
score each and average the scores instead of scoring the mean (``Dreams.average``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

History = Sequence[list[dict[str, Any]]]
"""What a dreamer encodes: the last To observations, oldest first, each a list with one observation
dict per batch row."""

TOUCH_RADIUS = 0.06
"""Tool-to-cube-centre distance (m) counted as touching the cube."""
LIFT_MARGIN = 0.01
"""Height (m) above resting on the table at which a cube counts as lifted."""
FIELDS = ("ee_pos", "object_pos", "holding", "touching", "progress", "success")
"""The predicted arrays of a ``Dreams``, each (B, K, H, ...)."""
DREAM_PARTS = {"objects": ("object_pos", "holding", "touching"), "tool": ("ee_pos",)}
"""The parts of a dream an audit can take from the simulator one at a time, keeping the rest as
dreamed: which part's errors cost the choice what it misses."""


@dataclass
class Dreams:
    """Predicted futures of K candidates for B observations (see the module docstring)."""

    ee_pos: np.ndarray
    object_pos: np.ndarray
    holding: np.ndarray
    touching: np.ndarray
    progress: np.ndarray
    success: np.ndarray
    draws: tuple[Dreams, ...] = field(default=(), repr=False, compare=False)
    """Equally likely dreams of the same candidates whose mean this is (see the module docstring);
    empty for a single dream."""

    def __post_init__(self) -> None:
        b, k, h = self.progress.shape
        n = self.object_pos.shape[3]
        want = {"ee_pos": (b, k, h, 3), "object_pos": (b, k, h, n, 3), "holding": (b, k, h, n),
                "touching": (b, k, h, n), "success": (b, k, h)}
        for name, shape in want.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"Dreams.{name} has shape {getattr(self, name).shape}, expected {shape}")
        for d in self.draws:
            if d.object_pos.shape != self.object_pos.shape or d.draws:
                raise ValueError(f"a draw of shape {d.object_pos.shape} (with {len(d.draws)} draws of its "
                                 f"own) under dreams of shape {self.object_pos.shape}; draws are single "
                                 "dreams of the same candidates")

    @classmethod
    def average(cls, draws: Sequence[Dreams]) -> Dreams:
        """The field-by-field mean of equally likely dreams of the same candidates, keeping them as
        its ``draws`` (a single dream is returned as it is)."""
        if len(draws) == 1:
            return draws[0]
        return cls(**{n: np.mean([getattr(d, n) for d in draws], axis=0) for n in FIELDS}, draws=tuple(draws))

    def with_parts(self, **parts: np.ndarray) -> Dreams:
        """These dreams with some fields replaced, in the mean and in every draw alike."""
        return replace(self, **parts, draws=tuple(replace(d, **parts) for d in self.draws))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, K, H)."""
        return self.progress.shape

    def row(self, b: int) -> Dreams:
        """Observation ``b``'s K dreams, keeping a batch axis of 1."""
        return Dreams(**{n: getattr(self, n)[b:b + 1] for n in FIELDS},
                      draws=tuple(d.row(b) for d in self.draws))

    def take_row(self, b: int) -> dict[str, np.ndarray]:
        """Observation ``b``'s fields without the B axis: (K, H, ...) each."""
        return {n: getattr(self, n)[b] for n in FIELDS}

    def take(self, b: int, k: int) -> dict[str, np.ndarray]:
        """Candidate ``k`` of observation ``b``: each field without the B and K axes."""
        return {n: getattr(self, n)[b, k] for n in FIELDS}


def holding_label(object_pos: np.ndarray, cube_half: float) -> np.ndarray:
    """(..., n, 3) cube positions -> (..., n) 1.0 where a cube is lifted off the table."""
    return (object_pos[..., 2] > cube_half + LIFT_MARGIN).astype(np.float32)


def touching_label(ee_pos: np.ndarray, object_pos: np.ndarray) -> np.ndarray:
    """(..., 3) tool and (..., n, 3) cubes -> (..., n) 1.0 where the tool is at a cube."""
    return (np.linalg.norm(object_pos - ee_pos[..., None, :], axis=-1) < TOUCH_RADIUS).astype(np.float32)
