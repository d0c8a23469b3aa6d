"""Scripted experts, one per task, in one registry."""

from __future__ import annotations

from sim.experts.base import Expert, Waypoint
from sim.experts.pick_place import PickPlaceExpert, SortExpert
from sim.experts.push import PushExpert
from sim.experts.reach import ReachExpert

EXPERTS: dict[str, type[Expert]] = {
    "reach": ReachExpert, "push": PushExpert, "pick_place": PickPlaceExpert, "sort": SortExpert,
}

__all__ = ["EXPERTS", "Expert", "Waypoint"]
