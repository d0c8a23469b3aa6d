"""Robot descriptions (MJCF + constants), safety and drivers. Nothing here imports torch."""

from robots.base import RobotConstants
from robots.registry import ROBOTS, get_robot

__all__ = ["ROBOTS", "RobotConstants", "get_robot"]
