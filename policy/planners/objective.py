"""Task progress read off dreamed positions: the simulator's own definition applied to a dream.

A learned world model predicts where the tool and cubes go far better than it predicts the task's
staged progress, which jumps at a grasp (on held-out Sort decisions, ranking candidates by progress
computed from the dreamed positions agrees with the simulator's truth at Spearman 0.68 per
decision; the world model's progress head at 0.21; BENCHMARKS.md). So a planner can score a learned
dream with the function the task itself uses: ``staged_carry_progress`` on the pick-and-place
tasks,

```
progress = sum over (cube c, target t) of P(c, t) * staged_carry_progress(tool[H], cube_c[H], t, ...)
success  = sum over (c, t) of P(c, t) * [cube c rests on t at some step of the dream]
```
``slide_progress`` on Push (the share of the way the cube has slid; "rests" there also asks that
the tool has left the cube, as the simulator's success asks that the robot no longer touch it).
Carrying progress is measured from the cube's distance to its target at the episode's start
(``PlanQuery.start``), as the tasks measure it: from the current distance instead, every
candidate that does not bring the cube nearer than it is now would tie at the same stage value.
P is one-hot where the task says which cube goes where (PickPlace, Push); on Sort it is the grounding of
the instruction (P(object, target | instruction), from a planner that reads it). Without a grounding
there is nothing to compute, and the dreamer's own progress and success stand.
"""

from __future__ import annotations

import numpy as np

from policy.planners.base import PlanQuery
from sim import keys
from sim.tasks.base import rests_on, slide_progress, staged_carry_progress
from sim.workspace import WORKSPACES

FIXED_PAIR = {"pick_place": (0, 0), "push": (0, 0)}
"""Tasks whose cube and target are fixed: (object index, target index)."""
GROUNDED = ("sort",)
"""Tasks whose cube and target the instruction names."""
SLID = ("push",)
"""Tasks whose progress is how far the cube has slid (no reach or lift stages); each is also in
FIXED_PAIR."""
MIN_WEIGHT = 1e-3
"""(object, target) pairs less likely than this are skipped."""
PUSH_READY_RADIUS = 0.08
"""Tool-to-cube distance (m) within which the tool is at the cube, ready to push it on."""


def objective_progress(q: PlanQuery, grounding: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray] | None:
    """(K,) progress at the dream's end and (K,) success within it, computed from the dreamed
    positions; None where the task, the query's context or a missing grounding does not allow it."""
    if q.robot not in WORKSPACES or not q.observation or keys.OBJECT_POSES not in q.observation:
        return None
    if q.task in FIXED_PAIR:
        objects = np.asarray(q.observation[keys.OBJECT_POSES]).shape[0]
        targets = np.asarray(q.observation[keys.GOAL]).size // 3
        weights = np.zeros((objects, targets))
        weights[FIXED_PAIR[q.task]] = 1.0
    elif q.task in GROUNDED and grounding is not None:
        weights = np.asarray(grounding, dtype=float)
    else:
        return None
    ws = WORKSPACES[q.robot]
    d = q.dreams.take_row(0)
    cubes_now = np.asarray(q.observation[keys.OBJECT_POSES], dtype=float)[:, :3]
    first = q.start if q.start and keys.OBJECT_POSES in q.start else q.observation
    cubes_first = np.asarray(first[keys.OBJECT_POSES], dtype=float)[:, :3]
    goal = np.asarray(q.observation[keys.GOAL], dtype=float).reshape(-1, 3)
    if weights.shape != (len(cubes_now), len(goal)) or d["object_pos"].shape[2] != len(cubes_now):
        raise ValueError(f"grounding of shape {weights.shape} does not match {len(cubes_now)} objects "
                         f"and {len(goal)} targets")
    weights = weights / max(weights.sum(), 1e-12)
    progress, success = np.zeros(len(d["progress"])), np.zeros(len(d["progress"]))
    for c, t in zip(*np.nonzero(weights >= MIN_WEIGHT), strict=True):
        target = goal[t, :2]
        cube = d["object_pos"][:, :, c]  # (K, H, 3)
        start = float(np.linalg.norm(cubes_first[c, :2] - target))
        if q.task in SLID:
            resting = rests_on(cube, target, ws, d["touching"][:, :, c] < 0.5)
            progress += weights[c, t] * slide_progress(cube[:, -1], target, start, resting[:, -1])
        else:
            resting = rests_on(cube, target, ws, d["holding"][:, :, c] < 0.5)
            progress += weights[c, t] * staged_carry_progress(d["ee_pos"][:, -1], cube[:, -1], target, start,
                                                              ws.cube_half, resting[:, -1])
        success += weights[c, t] * resting.any(-1)
    return progress, success


def push_readiness(q: PlanQuery) -> np.ndarray:
    """(K,) how squarely each dream leaves the tool behind the cube, facing its target, on the
    tasks that slide a cube (0 elsewhere): cos(tool -> cube, cube -> target) at the dream's end,
    clipped at 0, where the tool is within PUSH_READY_RADIUS of the cube.

    Push's progress sees only how far the cube slides within the dream. Ranked by that alone, the
    learned choice took slides that looked better over 16 steps and left the tool off the line
    for the next push (BENCHMARKS.md); this term is the next push's head start."""
    k = len(q.candidates)
    if q.task not in SLID or not q.observation or keys.GOAL not in q.observation:
        return np.zeros(k)
    c, t = FIXED_PAIR[q.task]
    d = q.dreams.take_row(0)
    target = np.asarray(q.observation[keys.GOAL], dtype=float).reshape(-1, 3)[t, :2]
    cube, tool = d["object_pos"][:, -1, c, :2], d["ee_pos"][:, -1, :2]
    to_target, at_cube = target - cube, cube - tool
    dist = np.linalg.norm(at_cube, axis=-1)
    cos = (to_target * at_cube).sum(-1) / np.maximum(np.linalg.norm(to_target, axis=-1) * dist, 1e-9)
    return np.clip(cos, 0.0, 1.0) * (dist < PUSH_READY_RADIUS)
