"""Planners that read: ``llm`` (a language model picks an option by tool call) and ``llm_value``
(the language model's reading of the instruction times the value score).

``llm``, per decision:
```
value scores -> outcomes (describe.py) -> options (candidates doing the same thing, best first)
one option: take it, nothing to ask
else: prompt (instruction, lessons, options) -> tool call (protocol.py), within timeout_s
      choose(i) / refine(i, last_x) / resample(k): option i's best-valued candidate
      slow, unreachable or nonsense: the value planner's choice; counted and logged
```
``llm_value`` scores every candidate ``value + w * log P(its outcome satisfies the instruction)``,
where P comes from the language model's reading of the instruction (grounding.py), computed once
per instruction; with memory, also by how often that outcome really succeeded before.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policy.dreams import Dreams
from policy.planners.base import Choice, PlanQuery
from policy.planners.llm.backends import Backend, BackendError, BackendTimeout, make_backend
from policy.planners.llm.config import LLMConfig
from policy.planners.llm.describe import Option, Outcome, group, outcomes
from policy.planners.llm.grounding import Grounder
from policy.planners.llm.memory import Lesson, LessonStore
from policy.planners.llm.protocol import AnswerError, ToolCall, messages, parse_tool_call, tool_schema
from policy.planners.value import ValuePlanner
from sim import keys
from sim.language import SceneVocabulary

log = logging.getLogger("reverie.planner")
FLOOR = 1e-3
"""Added to probabilities before taking logs."""
READINGS_KEPT = 256
"""Instructions whose scoring reading ``LLMValuePlanner`` keeps for its lessons."""


@dataclass
class PlannerStats:
    decisions: int = 0
    single_option: int = 0
    """Decisions where every candidate did the same thing (nothing to ask)."""
    consulted: int = 0
    """Decisions put to the language model (answered from the cache or not)."""
    cached: int = 0
    deferred: int = 0
    """llm_value decisions that used the dreamer's own reading of the instruction (no model call)."""
    fallbacks: Counter = field(default_factory=Counter)
    """Why the value planner decided instead: timeout, unreachable, unparsable."""
    tools: Counter = field(default_factory=Counter)
    latency_ms: list[float] = field(default_factory=list)
    """Wall time of each call that reached the model (cache hits excluded)."""

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latency_ms)
        pct = {f"p{q}": float(np.percentile(lat, q)) for q in (50, 95)} if len(lat) else {}
        return {"decisions": self.decisions, "single_option": self.single_option,
                "consulted": self.consulted, "cached": self.cached, "deferred": self.deferred,
                "model_calls": len(lat),
                "fallbacks": dict(self.fallbacks), "fallback_total": sum(self.fallbacks.values()),
                "tools": dict(self.tools), "call_ms": pct}


def _scene(q: PlanQuery) -> SceneVocabulary:
    if q.scene is None:
        raise ValueError("this planner reads the scene; the query needs scene= (the controller sets it)")
    return q.scene


class _Reading:
    """What both reading planners hold (settings, model, value scorer, counters, lesson store),
    and the lessons they write at the end of each episode."""

    def __init__(self, cfg: LLMConfig | None, backend: Backend | None, value: ValuePlanner | None) -> None:
        self.cfg = cfg or LLMConfig()
        self.backend = backend if backend is not None else make_backend(self.cfg)
        self.value = value or ValuePlanner()
        self.stats = PlannerStats()
        self.memory = LessonStore(self.cfg.memory) if self.cfg.memory else None
        self.n_lessons = self.cfg.lessons

    def end_episode(self, task: str, vocab: SceneVocabulary, decisions: list, success: bool,
                    final_obs: dict, episode: int = 0) -> Lesson | None:
        """Write what this episode teaches (``decisions`` are its own, oldest first)."""
        if self.memory is None or not decisions:
            return None
        last = decisions[-1]
        dreams = Dreams(**{k: v[None] for k, v in last.dreams.items()})
        found = outcomes(dreams, last.observations[-1], vocab)[last.choice]
        predicted = float(np.mean([d.dreams["success"][d.choice].max() for d in decisions]))
        instruction = last.observations[-1].get(keys.INSTRUCTION) or ""
        lesson = Lesson(task, instruction, found.text(vocab), predicted, success,
                        _why(found, vocab, final_obs, predicted, success), episode, found.obj,
                        _moved_most(last.observations[-1], final_obs),
                        self.intended(found, instruction, vocab, task))
        self.memory.add(lesson)
        return lesson

    def intended(self, found: Outcome, instruction: str, vocab: SceneVocabulary, task: str) -> bool | None:
        """Whether a plan dreamed to do ``found`` was meant to do what ``instruction`` asks
        (None: this planner does not read instructions into objects)."""
        return None

    def lessons(self, task: str, query: str) -> list[str]:
        if self.memory is None:
            return []
        return [x.text() for x in self.memory.retrieve(task, query, self.n_lessons)]


