"""Action chunks on the plan's clock, and what the robot should do at any instant.

The plan runs at ``plan_dt`` (0.1 s, the policy's control step); the robot at its own rate
(100-500 Hz). A ``Chunk`` holds targets for consecutive plan steps ``start, start+1, ...``; at
plan step k the robot is commanded target k, and between two plan steps its command moves
linearly towards the next target, so it never jumps. (The node reads a chunk half a step late,
so the command passes target k mid-step: ``NodeConfig.centre_targets``.)

A chunk's first ``planned`` targets are its plan: the node asks for the next chunk early enough to
take over before they run out. Any targets after them are its reserve: the policy's own prediction
further ahead (the rest of its horizon), followed only when the next chunk is late, so a slow
inference continues the motion instead of stopping the arm at the join.
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
    planned: int | None = None
    """How many of ``actions`` are the plan (the rest: reserve); None: all of them."""

    def __post_init__(self) -> None:
        a = np.asarray(self.actions, dtype=np.float64)
        if a.ndim != 2 or len(a) == 0:
            raise ValueError(f"a chunk needs (n, A) actions with n >= 1, got shape {a.shape}")
        if self.planned is not None and not 0 <= self.planned <= len(a):
            raise ValueError(f"planned must lie in [0, {len(a)}] (the chunk's length), got {self.planned}")
        self.actions = a

    @property
    def planned_end(self) -> int:
        """First plan step after the chunk's plan (its reserve, if any, runs from here)."""
        return self.start + (len(self.actions) if self.planned is None else self.planned)

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
        planned = None if self.planned is None else max(self.planned - k, 0)
        return Chunk(self.start + k, self.actions[k:], self.made_at, self.id, planned)


def blend_join(before: np.ndarray, actions: np.ndarray, steps: int, n_joints: int) -> np.ndarray:
    """``actions`` (a new chunk's targets) with the mismatch at its join spread over its first
    ``steps`` plan steps, so the arm's joints keep their velocity through the switch.

    ``before`` holds the targets sent for the plan steps just before the chunk's first, oldest
    first. The join's mismatch is how far the chunk's first target lies from where the committed
    motion was heading (the last target plus the last step): ``e``. Target ``i < steps`` moves back
    by ``e (steps - i) / (steps + 1)``, so each of the first ``steps + 1`` steps carries an even
    share of ``e``; targets from ``steps`` on are the policy's own. Only the first ``n_joints``
    (the arm) are blended: the gripper's command is left as planned. A chunk that already continues
    the motion is returned unchanged. This is not temporal ensembling: no two chunks are averaged;
    inpainting leaves a residual mismatch at the join (replacement inpainting conditions the free
    steps only weakly on the known ones), and this removes it before the robot sees it."""
    a = np.array(actions, dtype=np.float64)
    b = np.asarray(before, dtype=np.float64).reshape(-1, a.shape[1])
    if steps < 0:
        raise ValueError(f"join blend steps must be >= 0, got {steps}")
    if steps == 0 or len(b) == 0:
        return a
    velocity = b[-1, :n_joints] - b[-2, :n_joints] if len(b) >= 2 else 0.0
    mismatch = a[0, :n_joints] - (b[-1, :n_joints] + velocity)
    m = min(steps, len(a))
    share = (steps - np.arange(m)) / (steps + 1)
    a[:m, :n_joints] -= share[:, None] * mismatch
    return a
