"""Manipulation tasks: one file per task, each a ``Task`` subclass."""