def _moved_most(start_obs: dict, final_obs: dict) -> int | None:
    """The object that moved furthest between two observations (None: nothing moved 1 cm)."""
    a, b = (np.asarray(o[keys.OBJECT_POSES])[:, :3] for o in (start_obs, final_obs))
    if not len(a):
        return None
    moved = np.linalg.norm(b - a, axis=-1)
    return int(np.argmax(moved)) if moved.max() > 0.01 else None


def _why(found: Outcome, vocab: SceneVocabulary, final_obs: dict, predicted: float, success: bool) -> str:
    if found.obj is None:
        where = "nothing was moved"
    else:
        pos = np.asarray(final_obs[keys.OBJECT_POSES])[found.obj, :3]
        gaps = np.linalg.norm(np.asarray(final_obs[keys.GOAL]).reshape(-1, 3)[:, :2] - pos[:2], axis=-1)
        t = int(np.argmin(gaps))
        where = (f"the {vocab.objects[found.obj]} ended {gaps[t] * 100:.0f} cm from the {vocab.targets[t]}"
                 + (" in the air" if pos[2] > 2 * vocab.on_radius else ""))
    if success == (predicted >= 0.5):
        return f"As dreamed: {where}."
    return f"The dream was wrong: {where}."


class LLMPlanner(_Reading):
    name = "llm"

    def __init__(self, cfg: LLMConfig | None = None, backend: Backend | None = None,
                 value: ValuePlanner | None = None) -> None:
        super().__init__(cfg, backend, value)
        self._cache: OrderedDict[str, ToolCall] = OrderedDict()

    def score(self, q: PlanQuery) -> np.ndarray:
        return self.value.score(q)

    def options(self, q: PlanQuery) -> tuple[np.ndarray, list[Option]]:
        scores = self.value.score(q)
        return scores, group(outcomes(q.dreams, q.observation, _scene(q)), scores)

    def choose(self, q: PlanQuery) -> Choice:
        self.stats.decisions += 1
        scores, options = self.options(q)
        vocab = _scene(q)
        texts = [o.outcome.text(vocab) for o in options]
        if len(options) == 1:
            self.stats.single_option += 1
            return Choice(options[0].best, scores, f"every candidate {texts[0]}; best by value")
        task = q.task or ""
        msgs = messages(q.instruction, texts, self.lessons(task, f"{q.instruction} {' '.join(texts)}"))
        call, why = self._consult(msgs, len(options))
        if call is None:
            best = int(np.argmax(scores))
            return Choice(best, scores, f"fallback to value ({why}): candidate {best}")
        self.stats.tools[call.tool] += 1
        pick = options[call.option].best
        reason = f"llm {call.tool} option {call.option} ({texts[call.option]}): {call.reason}"
        return Choice(pick, scores, reason, refine_last=call.last_x, resample=call.k)

    def _consult(self, msgs: list[dict[str, str]], n_options: int) -> tuple[ToolCall | None, str]:
        self.stats.consulted += 1
        key = json.dumps(msgs)
        if key in self._cache:
            self.stats.cached += 1
            self._cache.move_to_end(key)
            return self._cache[key], ""
        deadline = time.monotonic() + self.cfg.timeout_s
        why = "no attempt"
        for _ in range(1 + self.cfg.retries):
            left = deadline - time.monotonic()
            if left <= 0:
                why = "timeout"
                break
            t0 = time.perf_counter()
            try:
                text = self.backend.chat(msgs, tool_schema(n_options), left)
                call = parse_tool_call(text, n_options)
            except BackendError as e:
                why = "timeout" if isinstance(e, BackendTimeout) else "unreachable"
                log.warning("language model failed (%s): %s", why, e)
                continue
            except AnswerError as e:
                why = "unparsable"
                log.warning("language model answer rejected: %s", e)
                continue
            finally:
                self.stats.latency_ms.append((time.perf_counter() - t0) * 1e3)
            if self.cfg.cache:
                self._cache[key] = call
                if len(self._cache) > self.cfg.cache:
                    self._cache.popitem(last=False)
            return call, ""
        self.stats.fallbacks[why] += 1
        log.warning("falling back to the value planner (%s)", why)
        return None, why


