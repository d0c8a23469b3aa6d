"""The control cycle: encode -> sample K -> dream -> choose -> (refine) -> execute.

```
every Ta steps, per batch of B observations:
  window, history      the policy's To observations; the dreamer's own encoding of them
  candidates           policy.candidates(K)                  (B, K, H, A), one batched call
  futures              steps To-1 .. of each candidate, padded to the dream horizon
  dreams               dreamer.dream(latent, futures)        (B, K, H, ...), one batched call
  choice               planner.choose(query) per row         index, scores, reason
  refine (last X)      keep the first H-X steps of the choice, re-denoise the rest from a
                       partly noised copy (strength), R variants in one call; dream them and
                       keep the best if it scores higher than the choice
  execute              the chosen trajectory's steps To-1 .. To-1+Ta-1 go to the action queue
```
Every cycle leaves one ``Decision`` per batch row: all candidates, their dreams, scores, the
choice, refinements and the reason (plain data for logs, rerun and the planner's memory).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from policy.diffusion.policy import DiffusionPolicy, Observation
from policy.dreamers import Dreamer
from policy.dreams import DREAM_PARTS, Dreams
from policy.planners.base import Choice, Planner, PlanQuery
from sim import keys
from sim.language import SceneVocabulary


@dataclass
class ControllerConfig:
    k: int = 16
    """Candidate trajectories sampled per decision."""
    refine: int = 0
    """Re-denoise the chosen trajectory's last X steps (0: never, unless the planner asks). It pays
    where the dreamer ranks well: on Sort, 12 steps lift success from 0.41 to 0.52 at the compute
    of two more samples; where dreams rank near chance (hard Push) it does not (BENCHMARKS.md)."""
    refine_candidates: int = 4
    """Variants drawn per refinement (one batched call)."""
    refine_strength: float = 0.4
    """Share of the denoising schedule a refinement runs (0.4 of 10 steps = 4 steps)."""
    steps: int | None = None
    """Denoising steps of a full sample (the policy's setting when omitted)."""

    def __post_init__(self) -> None:
        if self.k < 1 or self.refine_candidates < 1:
            raise ValueError(f"k and refine_candidates must be >= 1, got {self.k}, {self.refine_candidates}")
        if self.refine < 0:
            raise ValueError(f"refine (last X steps) must be >= 0, got {self.refine}")
        if not 0 < self.refine_strength <= 1:
            raise ValueError(f"refine_strength must lie in (0, 1], got {self.refine_strength}")


@dataclass
class Refinement:
    last_x: int
    before: np.ndarray
    """(H, A) the trajectory refined."""
    variants: np.ndarray
    """(R, H, A) re-denoised variants (first H - last_x steps identical to ``before``)."""
    score_before: float
    scores: np.ndarray
    kept: bool
    denoising_steps: int
    """Denoising steps each variant ran."""
    dreams: dict[str, np.ndarray] | None = None
    """Each ``Dreams`` field for the R variants: (R, H, ...)."""


@dataclass
class Decision:
    """One control cycle for one observation (see the module docstring)."""

    step: int
    candidates: np.ndarray
    """(K, H, A) sampled trajectories (policy time base: the first To-1 steps are the past)."""
    dreams: dict[str, np.ndarray]
    """Each ``Dreams`` field for this observation's K candidates: (K, H, ...)."""
    scores: np.ndarray
    choice: int
    reason: str
    planner: str
    dreamer: str
    chosen: np.ndarray
    """(H, A) the trajectory executed (the choice, or its kept refinement)."""
    refinements: list[Refinement] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    audit: dict[str, Any] | None = None
    """With an auditing oracle: the true futures of the same candidates and fidelity figures."""
    observations: list[Observation] = field(default_factory=list)
    """The To observations the decision was made from, oldest first."""
    active: bool = True
    """False for a row whose episode had already ended (decided for batching only)."""
    row: int = 0
    """Which batch row (robot or environment) of its cycle the decision is for."""
    resampled: int = 0
    """The planner asked for this many fresh candidates; ``candidates`` are those."""

    def executed_dream(self) -> dict[str, np.ndarray]:
        """The dream of the trajectory executed: the kept refinement's best variant, else the
        choice's. Each field without the K axis: (H, ...)."""
        for r in reversed(self.refinements):
            if r.kept and r.dreams is not None:
                best = int(np.argmax(r.scores))
                return {name: v[best] for name, v in r.dreams.items()}
        return {name: v[self.choice] for name, v in self.dreams.items()}


def dream_inputs(trajs: np.ndarray, n_obs_steps: int, horizon: int) -> np.ndarray:
    """Policy trajectories (..., H, A) -> dreamer input from the current step: drop the To-1
    past steps and repeat the last target to fill ``horizon`` (the arm holds its final target)."""
    future = trajs[..., n_obs_steps - 1:, :]
    missing = horizon - future.shape[-2]
    if missing > 0:
        future = np.concatenate([future, np.repeat(future[..., -1:, :], missing, axis=-2)], axis=-2)
    return future[..., :horizon, :]


class Controller:
    """Drives a batch of environments (or one robot) with sample -> dream -> choose -> refine."""

    def __init__(self, policy: DiffusionPolicy, dreamer: Dreamer, planner: Planner,
                 cfg: ControllerConfig | None = None, audit: Dreamer | None = None) -> None:
        self.policy, self.dreamer, self.planner = policy, dreamer, planner
        self.cfg = cfg or ControllerConfig()
        self.audit = audit
        h = policy.cfg.horizon
        if self.cfg.refine >= h - policy.cfg.n_obs_steps + 1:
            raise ValueError(f"refine={self.cfg.refine} would re-denoise steps already executing; "
                             f"use at most {h - policy.cfg.n_obs_steps} (horizon {h})")
        try:
            self.scene: SceneVocabulary | None = SceneVocabulary.for_task(policy.shapes.task,
                                                                           policy.shapes.robot)
        except ValueError:
            self.scene = None
        norm = policy.action_norm
        self._limits = tuple(x.cpu().numpy() for x in (norm.centre - norm.half_range,
                                                          norm.centre + norm.half_range))
        self.decisions: list[Decision] = []
        self.reset()

    # ---- the shapes evaluation needs (same as the policy's) ----------------------------------
    @property
    def shapes(self):
        return self.policy.shapes

    def reset(self, envs: list | None = None) -> None:
        """Start episodes; ``envs`` are the simulated environments (needed by the oracle)."""
        self.policy.reset()
        self._queue: deque[np.ndarray] = deque()
        self._history: deque[list[Observation]] = deque(maxlen=self.policy.cfg.n_obs_steps)
        self._starts: list[Observation] | None = None
        """Each row's first observation this episode (tasks measure progress from it)."""
        self._grounding: np.ndarray | None = None
        """(B, objects, targets) the dreamer's reading of each row's instruction, if it has one."""
        self._step = 0
        self._sample_kw: dict = {}
        self.decisions = []
        if envs is not None:
            for d in (self.dreamer, self.audit):
                if d is not None:
                    d.attach(envs)

    def _restated(self, batch: list[Observation]) -> list[Observation]:
        """What the policy and the dreamer see: each instruction restated in plain words where the
        planner reads instructions and offers it (``llm_value``); the planner keeps the original."""
        restate = getattr(self.planner, "restate", None)
        if restate is None or self.scene is None:
            return batch
        out = []
        for o in batch:
            text = o.get(keys.INSTRUCTION)
            plain = restate(text, self.scene, None if text is None else self.dreamer.reads(text))
            out.append(o if plain is None else {**o, keys.INSTRUCTION: plain})
        return out

    def select_action(self, obs: Observation | list[Observation], steps: int | None = None,
                      generator: torch.Generator | None = None,
                      active: np.ndarray | None = None) -> np.ndarray:
        """One action per call: (A,) for one observation dict, (B, A) for a list of them.
        ``active`` (B,) bool marks rows whose episodes are still running (the rest are only
        batched along, and costly dreamers skip them)."""
        batch = [obs] if isinstance(obs, dict) else list(obs)
        self._active = np.ones(len(batch), bool) if active is None else np.asarray(active, bool)
        seen = self._restated(batch)
        self.policy.observe(seen)
        self._history.append(seen)
        if not self._queue:
            decisions = self.plan(batch, steps or self.cfg.steps, generator)
            chosen = np.stack([d.chosen for d in decisions])
            self._queue.extend(self.policy.chunk_of(chosen).transpose(1, 0, 2))
        action = self._queue.popleft()
        self.policy.record_sent(action)
        self._step += 1
        return action[0] if isinstance(obs, dict) else action

    # ---- one cycle ---------------------------------------------------------------------------
    def plan(self, batch: list[Observation], steps: int | None = None,
             generator: torch.Generator | None = None, **sample_kw) -> list[Decision]:
        """One cycle; ``sample_kw`` (``known``, ``keep``) hold every candidate to a known prefix."""
        pc, c = self.policy.cfg, self.cfg
        t0 = time.perf_counter()
        self._sample_kw = sample_kw
        if self._starts is None or len(self._starts) != len(batch):
            self._starts = list(batch)
        cands = self.policy.candidates(c.k, steps=steps, generator=generator, **sample_kw).cpu().numpy()
        t1 = time.perf_counter()
        latent = self.dreamer.encode(list(self._history), self._active)
        self._grounding = self.dreamer.grounding(latent)
        futures = dream_inputs(cands, pc.n_obs_steps, self.dreamer.horizon)
        dreams = self.dreamer.dream(latent, futures)
        t2 = time.perf_counter()
        choices = [self.planner.choose(self._query(futures[b], dreams.row(b), batch[b], b))
                   for b in range(len(batch))]
        rows = [(cands[b], dreams.take_row(b), 0) for b in range(len(batch))]
        if any(ch.resample for ch in choices):
            choices, rows = self._resample(batch, choices, rows, latent, steps, generator)
        t3 = time.perf_counter()
        chosen = np.stack([rows[b][0][ch.index] for b, ch in enumerate(choices)])
        refinements: list[list[Refinement]] = [[] for _ in batch]
        last_x = max([c.refine] + [ch.refine_last for ch in choices])
        if last_x:
            chosen, refinements = self._refine(batch, chosen, choices, latent, last_x, steps, generator)
        t4 = time.perf_counter()
        timings = {"sample": (t1 - t0) * 1e3, "dream": (t2 - t1) * 1e3, "choose": (t3 - t2) * 1e3,
                   "refine": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3}
        audits = self._audit(cands, dreams, choices, batch) if self.audit is not None else [None] * len(batch)
        out = [Decision(self._step, rows[b][0], rows[b][1], choices[b].scores, choices[b].index,
                        choices[b].reason, self.planner.name, self.dreamer.name, chosen[b], refinements[b],
                        timings, audits[b] if not rows[b][2] else None, [obs[b] for obs in self._history],
                        bool(self._active[b]), b, rows[b][2])
               for b in range(len(batch))]
        self.decisions.extend(out)
        return out

    def _query(self, futures: np.ndarray, dreams: Dreams, obs: Observation, row: int) -> PlanQuery:
        """Row ``row``'s query: ``futures`` (K, H, A) are the dreamer's inputs for that row."""
        grounding = None if self._grounding is None else self._grounding[row]
        text = obs.get(keys.INSTRUCTION)
        return PlanQuery(futures, dreams, text, obs, joint_limits=self._limits, task=self.policy.shapes.task,
                         scene=self.scene, robot=self.policy.shapes.robot, dreamer=self.dreamer.name,
                         exact=self.dreamer.exact, grounding=grounding,
                         start=None if self._starts is None else self._starts[row],
                         dreamer_reads=None if text is None else self.dreamer.reads(text))

    def _resample(self, batch, choices, rows, latent, steps, generator):
        """Rows whose planner asked for fresh candidates get them (one batched call for all rows, of
        the largest size asked) and are decided again; a second request is not honoured."""
        pc = self.policy.cfg
        k = max(ch.resample for ch in choices)
        cands = self.policy.candidates(k, steps=steps, generator=generator, **self._sample_kw).cpu().numpy()
        futures = dream_inputs(cands, pc.n_obs_steps, self.dreamer.horizon)
        dreams = self.dreamer.dream(latent, futures)
        choices, rows = list(choices), list(rows)
        for b, ch in enumerate(choices):
            if ch.resample:
                again = self.planner.choose(self._query(futures[b], dreams.row(b), batch[b], b))
                choices[b] = Choice(again.index, again.scores, f"resampled {k}: {again.reason}",
                                    again.refine_last, progress=again.progress)
                rows[b] = (cands[b], dreams.take_row(b), k)
        return choices, rows

    def end_episode(self, row: int, success: bool, final_obs: Observation, episode: int = 0) -> None:
        """Tell a planner that keeps memory how batch row ``row``'s episode ended."""
        remember = getattr(self.planner, "end_episode", None)
        if remember is None or self.scene is None:
            return
        mine = [d for d in self.decisions if d.row == row and d.active]
        remember(self.policy.shapes.task, self.scene, mine, success, final_obs, episode)

    def _refine(self, batch, chosen, choices, latent, last_x, steps, generator):
        pc, c = self.policy.cfg, self.cfg
        h = pc.horizon
        keep = torch.arange(h) < h - last_x
        window = self.policy.observation_window()
        variants = self.policy.sample(window, self.policy.instructions, c.refine_candidates,
                                      known=torch.as_tensor(chosen, dtype=torch.float32), keep=keep,
                                      strength=c.refine_strength, steps=steps,
                                      generator=generator).cpu().numpy()
        futures = dream_inputs(variants, pc.n_obs_steps, self.dreamer.horizon)
        dreams = self.dreamer.dream(latent, futures)
        total = steps or pc.num_inference_steps
        used = len(range(min(total - 1, round(total * (1 - c.refine_strength))), total))
        out_chosen, out_ref = chosen.copy(), []
        for b in range(len(batch)):
            scores = self.planner.score(self._query(futures[b], dreams.row(b), batch[b], b))
            before = float(choices[b].scores[choices[b].index])
            kept = bool(scores.max() > before)
            if kept:
                out_chosen[b] = variants[b, int(np.argmax(scores))]
            out_ref.append([Refinement(last_x, chosen[b], variants[b], before, scores, kept, used,
                                       dreams.take_row(b))])
        return out_chosen, out_ref

    def _audit(self, cands: np.ndarray, dreams: Dreams, choices, batch: list[Observation]
               ) -> list[dict[str, Any]]:
        """True futures of the same candidates from the oracle, and how well the dreams matched:
        the dreamer's progress head, the progress the planner ranked by (where its choice says) and
        the planner's scores, each against the simulator's. The true futures are scored in the
        planner's own context (the query it was given: task, observation, instruction and the
        dreamer's grounding of it), as exact dreams. ``gains``: the true score the choice gains
        over candidate 0 (an unchosen sample, what the plain policy would run: ``dreamed``), what
        the best candidate gains (``best``), and what the planner's choice would gain were one
        part of each dream (``DREAM_PARTS``) the simulator's (``true_<part>``). ``true``: the
        simulator's futures themselves, each ``Dreams`` field (K, H, ...)."""
        pc = self.policy.cfg
        futures = dream_inputs(cands, pc.n_obs_steps, self.audit.horizon)
        true = self.audit.dream(self.audit.encode(list(self._history), self._active), futures)
        h = min(true.shape[2], dreams.shape[2])
        out: list[dict[str, Any] | None] = []
        for b in range(cands.shape[0]):
            if not self._active[b]:
                out.append(None)
                continue
            ee = np.linalg.norm(dreams.ee_pos[b, :, :h] - true.ee_pos[b, :, :h], axis=-1).mean(0)
            obj = np.zeros(h)
            if true.object_pos.shape[3]:
                gap = dreams.object_pos[b, :, :h] - true.object_pos[b, :, :h]
                obj = np.linalg.norm(gap, axis=-1).mean((0, 2))
            pred_p, true_p = dreams.progress[b, :, h - 1], true.progress[b, :, h - 1]
            truth = replace(self._query(futures[b, :, :h], true.row(b), batch[b], b), dreamer=self.audit.name,
                            exact=True)
            true_scores = self.planner.score(truth)
            true_choice = int(np.argmax(true_scores))
            gains = {"dreamed": float(true_scores[choices[b].index] - true_scores[0]),
                     "best": float(true_scores.max() - true_scores[0])}
            if dreams.shape[2] == true.shape[2]:
                for part, names in DREAM_PARTS.items():
                    mixed = dreams.row(b).with_parts(**{n: getattr(true, n)[b:b + 1] for n in names})
                    pick = int(np.argmax(self.planner.score(self._query(futures[b], mixed, batch[b], b))))
                    gains[f"true_{part}"] = float(true_scores[pick] - true_scores[0])
            top2 = np.sort(true_scores)[-2:] if len(true_scores) > 1 else np.zeros(2)
            out.append({"ee_err_m": ee, "object_err_m": obj, "pred_progress": pred_p, "true_progress": true_p,
                        "true_success": true.success[b, :, h - 1], "true_best": true_choice,
                        "agree": true_choice == choices[b].index, "decisive": bool(top2[1] - top2[0] > 0.01),
                        "regret": float(true_scores.max() - true_scores[choices[b].index]),
                        "planned_progress": choices[b].progress, "scores": choices[b].scores,
                        "true_scores": true_scores, "gains": gains, "true": true.take_row(b)})
        return out
