"""How far the executed plan's dream was from what really happened, step by step.

A decision made at control step t0 dreams the state after each of its targets: dream step h
(1-based) predicts the state after t0 + h steps. While that plan executes (until the next
decision or the episode's end) the real state is known at every step, so the error of the chosen
dream is measured for free, without replaying anything: tool-centre point and objects, in metres.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from policy.controller import Decision
from sim import keys


def positions(obs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """(tool position (3,), object positions (n, 3) or None) of one observation: what dreams predict."""
    objects = np.asarray(obs[keys.OBJECT_POSES])[:, :3].copy() if keys.OBJECT_POSES in obs else None
    return np.asarray(obs[keys.EE_POSE][:3], float).copy(), objects


def error_at(dream: dict[str, np.ndarray], h: int, ee: np.ndarray,
             objects: np.ndarray | None) -> tuple[float, float | None]:
    """Dream step ``h`` (1-based) against the real tool position ``ee`` (3,) and object positions
    ``objects`` (n, 3) -> (tool error, mean object error or None without objects), metres."""
    ee_err = float(np.linalg.norm(dream["ee_pos"][h - 1] - ee))
    if objects is None or not len(objects) or not dream["object_pos"].shape[1]:
        return ee_err, None
    return ee_err, float(np.linalg.norm(dream["object_pos"][h - 1] - objects, axis=-1).mean())


class ExecutedDreamError:
    """Accumulates, per dream step h, the chosen dream's error over the steps that really ran."""

    def __init__(self) -> None:
        self.ee: dict[int, list[float]] = defaultdict(list)
        self.obj: dict[int, list[float]] = defaultdict(list)

    def add(self, decisions: list[Decision], ee_path: np.ndarray, object_path: np.ndarray | None) -> None:
        """One episode's decisions (one batch row, in order) and its real path: ``ee_path`` (T+1, 3)
        and ``object_path`` (T+1, n, 3) hold the state after t steps at index t."""
        last = len(ee_path) - 1
        steps = [d.step for d in decisions] + [last]
        for d, nxt in zip(decisions, steps[1:], strict=True):
            dream = d.executed_dream()
            for h in range(1, min(nxt, last) - d.step + 1):
                if h > len(dream["ee_pos"]):
                    break
                e, o = error_at(dream, h, ee_path[d.step + h],
                                None if object_path is None else object_path[d.step + h])
                self.ee[h].append(e)
                if o is not None:
                    self.obj[h].append(o)

    def summary(self) -> dict[str, Any]:
        """Mean error (cm) and sample count per dream step h."""
        hs = sorted(self.ee)
        return {"steps": hs, "ee_cm": [float(np.mean(self.ee[h]) * 100) for h in hs],
                "object_cm": [float(np.mean(self.obj[h]) * 100) if self.obj[h] else None for h in hs],
                "count": [len(self.ee[h]) for h in hs]}
