import os

# Headless rendering must be chosen before anything imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")
