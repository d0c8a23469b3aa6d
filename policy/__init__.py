"""Diffusion policy, world model, planners, training, evaluation and the command line."""
