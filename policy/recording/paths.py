"""Entity paths and timelines of a Reverie recording: one place, so the recorder, the blueprint,
the dataset replay and the tests agree.

```
/episodes/<id>/world/robot/<body>/<shape>     static geometry in the body frame (box, capsule, ...)
/episodes/<id>/world/robot/<body>             Transform3D per step (every body of the robot)
/episodes/<id>/world/objects/<body>[/<shape>] the same for cubes, pads and markers
/episodes/<id>/world/static/<shape>           geoms fixed to the world (the table)
/episodes/<id>/world/executed                 the tool-centre-point path so far (line strip)
/episodes/<id>/world/dreams/ee_paths          K dreamed tool paths; the chosen bright, the rest faded
/episodes/<id>/world/dreams/object_paths      K x n dreamed object paths
/episodes/<id>/world/dreams/ghosts/<shape>    the arm at each candidate's final target, world frame
/episodes/<id>/world/dreams/chosen            the chosen candidate's dreamed tool path
/episodes/<id>/world/dreams/refine/{before,after}  a refinement's tool path before and after
/episodes/<id>/planner/reason                 TextLog: choice, scores, reason, refinements
/episodes/<id>/planner/scores                 BarChart: one score per candidate
/episodes/<id>/metrics/dream_error/{ee_cm,object_cm}  chosen dream against what really happened
/episodes/<id>/metrics/joints/<joint>/{position,target}  dataset replay: state and action
/episodes/<id>/camera                         rendered camera image
```
"""

from __future__ import annotations

STEP = "step"
"""Sequence timeline: the control step (0 at reset)."""
SIM_TIME = "sim_time"
"""Duration timeline: simulated seconds since reset."""

ROOT = "episodes"


def episode(eid: int | str) -> str:
    return f"{ROOT}/{eid}"


WORLD = "world"
ROBOT = "world/robot"
OBJECTS = "world/objects"
STATIC = "world/static"
EXECUTED = "world/executed"
DREAMS = "world/dreams"
EE_PATHS = "world/dreams/ee_paths"
OBJECT_PATHS = "world/dreams/object_paths"
GHOSTS = "world/dreams/ghosts"
CHOSEN = "world/dreams/chosen"
REFINE_BEFORE = "world/dreams/refine/before"
REFINE_AFTER = "world/dreams/refine/after"
REASON = "planner/reason"
SCORES = "planner/scores"
METRICS = "metrics"
DREAM_ERROR_EE = "metrics/dream_error/ee_cm"
DREAM_ERROR_OBJECT = "metrics/dream_error/object_cm"
JOINTS = "metrics/joints"
CAMERA = "camera"
