"""SO-101 (5-DoF + gripper), the low-cost arm from TheRobotStudio used with LeRobot."""
