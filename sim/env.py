"""ReverieEnv: any registered task on any registered robot, as a gymnasium environment.

Action: (n_joints + 1,) absolute joint-position targets, then the gripper target, in the
robot's units. Each ``step`` holds the targets for ``control_dt`` seconds, i.e.
``control_dt / sim_dt`` physics steps. Wrong shapes and NaN/inf raise ``ValueError``;
out-of-range targets are clamped to the robot's limits (``info["action_clipped"]``) or,
with ``out_of_range="error"``, raise.
"""

from __future__ import annotations

import string
from typing import Any, ClassVar, Literal

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from robots.registry import get_robot
from sim import keys
from sim.registry import get_task
from sim.scene import Scene, build_model
from sim.workspace import WORKSPACES

_INSTABILITY_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                         mujoco.mjtWarning.mjWARN_BADQACC)
INSTRUCTION_CHARSET = string.ascii_letters + string.digits + " ,.'?!-"


class ReverieEnv(gym.Env):
    """A Reverie task. See the module docstring for the action convention."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, task: str = "reach", robot: str = "panda", *,
                 render_mode: str | None = None, control_dt: float = 0.1, sim_dt: float = 0.002,
                 max_episode_steps: int | None = None,
                 out_of_range: Literal["clip", "error"] = "clip", camera: str = "front",
                 width: int = 224, height: int = 224, camera_obs: bool = False,
                 task_kwargs: dict[str, Any] | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not 0 < sim_dt <= control_dt:
            raise ValueError(f"need 0 < sim_dt <= control_dt, got sim_dt={sim_dt}, "
                             f"control_dt={control_dt}")
        substeps = control_dt / sim_dt
        if abs(substeps - round(substeps)) > 1e-6:
            raise ValueError(f"control_dt ({control_dt}) must be a whole multiple of sim_dt ({sim_dt})")
        if out_of_range not in ("clip", "error"):
            raise ValueError(f"out_of_range must be 'clip' or 'error', got {out_of_range!r}")
        self.robot = get_robot(robot)
        self.task = get_task(task)(self.robot, WORKSPACES[robot], **(task_kwargs or {}))
        self.control_dt, self.sim_dt, self.n_substeps = control_dt, sim_dt, round(substeps)
        self.max_episode_steps = max_episode_steps or self.task.max_steps
        self.out_of_range = out_of_range
        self.render_mode, self.camera, self.camera_obs = render_mode, camera, camera_obs
        self.width, self.height = width, height
        self.metadata = {**self.metadata, "render_fps": round(1 / control_dt)}

        self.scene = Scene(build_model(self.robot, WORKSPACES[robot], self.task.objects(), sim_dt),
                           self.robot)
        if camera not in [self.scene.model.camera(i).name for i in range(self.scene.model.ncam)]:
            raise ValueError(f"unknown camera {camera!r}; the scene has 'front' and 'top'")
        self._renderer: mujoco.Renderer | None = None
        self._lo, self._hi = self.robot.action_lower, self.robot.action_upper
        self.action_space = spaces.Box(self._lo.astype(np.float32), self._hi.astype(np.float32),
                                       dtype=np.float32)
        self.observation_space = self._space_from(self._reset_state(np.random.default_rng(0)))
        self._steps = 0

    # ---- gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs = self._reset_state(self.np_random)
        self._steps = 0
        return obs, self._info(clipped=False)

    def step(self, action):
        target, clipped = self._check_action(action)
        self._unstable_before = self._instability_count()
        self.scene.data.ctrl[self.scene.actuators] = target
        mujoco.mj_step(self.scene.model, self.scene.data, nstep=self.n_substeps)
        self._check_physics()
        self._steps += 1
        obs, info = self._observe(), self._info(clipped)
        terminated = bool(info["success"])
        truncated = self._steps >= self.max_episode_steps and not terminated
        return obs, float(info["progress"]), terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._image()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def observe(self) -> dict[str, Any]:
        """The observation of the current state (what ``step`` and ``reset`` return)."""
        return self._observe()

    def displace(self, offset_xy: np.ndarray, cube: int = 0) -> dict[str, Any]:
        """Move a cube by ``offset_xy`` (m) on the table, at rest (a disturbance mid-episode);
        returns the new observation."""
        if not self.task.cubes:
            raise ValueError(f"task {self.task.name!r} has no cube to displace")
        name = self.task.cubes[cube]
        pose = self.scene.object_pose(name)
        lo = np.asarray(self.task.ws.center) - self.task.ws.half_extent
        hi = np.asarray(self.task.ws.center) + self.task.ws.half_extent
        xy = np.clip(pose[:2] + np.asarray(offset_xy, dtype=float), lo, hi)
        yaw = 2 * np.arctan2(pose[6], pose[3])
        self.scene.set_cube(name, xy, yaw, max(pose[2], self.task.ws.cube_half))
        mujoco.mj_forward(self.scene.model, self.scene.data)
        return self._observe()

    # ---- internals ---------------------------------------------------------------------
    def _reset_state(self, rng: np.random.Generator) -> dict[str, Any]:
        s = self.scene
        mujoco.mj_resetData(s.model, s.data)
        s.set_robot(np.asarray(self.robot.home), self.robot.home_gripper)
        mujoco.mj_forward(s.model, s.data)
        self.task.reset(s, rng)
        mujoco.mj_forward(s.model, s.data)
        return self._observe()

    def _check_action(self, action) -> tuple[np.ndarray, bool]:
        a = np.asarray(action, dtype=np.float64)
        names = (*self.robot.joint_names, self.robot.gripper_joint)
        if a.shape != (self.robot.action_dim,):
            raise ValueError(f"action has shape {a.shape}; {self.robot.name} expects "
                             f"({self.robot.action_dim},): targets for {', '.join(names)}")
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(f"action is NaN or inf for {[names[i] for i in np.flatnonzero(bad)]}; "
                             "nothing was sent. Check the policy output and its normalisation.")
        clipped_a = np.clip(a, self._lo, self._hi)
        out = clipped_a != a
        if out.any() and self.out_of_range == "error":
            detail = ", ".join(f"{names[i]}={a[i]:.4f} not in [{self._lo[i]:.4f}, {self._hi[i]:.4f}]"
                               for i in np.flatnonzero(out))
            raise ValueError(f"action outside {self.robot.name}'s limits: {detail}. "
                             "Use out_of_range='clip' to clamp instead.")
        return clipped_a, bool(out.any())

    def _instability_count(self) -> int:
        """How often MuJoCo found a bad state and silently reset the data (since the data's last
        reset)."""
        w = self.scene.data.warning
        return sum(int(w[k].number) for k in _INSTABILITY_WARNINGS)

    def _check_physics(self) -> None:
        d = self.scene.data
        unstable = self._instability_count() > self._unstable_before
        if unstable or not (np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.qvel))):
            raise RuntimeError("simulation diverged (MuJoCo reported a bad acceleration or the "
                               "state is NaN); this is a bug in the scene or task, not in the "
                               "action, which passed the limit checks")

    def _observe(self) -> dict[str, Any]:
        s, f32 = self.scene, np.float32
        obs: dict[str, Any] = {
            keys.JOINT_POS: s.joint_pos().astype(f32),
            keys.JOINT_VEL: s.joint_vel().astype(f32),
            keys.GRIPPER: np.array([s.gripper()], dtype=f32),
            keys.EE_POSE: s.ee_pose().astype(f32),
        }
        if self.task.cubes:
            obs[keys.OBJECT_POSES] = np.stack([s.object_pose(c) for c in self.task.cubes]).astype(f32)
        obs[keys.GOAL] = self.task.goal().astype(f32)
        if (text := self.task.instruction()) is not None:
            obs[keys.INSTRUCTION] = text
        if self.camera_obs:
            obs[keys.IMAGE] = self._image()
        return obs

    def _info(self, clipped: bool) -> dict[str, Any]:
        success = self.task.success(self.scene)
        return {"success": success, "is_success": success,
                "progress": self.task.progress(self.scene), "action_clipped": clipped}

    def _image(self) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.scene.model, self.height, self.width)
        self._renderer.update_scene(self.scene.data, camera=self.camera)
        return self._renderer.render().copy()

    @staticmethod
    def _space_from(obs: dict[str, Any]) -> spaces.Dict:
        out: dict[str, spaces.Space] = {}
        for k, v in obs.items():
            if k == keys.INSTRUCTION:
                out[k] = spaces.Text(max_length=256, charset=INSTRUCTION_CHARSET)
            elif k == keys.IMAGE:
                out[k] = spaces.Box(0, 255, v.shape, dtype=np.uint8)
            else:
                out[k] = spaces.Box(-np.inf, np.inf, v.shape, dtype=np.float32)
        return spaces.Dict(out)
