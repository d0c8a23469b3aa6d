"""SO-101 facts, from the maker's URDF ``Simulation/SO101/so101_new_calib.urdf``
(TheRobotStudio/SO-ARM100): link offsets, joint names, order and limits.

Joint zero is the "new calibration" zero used by LeRobot. Servo limits are those of the
Feetech STS3215 (stall torque 2.94 N·m at 12 V; no-load speed about 0.222 s/60° at 7.4 V).
The servo publishes no acceleration limit: 20 rad/s² is a conservative software limit of ours.
"""

from __future__ import annotations

import math
from pathlib import Path

from robots.base import RobotConstants

_STS3215_SPEED = math.radians(60) / 0.222  # rad/s
_STS3215_TORQUE = 2.94  # N·m

SO101 = RobotConstants(
    name="so101",
    joint_names=("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll"),
    joint_lower=(-1.91986, -1.74533, -1.69, -1.65806, -2.74385),
    joint_upper=(1.91986, 1.74533, 1.69, 1.65806, 2.84121),
    velocity_limits=(_STS3215_SPEED,) * 5,
    acceleration_limits=(20.0,) * 5,
    effort_limits=(_STS3215_TORQUE,) * 5,
    gripper_joint="gripper",
    gripper_range=(-0.17453, 1.74533),
    gripper_open=1.0,
    gripper_closed=-0.17453,
    gripper_velocity_limit=_STS3215_SPEED,
    home=(0.0, -0.2, 0.3, 1.5, 0.0),
    home_gripper=0.0,
    model_path=Path(__file__).with_name("so101.xml"),
    ee_site="ee",
    symmetric_gripper=False,
    reach=0.32,
)
