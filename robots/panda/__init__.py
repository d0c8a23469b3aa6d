"""Franka Emika Panda (7-DoF) with its parallel-jaw hand."""
