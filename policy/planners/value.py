"""The ``value`` planner: predicted progress and success, minus collision risk and jerk.

```
score = w_progress * progress[H] + w_success * P(success by H)
        - w_collision * (share of steps with the tool below the table margin or a cube off the table)
        - w_jerk * mean |third difference| of the joint targets (rad per step^3)
        - w_limits * share of targets within limit_margin of a joint limit
        + w_push_ready * (tasks that slide a cube, until it arrives) how squarely the dream ends
          with the tool behind the cube, facing its target
        - w_risk * (dreams with several draws) the spread of the score across the draws
```
With ``objective`` on, a learned dream's progress and success are computed from its dreamed
positions by the task's own definition (``policy/planners/objective.py``) where the task allows
it, instead of read from the world model's heads. With ``score_draws`` (on by default), a dream
that is the mean of several (``Dreams.draws``) is scored as the mean of its draws' terms: the
expected score, not the score of the expected dream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from policy.planners.base import Choice, PlanQuery
from policy.planners.objective import objective_progress, push_readiness


@dataclass
class ValuePlannerConfig:
    progress: float = 1.0
    """Weight of predicted task progress at the end of the dream."""
    success: float = 1.0
    """Weight of the predicted probability of success within the dream."""
    collision: float = 1.0
    """Weight of collision risk (tool into the table, cube off the table)."""
    jerk: float = 0.5
    """Weight of the joint trajectory's mean absolute third difference (rad)."""
    limits: float = 0.5
    """Weight of the share of targets near a joint limit."""
    table_margin: float = 0.003
    """Tool heights (m) below this count as hitting the table."""
    limit_margin: float = 0.02
    """Distance (rad) to a joint limit counted as near it."""
    push_ready: float = 0.2
    """Weight of ending the dream with the tool squarely behind the cube, facing its target, on
    the tasks that slide a cube (Push), until the dream succeeds. Without it the learned choice
    on Push was worse than the plain policy (validation: 0.2 beat 0.1 and 0; BENCHMARKS.md)."""
    objective: bool = True
    """Score learned dreams by the task's progress computed from the dreamed tool and cube
    positions (Push and the pick-and-place tasks; on Sort only with a grounded instruction) rather than by the
    world model's progress and success heads. Simulator dreams keep their exact progress."""
    score_draws: bool = True
    """Where the dreamer averaged several dreams of each candidate (an ensemble's members, the
    physics dreamer's variants and hedged readings), average the terms scored on each dream
    instead of scoring the averaged dream: the expected score. Staged progress is not linear in
    the positions, so the averaged dream of a grasp that lands in some dreams and misses in others
    is a half-lifted, half-carried cube scored as neither. On hard PickPlace with a 5 mm / 5° pose
    error, the hedged physics dreamer scored by the averaged dream did worse than the unhedged one
    (0.490 against 0.543); scored draw by draw it does not (0.550; BENCHMARKS.md). False scores the
    averaged dream, as sessions before 23 did (the ensemble and variants figures)."""

    risk: float = 0.0
    """Weight of the spread (standard deviation) of a candidate's score across its draws, where the
    dreamer has several (an ensemble's members, the physics dreamer's variants): pessimism where
    the dreams disagree, as a grasp that lands in one model's dream and misses in another's is
    the choice a single dream most often gets wrong. 0 (the default) ranks by the expected score.
    With two PickPlace world models and K=16, validation chose 4 (0.807 against 0.767 for one
    model); at K=4 the same 4 did worse than one model (0.680 against 0.707; BENCHMARKS.md)."""

    def __post_init__(self) -> None:
        for name in ("progress", "success", "collision", "jerk", "limits", "limit_margin", "push_ready",
                     "risk"):
            if getattr(self, name) < 0:
                raise ValueError(f"value planner weight {name} must be >= 0, got {getattr(self, name)}")


class ValuePlanner:
    name = "value"

    def __init__(self, cfg: ValuePlannerConfig | None = None) -> None:
        self.cfg = cfg or ValuePlannerConfig()

    def terms(self, q: PlanQuery, grounding: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each score term per candidate, (K,) each, before weighting. ``grounding``:
        P(object, target | instruction), where a planner that reads the instruction has one."""
        if self.cfg.score_draws and q.dreams.draws and not q.exact:
            each = [self._terms(replace(q, dreams=d), grounding) for d in q.dreams.draws]
            mean = {name: np.mean([t[name] for t in each], axis=0) for name in each[0]}
            return {**mean, "spread": np.std([self._weigh(t) for t in each], axis=0)}
        return self._terms(q, grounding)

    def _terms(self, q: PlanQuery, grounding: np.ndarray | None) -> dict[str, np.ndarray]:
        d, c = q.dreams, self.cfg
        progress, success = d.progress[0, :, -1], d.success[0].max(-1)
        if c.objective and not q.exact:
            grounding = q.grounding if grounding is None else grounding
            progress, success = objective_progress(q, grounding) or (progress, success)
        below = d.ee_pos[0, :, :, 2] < c.table_margin
        off_table = (d.object_pos[0, :, :, :, 2] < -0.01).any(-1) if d.object_pos.shape[3] else below * False
        jerk = np.abs(np.diff(q.candidates[:, :, :-1], n=3, axis=1)).mean(axis=(1, 2))
        near = np.zeros(len(q.candidates))
        if q.joint_limits is not None:
            lo, hi = q.joint_limits
            close = (q.candidates - lo < c.limit_margin) | (hi - q.candidates < c.limit_margin)
            near = close[..., :-1].mean((1, 2))
        ready = push_readiness(q) * (success < 0.5) if c.push_ready else np.zeros(len(q.candidates))
        return {"progress": progress, "success": success,
                "collision": (below | off_table).mean(-1), "jerk": jerk, "limits": near, "push_ready": ready,
                "spread": np.zeros(len(q.candidates))}

    def score(self, q: PlanQuery, grounding: np.ndarray | None = None) -> np.ndarray:
        return self._weigh(self.terms(q, grounding))

    def _weigh(self, t: dict[str, np.ndarray]) -> np.ndarray:
        c = self.cfg
        return (c.progress * t["progress"] + c.success * t["success"] - c.collision * t["collision"]
                - c.jerk * t["jerk"] - c.limits * t["limits"] + c.push_ready * t["push_ready"]
                - c.risk * t["spread"])

    def choose(self, q: PlanQuery) -> Choice:
        terms = self.terms(q)
        scores = self._weigh(terms)
        best = int(np.argmax(scores))
        runner = int(np.argsort(scores)[-2]) if len(scores) > 1 else best
        reason = (f"candidate {best}: progress {terms['progress'][best]:.2f}, success "
                  f"{terms['success'][best]:.2f}, collision {terms['collision'][best]:.2f}, jerk "
                  f"{terms['jerk'][best]:.4f}; score {scores[best]:.3f} vs next best {scores[runner]:.3f} "
                  f"(candidate {runner})")
        return Choice(best, scores, reason, progress=terms["progress"])
