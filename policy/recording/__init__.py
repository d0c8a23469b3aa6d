"""Rerun recordings of what Reverie did and dreamed: scene geometry from MJCF, dreamed futures,
the planner's choice and reasoning, dream error against reality; blueprint, dataset replay, plots."""
