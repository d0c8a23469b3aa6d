"""Planners by name: the one place a planner is registered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from policy.planners.base import Planner
from policy.planners.value import ValuePlanner, ValuePlannerConfig


def _llm(cls_name: str) -> Callable[..., Planner]:
    def build(client=None, value: dict[str, Any] | None = None, **settings: Any) -> Planner:
        from policy.planners.llm import config, planner  # llama_cpp and openai load only when asked for

        cls = getattr(planner, cls_name)
        return cls(config.LLMConfig(**settings), client, ValuePlanner(ValuePlannerConfig(**(value or {}))))
    return build


PLANNERS: dict[str, Callable[..., Planner]] = {
    "value": lambda **kw: ValuePlanner(ValuePlannerConfig(**kw)),
    "llm": _llm("LLMPlanner"),
    "llm_value": _llm("LLMValuePlanner"),
}
"""Planner name -> constructor taking that planner's settings as keywords (``llm`` and
``llm_value``: ``LLMConfig`` fields, ``value=`` the value planner's, ``client=`` a ready backend)."""


def make_planner(name: str, **settings: Any) -> Planner:
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose one of {', '.join(PLANNERS)}")
    return PLANNERS[name](**settings)
