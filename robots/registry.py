"""The one registry of robots: name -> constants."""

from __future__ import annotations

from robots.base import RobotConstants
from robots.panda.constants import PANDA
from robots.so101.constants import SO101

ROBOTS: dict[str, RobotConstants] = {PANDA.name: PANDA, SO101.name: SO101}


def get_robot(name: str) -> RobotConstants:
    """Constants of a registered robot, or a ValueError that lists the known names."""
    try:
        return ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; choose one of: {', '.join(sorted(ROBOTS))}") from None
