"""Lessons across episodes, without touching any weights.

After each episode the planner writes one ``Lesson``: what it chose, what the dream predicted,
what really happened and, when those differ, why. Lessons live in a JSONL file (one object per
line, appended and flushed as each episode ends, so a crash loses at most the episode running).
Before a decision the planner retrieves the few most relevant ones (same task; the more words
of the instruction and of the option in common, and the more recent, the better) and reads them.

Lessons also carry numbers, so a scorer can use them without reading: per kind of outcome, how
often the dream's promise held (``calibration``), and which object a plan the dream said acts on
one object really acted on (``object_correction``: a world model that mixes objects up is
corrected after it has been caught once per object).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

LESSON_VERSION = 1


@dataclass
class Lesson:
    task: str
    instruction: str
    chosen: str
    """The outcome sentence of the option executed last before the episode ended."""
    predicted_success: float
    """The dream's probability of success for what was executed (mean over the episode's decisions)."""
    success: bool
    why: str
    """A sentence: what happened that the dream did not predict (or that it did)."""
    episode: int = 0
    dreamed_obj: int | None = None
    """Object the dream said the executed plan would act on (index into the scene's objects)."""
    actual_obj: int | None = None
    """Object it really acted on, when that is known (None: unknown or nothing)."""
    intended: bool | None = None
    """Whether the executed plan was meant to do what the instruction asks, as the planner read
    it (None: not recorded). Only such episodes say whether the dream's promise held."""
    version: int = LESSON_VERSION

    def text(self) -> str:
        verdict = "succeeded" if self.success else "failed"
        return (f"'{self.instruction}': chose '{self.chosen}', dream said success "
                f"{self.predicted_success:.0%}, it {verdict}. {self.why}")


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


class LessonStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lessons: list[Lesson] = []
        if self.path.exists():
            names = {f.name for f in fields(Lesson)}
            for n, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    if raw.get("version") != LESSON_VERSION:
                        raise ValueError(f"version {raw.get('version')!r}, expected {LESSON_VERSION}")
                    self.lessons.append(Lesson(**{k: v for k, v in raw.items() if k in names}))
                except (ValueError, TypeError) as e:
                    raise ValueError(f"lesson store {self.path} line {n} is corrupt ({e}); fix or "
                                     "delete that line, or start a new store") from None

    def add(self, lesson: Lesson) -> None:
        self.lessons.append(lesson)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(asdict(lesson)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def retrieve(self, task: str, query: str, k: int) -> list[Lesson]:
        """The ``k`` lessons of ``task`` sharing most words with ``query``, recent ones first on ties."""
        if k <= 0:
            return []
        want = _words(query)
        ranked = [(len(want & _words(x.instruction + " " + x.chosen)) / (len(want) or 1) + 0.01 * n, x)
                  for n, x in enumerate(self.lessons) if x.task == task]
        return [x for _, x in sorted(ranked, key=lambda p: -p[0])[:k]]

    def object_correction(self, task: str, n_objects: int) -> np.ndarray:
        """(n, n) where row i says which object a plan dreamed to act on object i really acts on:
        the most frequent observed answer, else i itself."""
        table = np.eye(n_objects)
        counts = np.zeros((n_objects, n_objects))
        for x in self.lessons:
            known = x.dreamed_obj is not None and x.actual_obj is not None
            if x.task == task and known and max(x.dreamed_obj, x.actual_obj) < n_objects:
                counts[x.dreamed_obj, x.actual_obj] += 1
        for i in range(n_objects):
            if counts[i].sum():
                table[i] = np.eye(n_objects)[int(np.argmax(counts[i]))]
        return table

    def calibration(self, task: str, chosen: str, prior: float, strength: float = 2.0) -> float:
        """P(success) for an option reading ``chosen``: the dream's ``prior`` updated by how often
        that outcome really succeeded (a Beta prior worth ``strength`` episodes).

        Only episodes that say something about the dream's promise count: the plan was meant to do
        what was asked (not ``intended is False``), and it acted on the object the dream said (a
        mix-up of objects is ``object_correction``'s lesson, not a broken promise)."""
        seen = [x.success for x in self.lessons
                if x.task == task and x.chosen == chosen and x.intended is not False
                and (x.dreamed_obj is None or x.actual_obj is None or x.dreamed_obj == x.actual_obj)]
        return (prior * strength + sum(seen)) / (strength + len(seen))
