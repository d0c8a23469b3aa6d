import os

# Headless rendering must be chosen before anything imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")

# Tests share two cores with whatever else runs; one torch thread each keeps them predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
