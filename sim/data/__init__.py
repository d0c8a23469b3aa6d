"""Demonstration datasets in the LeRobotDataset v3.0 layout, and training windows over them."""

from sim.data.format import DatasetError
from sim.data.reader import DemoDataset
from sim.data.windows import TrainingWindows
from sim.data.writer import DemoWriter

__all__ = ["DatasetError", "DemoDataset", "DemoWriter", "TrainingWindows"]
