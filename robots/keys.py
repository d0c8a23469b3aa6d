"""Keys of a robot's own observation (what every driver reports), shared with the simulator."""

JOINT_POS = "joint_pos"
"""(n_joints,) arm joint positions, rad."""
JOINT_VEL = "joint_vel"
"""(n_joints,) arm joint velocities, rad/s."""
GRIPPER = "gripper"
"""(1,) gripper joint position in the robot's gripper units."""
