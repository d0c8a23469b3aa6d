"""The language model's side of a decision: the prompt it reads and the tool call it answers.

The answer is one JSON object constrained by ``tool_schema`` (a grammar in process, a
``response_format`` over HTTP), so it always parses when the model finishes in time:

```
{"option": 2, "tool": "choose", "reason": "..."}                execute option 2
{"option": 2, "tool": "refine", "last_x": 8, "reason": "..."}   re-denoise its last 8 steps
{"option": 0, "tool": "resample", "k": 8, "reason": "..."}      draw 8 fresh candidates
```
``parse_tool_call`` still checks every field, so a server that ignores the schema cannot make the
robot act on nonsense.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

TOOLS = ("choose", "refine", "resample")
REFINE_STEPS = (4, 8)
"""last_x values the model may ask to re-denoise (steps at the end of the plan)."""
RESAMPLE_SIZES = (4, 8, 16)
REASON_CHARS = 60
REASON_PATTERN = f"^[A-Za-z0-9 ,.'-]{{0,{REASON_CHARS}}}$"
"""One short line of plain words: no control characters, nothing that needs escaping."""

SYSTEM = ("You control a robot arm. Each option describes what the robot would do next, as predicted "
          "by its world model. Pick the option that best carries out the user's instruction. Colours "
          "may be named with synonyms. Answer with one JSON tool call.")


@dataclass(frozen=True)
class ToolCall:
    tool: str
    option: int
    last_x: int = 0
    k: int = 0
    reason: str = ""


class AnswerError(ValueError):
    """The model's answer is not a valid tool call."""


def tool_schema(n_options: int) -> dict[str, Any]:
    """One of three call shapes, so a grammar cannot produce an incomplete call."""
    option = {"type": "integer", "enum": list(range(n_options))}
    reason = {"type": "string", "pattern": REASON_PATTERN}

    def call(tool: str, **extra: dict[str, Any]) -> dict[str, Any]:
        props = {"option": option, "tool": {"type": "string", "enum": [tool]}, **extra, "reason": reason}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    return {"anyOf": [call("choose"), call("refine", last_x={"type": "integer", "enum": list(REFINE_STEPS)}),
                      call("resample", k={"type": "integer", "enum": list(RESAMPLE_SIZES)})]}


def parse_tool_call(text: str, n_options: int) -> ToolCall:
    """The answer as a ``ToolCall``; ``AnswerError`` names what is wrong with it."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise AnswerError(f"answer is not JSON ({e.msg}): {text[:120]!r}") from None
    if not isinstance(raw, dict):
        raise AnswerError(f"answer must be a JSON object, got {type(raw).__name__}")
    tool, option = raw.get("tool"), raw.get("option")
    if tool not in TOOLS:
        raise AnswerError(f"tool must be one of {TOOLS}, got {tool!r}")
    if not isinstance(option, int) or isinstance(option, bool) or not 0 <= option < n_options:
        raise AnswerError(f"option must be an integer in [0, {n_options - 1}], got {option!r}")
    last_x, k = raw.get("last_x", 0), raw.get("k", 0)
    if tool == "refine" and last_x not in REFINE_STEPS:
        raise AnswerError(f"refine needs last_x in {REFINE_STEPS}, got {last_x!r}")
    if tool == "resample" and k not in RESAMPLE_SIZES:
        raise AnswerError(f"resample needs k in {RESAMPLE_SIZES}, got {k!r}")
    reason = raw.get("reason", "")
    return ToolCall(tool, option, last_x if tool == "refine" else 0, k if tool == "resample" else 0,
                    str(reason)[:REASON_CHARS])


def messages(instruction: str | None, options: list[str], lessons: list[str]) -> list[dict[str, str]]:
    """Chat messages for one decision; ``options`` are outcome sentences, best-valued first."""
    lines = [f"Instruction: {instruction or 'complete the task'}"]
    if lessons:
        lines += ["Lessons from earlier episodes:", *(f"- {x}" for x in lessons)]
    lines += ["Options:", *(f"{i}: the robot {text}" for i, text in enumerate(options))]
    lines.append('Tools: choose(option); refine(option, last_x) re-plans the end of that option; '
                 'resample(k) draws k new options.')
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]
