"""Observation keys and sizes shared by tasks, experts, datasets and policies."""

# what every robot reports, simulated or real, is defined with the robots and re-exported here
from robots.keys import GRIPPER as GRIPPER
from robots.keys import JOINT_POS as JOINT_POS
from robots.keys import JOINT_VEL as JOINT_VEL

EE_POSE = "ee_pose"
"""(7,) tool-centre-point position (m) and orientation quaternion (w, x, y, z), world frame."""
OBJECT_POSES = "object_poses"
"""(n_objects, 7) object positions and quaternions (w, x, y, z); absent when a task has none."""
GOAL = "goal"
"""(goal_dim,) task goal: target positions (see each task's docstring)."""
INSTRUCTION = "instruction"
"""Natural-language instruction (Sort only)."""
IMAGE = "image"
"""(H, W, 3) uint8 RGB camera image, present when the env is built with ``camera_obs=True``."""

POSE_DIM = 7
STATE_KEYS = (JOINT_POS, JOINT_VEL, GRIPPER, EE_POSE, OBJECT_POSES, GOAL)
"""Numeric keys, in the order they are concatenated into a flat state vector."""
