"""Summaries of many ``Decision`` records: timing, refinement and (with an auditing oracle) dream
fidelity: position error at dream steps 4, 8 and 16, top-1 agreement and Spearman correlation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from policy.controller import Decision

REPORT_STEPS = (4, 8, 16)
CLEAR_SPREAD = 0.05
"""Decisions whose candidates' true progress spans more than this are reported apart: there the
choice matters, where elsewhere the truth's order among near-equal candidates is mostly noise."""
TRUE_TIE = 1e-4
"""Values (progress, scores) closer than this are ties. Replaying candidates that leave a
cube at rest moves it by the solver's jitter alone (spreads near 1e-9 of progress), an order no
dream and no robot can tell apart; 1e-4 of progress is under 0.1 mm of tool or cube travel."""


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Rank correlation (ties averaged); None when either side is constant."""
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    if ra.std() < 1e-12 or rb.std() < 1e-12:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def tied(values: np.ndarray, tol: float = TRUE_TIE) -> np.ndarray:
    """Values (K,) as tie groups: sorted, each value within ``tol`` of the one before joins its
    group. Returns each value's group index, in the values' order."""
    order = np.argsort(values, kind="stable")
    groups = np.concatenate([[0], np.cumsum(np.diff(values[order]) >= tol)])
    out = np.empty(len(values))
    out[order] = groups
    return out


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


class DecisionStats:
    """Accumulates decisions wave by wave (keeping only numbers, not the records)."""

    def __init__(self) -> None:
        self.timings: list[dict[str, float]] = []
        self.refined = self.kept = 0
        self.prefix_err: list[float] = []
        self.refine_steps: list[float] = []
        self.ee_err: list[np.ndarray] = []
        self.obj_err: list[np.ndarray] = []
        self.agree: list[bool] = []
        self.decisive: list[bool] = []
        self.regret: list[float] = []
        self.rho: list[float] = []
        self.rho_planned: list[float] = []
        self.rho_planned_clear: list[float] = []
        self.rho_scores: list[float] = []
        self.gains: dict[str, list[float]] = {}
        self.pred: list[np.ndarray] = []
        self.true: list[np.ndarray] = []
        self.cycles = 0

    def add(self, decisions: list[Decision]) -> None:
        """One wave's decisions (one controller episode batch, so steps identify cycles)."""
        cycles = {d.step: d.timings_ms for d in decisions}  # one timing record per batched cycle
        self.timings.extend(cycles.values())
        self.cycles += len(cycles)
        for d in decisions:
            for r in d.refinements:
                self.refined += 1
                self.kept += int(r.kept)
                keep = r.before.shape[0] - r.last_x
                self.prefix_err.append(float(np.abs(r.variants[:, :keep] - r.before[:keep]).max()))
                self.refine_steps.append(r.denoising_steps)
            if d.audit is not None:
                a = d.audit
                self.ee_err.append(a["ee_err_m"])
                self.obj_err.append(a["object_err_m"])
                self.agree.append(bool(a["agree"]))
                self.decisive.append(bool(a["decisive"]))
                self.regret.append(float(a["regret"]))
                for name, value in a.get("gains", {}).items():
                    self.gains.setdefault(name, []).append(value)
                self.pred.append(a["pred_progress"])
                self.true.append(a["true_progress"])
                self._add_rho(self.rho, a["pred_progress"], a["true_progress"])
                self._add_rho(self.rho_scores, a["scores"], a["true_scores"])
                if a["planned_progress"] is not None:
                    self._add_rho(self.rho_planned, a["planned_progress"], a["true_progress"])
                    if np.ptp(a["true_progress"]) > CLEAR_SPREAD:
                        self._add_rho(self.rho_planned_clear, a["planned_progress"], a["true_progress"])

    @staticmethod
    def _add_rho(into: list[float], pred: np.ndarray, true: np.ndarray) -> None:
        """Appends one decision's Spearman where the truth tells its candidates apart (beyond
        ``TRUE_TIE``; closer values rank as ties, on both sides); a prediction that tells none
        apart there counts 0."""
        groups = tied(np.asarray(true, dtype=float))
        if groups.max() == 0:
            return
        into.append(spearman(tied(np.asarray(pred, dtype=float)), groups) or 0.0)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cycles": self.cycles}
        if self.timings:
            out["cycle_ms_median"] = {k: float(np.median([t[k] for t in self.timings]))
                                      for k in self.timings[0]}
        if self.refined:
            out["refinement"] = {"count": self.refined, "kept_share": self.kept / self.refined,
                                 "max_prefix_change_rad": max(self.prefix_err),
                                 "denoising_steps_each": float(np.mean(self.refine_steps))}
        if self.agree:
            ee, obj = np.stack(self.ee_err), np.stack(self.obj_err)
            h = ee.shape[1]
            pooled = spearman(np.concatenate(self.pred), np.concatenate(self.true))
            out["fidelity"] = {
                "decisions": len(self.agree),
                "ee_err_cm": {str(s): float(ee[:, s - 1].mean() * 100) for s in REPORT_STEPS if s <= h},
                "object_err_cm": {str(s): float(obj[:, s - 1].mean() * 100) for s in REPORT_STEPS if s <= h},
                "ee_err_cm_by_step": (ee.mean(0) * 100).tolist(),
                "object_err_cm_by_step": (obj.mean(0) * 100).tolist(),
                "top1_agreement": float(np.mean(self.agree)),
                "top1_agreement_decisive": (float(np.mean(np.asarray(self.agree)[self.decisive]))
                                            if any(self.decisive) else None),
                "decisive_decisions": int(np.sum(self.decisive)),
                "mean_regret": float(np.mean(self.regret)),
                "spearman_progress_mean": _mean(self.rho),
                "spearman_decisions": len(self.rho),
                "spearman_progress_pooled": pooled,
                "spearman_planned_progress_mean": _mean(self.rho_planned),
                "spearman_planned_decisions": len(self.rho_planned),
                "spearman_planned_progress_clear": _mean(self.rho_planned_clear),
                "spearman_planned_clear_decisions": len(self.rho_planned_clear),
                "spearman_scores_mean": _mean(self.rho_scores),
            }
            best = float(np.sum(self.gains.get("best", [])))
            if best > 0:
                out["fidelity"]["gain_share"] = {name: float(np.sum(v)) / best
                                                 for name, v in self.gains.items() if name != "best"}
        return out
