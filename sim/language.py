"""Instructions for Sort: templates and synonyms, split into familiar and novel phrasings.

Familiar phrasings are what demonstrations are collected with; novel ones (other templates,
other synonyms) are held out to measure language generalisation. ``parse`` understands both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

Phrasing = Literal["familiar", "novel"]

CUBE_COLOURS = ("red", "green", "blue")
PAD_COLOURS = ("blue", "yellow")

SYNONYMS: dict[Phrasing, dict[str, tuple[str, ...]]] = {
    "familiar": {"red": ("red", "crimson"), "green": ("green", "lime"), "blue": ("blue", "navy"),
                 "yellow": ("yellow", "golden")},
    "novel": {"red": ("scarlet", "ruby"), "green": ("emerald", "olive"),
              "blue": ("azure", "cobalt"), "yellow": ("amber", "lemon")},
}
CUBE_NOUNS: dict[Phrasing, tuple[str, ...]] = {"familiar": ("cube", "block"), "novel": ("brick", "box")}
PAD_NOUNS: dict[Phrasing, tuple[str, ...]] = {"familiar": ("pad", "mat"), "novel": ("square", "tile")}
TEMPLATES: dict[Phrasing, tuple[str, ...]] = {
    "familiar": (
        "put the {c} {cn} on the {p} {pn}",
        "place the {c} {cn} onto the {p} {pn}",
        "move the {c} {cn} to the {p} {pn}",
        "pick up the {c} {cn} and set it on the {p} {pn}",
    ),
    "novel": (
        "the {p} {pn} should end up with the {c} {cn} on it",
        "could you drop the {c} {cn} onto the {p} {pn}",
        "transfer the {c} {cn} over to the {p} {pn} please",
    ),
}


def make_instruction(rng: np.random.Generator, cube: str, pad: str,
                     phrasing: Phrasing = "familiar") -> str:
    """A random sentence asking for ``cube`` (a colour) to go on ``pad`` (a colour)."""
    if cube not in CUBE_COLOURS or pad not in PAD_COLOURS:
        raise ValueError(f"cube must be one of {CUBE_COLOURS} and pad one of {PAD_COLOURS}")
    words = SYNONYMS[phrasing]
    template = TEMPLATES[phrasing][rng.integers(len(TEMPLATES[phrasing]))]
    return template.format(c=rng.choice(words[cube]), cn=rng.choice(CUBE_NOUNS[phrasing]),
                           p=rng.choice(words[pad]), pn=rng.choice(PAD_NOUNS[phrasing]))


def parse_instruction(text: str) -> tuple[str, str]:
    """(cube colour, pad colour) named by an instruction of either phrasing.

    Each colour word is bound to the next noun; the noun says whether it is a cube or a pad.
    """
    colour_of = {w: c for p in SYNONYMS.values() for c, ws in p.items() for w in ws}
    cube_nouns = {n for ns in CUBE_NOUNS.values() for n in ns}
    pad_nouns = {n for ns in PAD_NOUNS.values() for n in ns}
    cube = pad = None
    pending: str | None = None
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in colour_of:
            pending = colour_of[word]
        elif pending is not None and word in cube_nouns:
            cube, pending = pending, None
        elif pending is not None and word in pad_nouns:
            pad, pending = pending, None
    if cube is None or pad is None:
        raise ValueError(f"cannot tell which cube goes on which pad in instruction {text!r}")
    return cube, pad


@dataclass(frozen=True)
class SceneVocabulary:
    """What a task's observed objects and goal targets are called, in observation order, and how
    close to a target's centre an object must come to be on it. Planners that talk about a scene
    (a language model) use it to name things."""

    objects: tuple[str, ...]
    """Names of the observed cubes, in ``object_poses`` order."""
    targets: tuple[str, ...]
    """Names of the goal's targets, in ``goal`` order (3 numbers each)."""
    on_radius: float
    """Object-to-target-centre distance (m) within which the object is on the target."""

    @classmethod
    def for_task(cls, task: str, robot: str) -> SceneVocabulary:
        from sim.workspace import WORKSPACES

        ws = WORKSPACES[robot]
        names = {"sort": ([f"{c} cube" for c in CUBE_COLOURS], [f"{p} pad" for p in PAD_COLOURS]),
                 "push": (["red cube"], ["green pad"]), "pick_place": (["red cube"], ["green pad"]),
                 "reach": ([], ["target"])}
        if task not in names:
            raise ValueError(f"no scene vocabulary for task {task!r}; add it to SceneVocabulary.for_task")
        objects, targets = names[task]
        return cls(tuple(objects), tuple(targets), ws.pad_half if task != "reach" else ws.cube_half)
