"""Planners by name: the one place a planner is registered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from policy.planners.base import Planner
from policy.planners.value import ValuePlanner, ValuePlannerConfig

PLANNERS: dict[str, Callable[..., Planner]] = {
    "value": lambda **kw: ValuePlanner(ValuePlannerConfig(**kw)),
}
"""Planner name -> constructor taking that planner's settings as keywords."""


def make_planner(name: str, **settings: Any) -> Planner:
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose one of {', '.join(PLANNERS)}")
    return PLANNERS[name](**settings)