class LLMValuePlanner(_Reading):
    name = "llm_value"

    def __init__(self, cfg: LLMConfig | None = None, backend: Backend | None = None,
                 value: ValuePlanner | None = None) -> None:
        super().__init__(cfg, backend, value)
        self._grounders: dict[SceneVocabulary, Grounder] = {}
        self._scored_with: OrderedDict[str, np.ndarray] = OrderedDict()
        """The reading each recent instruction (and its restatement) was scored with, so that a
        lesson judges "meant to do what was asked" by the reading the decision used."""

    def grounding(self, q: PlanQuery) -> np.ndarray | None:
        """P(object, target | instruction), or None without an instruction or a working model: the
        dreamer's own reading where it knows every word (``LLMConfig.defer``), else the model's."""
        if self.cfg.defer and q.dreamer_reads and q.grounding is not None:
            self.stats.deferred += 1
            p = np.asarray(q.grounding, dtype=float)
        else:
            p = self._read(q.instruction, _scene(q))
        self._remember(q.instruction, p)
        return p

    def _remember(self, text: str | None, p: np.ndarray | None) -> None:
        if text and p is not None:
            self._scored_with[text] = p
            self._scored_with.move_to_end(text)
            while len(self._scored_with) > READINGS_KEPT:
                self._scored_with.popitem(last=False)

    def restate(self, instruction: str | None, vocab: SceneVocabulary,
                dreamer_reads: bool | None = None) -> str | None:
        """The instruction in plain words, as the model reads it (``LLMConfig.restate``), for the
        policy and the world model; None when off, when the dreamer knows every word of it
        (``LLMConfig.defer``), without an instruction or a working model."""
        if self.cfg.defer and dreamer_reads:
            return None
        p = self._read(instruction, vocab, count_cached=False) if self.cfg.restate else None
        if p is None:
            return None
        i, t = np.unravel_index(int(np.argmax(p)), p.shape)
        plain = f"put the {vocab.objects[i]} on the {vocab.targets[t]}"
        self._remember(plain, p)  # decisions record the restated text; it was scored with ``p``
        return plain

    def _read(self, instruction: str | None, vocab: SceneVocabulary,
              count_cached: bool = True) -> np.ndarray | None:
        if not instruction:
            return None
        grounder = self._grounders.setdefault(vocab, Grounder(self.backend, vocab, self.cfg.timeout_s))
        fresh = not grounder.knows(instruction)
        t0 = time.perf_counter()
        try:
            p = grounder(instruction)
        except (BackendError, AnswerError, ValueError, KeyError) as e:
            self.stats.fallbacks["grounding"] += 1
            log.warning("could not read the instruction with the language model (%s); value only", e)
            return None
        if fresh:
            self.stats.consulted += 1
            self.stats.latency_ms.append((time.perf_counter() - t0) * 1e3)
        elif count_cached:
            self.stats.cached += 1
        return p

    def intended(self, found: Outcome, instruction: str, vocab: SceneVocabulary, task: str) -> bool | None:
        p = self._scored_with.get(instruction)
        if p is None:  # not scored by this planner lately: read it now
            p = self._read(instruction, vocab, count_cached=False)
        if p is None:
            return None
        if found.obj is None:
            return False
        obj = found.obj
        if self.memory is not None:
            obj = int(np.argmax(self.memory.object_correction(task, p.shape[0])[obj]))
        want_obj, want_target = np.unravel_index(int(np.argmax(p)), p.shape)
        return bool(obj == want_obj and found.target in (None, want_target))

    def likelihood(self, found: list[Outcome], p: np.ndarray) -> np.ndarray:
        """P(instruction satisfied | outcome) per candidate from the grounding ``p``."""
        n_obj, n_tgt = p.shape
        out = np.full(len(found), 1.0 / (n_obj * n_tgt))
        for j, o in enumerate(found):
            if o.obj is not None:
                out[j] = p[o.obj, o.target] if o.target is not None else p[o.obj].sum() / n_tgt
        return out

    def terms(self, q: PlanQuery) -> dict[str, np.ndarray]:
        vocab = _scene(q)
        p = self.grounding(q)
        dreamed = found = outcomes(q.dreams, q.observation, vocab)
        mem = np.zeros(len(found))
        asked = p  # P(dreamed object, target): what the instruction asks of each object the dream shows
        if self.memory is not None and p is not None:  # act on what the dreams have meant so far
            fix = self.memory.object_correction(q.task or "", p.shape[0])
            found = [o if o.obj is None else dataclasses.replace(o, obj=int(np.argmax(fix[o.obj])))
                     for o in found]
            asked = fix @ p  # dreamed object i is really object fix[i]
        scores = self.value.score(q, asked)  # the value of the future the instruction asks for
        lang = self.likelihood(found, p) if p is not None else np.ones(len(found))
        if self.memory is not None:  # lessons are filed under what the dream said
            prior = self.value.terms(q, asked)["success"]
            for j, o in enumerate(dreamed):  # the success the value planner counted, recalibrated
                cal = self.memory.calibration(q.task or "", o.text(vocab), float(prior[j]))
                mem[j] = self.value.cfg.success * (cal - prior[j])
        return {"value": scores, "language": lang, "memory": mem,
                "outcomes": np.array([o.text(vocab) for o in found])}

    def score(self, q: PlanQuery) -> np.ndarray:
        return self._combine(self.terms(q))

    def _combine(self, t: dict[str, np.ndarray]) -> np.ndarray:
        return t["value"] + self.cfg.language_weight * np.log(t["language"] + FLOOR) + t["memory"]

    def choose(self, q: PlanQuery) -> Choice:
        self.stats.decisions += 1
        t = self.terms(q)
        scores = self._combine(t)
        best = int(np.argmax(scores))
        reason = (f"candidate {best} ({t['outcomes'][best]}): value {t['value'][best]:.2f}, "
                  f"P(instruction satisfied) {t['language'][best]:.2f}")
        return Choice(best, scores, reason)
