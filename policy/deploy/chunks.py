"""Action chunks on the plan's clock, and what the robot should do at any instant.

The plan runs at ``plan_dt`` (0.1 s, the policy's control step); the robot at its own rate
(100-500 Hz). A ``Chunk`` holds targets for consecutive plan steps ``start, start+1, ...``; at
plan step k the robot is commanded target k, and between two plan steps its command moves
linearly towards the next target, so it never jumps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Chunk:
    start: int
    """Plan step at which ``actions[0]`` applies."""
    actions: np.ndarray
    """(n, A) absolute targets for plan steps start .. start+n-1."""
    made_at: float = 0.0
    """Monotonic time the chunk was asked for (for its age)."""
    id: int = 0

    def __post_init__(self) -> None:
        a = np.asarray(self.actions, dtype=np.float64)
        if a.ndim != 2 or len(a) == 0:
            raise ValueError(f"a chunk needs (n, A) actions with n >= 1, got shape {a.shape}")
        self.actions = a

    @property
    def end(self) -> int:
        """First plan step after the chunk."""
        return self.start + len(self.actions)

    def covers(self, u: float) -> bool:
        return self.start <= u < self.end

    def at(self, u: float) -> np.ndarray:
        """The command at plan time ``u`` (steps, fractional), linear between targets; held past
        the last one."""
        i = int(np.floor(u)) - self.start
        if i < 0:
            raise ValueError(f"chunk starting at step {self.start} asked for step {u:.2f}")
        if i >= len(self.actions) - 1:
            return self.actions[-1].copy()
        frac = u - np.floor(u)
        return (1 - frac) * self.actions[i] + frac * self.actions[i + 1]

    def from_step(self, step: int) -> Chunk:
        """The part of the chunk from plan step ``step`` on (dropping stale actions)."""
        k = max(0, step - self.start)
        if k >= len(self.actions):
            raise ValueError(f"chunk {self.id} ({self.start}..{self.end - 1}) is entirely before step {step}")
        return Chunk(self.start + k, self.actions[k:], self.made_at, self.id)
