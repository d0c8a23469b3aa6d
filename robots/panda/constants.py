"""Franka Emika Panda facts, from Franka's "Robot and interface specifications" and DH pages.

Kinematics (modified DH, Craig): (a, d, alpha) per joint
1 (0, 0.333, 0); 2 (0, 0, -pi/2); 3 (0, 0.316, pi/2); 4 (0.0825, 0, pi/2);
5 (-0.0825, 0.384, -pi/2); 6 (0, 0, pi/2); 7 (0.088, 0, pi/2); flange d = 0.107.
The hand is mounted at the flange turned -pi/4 about z; its TCP is 0.1034 m along z.
"""

from __future__ import annotations

import math
from pathlib import Path

from robots.base import RobotConstants

DH_MODIFIED: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
)
"""(a, d, alpha) per joint, modified DH."""
FLANGE_D = 0.107
HAND_YAW = -math.pi / 4
TCP_OFFSET = 0.1034

PANDA = RobotConstants(
    name="panda",
    joint_names=tuple(f"panda_joint{i}" for i in range(1, 8)),
    joint_lower=(-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973),
    joint_upper=(2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973),
    velocity_limits=(2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100),
    acceleration_limits=(15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
    effort_limits=(87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0),
    gripper_joint="panda_finger_joint1",
    gripper_range=(0.0, 0.04),
    gripper_open=0.04,
    gripper_closed=0.0,
    gripper_velocity_limit=0.1,
    home=(0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4),
    home_gripper=0.04,
    model_path=Path(__file__).with_name("panda.xml"),
    ee_site="ee",
    symmetric_gripper=True,
    tool_yaw_centre=math.pi / 4,  # the hand's yaw with joint 7 at 0, mid-range (home: pi/4, yaw 0)
    reach=0.855,
)
