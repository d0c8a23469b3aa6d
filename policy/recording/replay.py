"""`reverie viz data=DIR`: replay recorded demonstrations in rerun.

Each frame's recorded state (arm joints and gripper, object poses, the goal's markers) is put into
the task's scene and its geometry posed by forward kinematics; the arm's joint positions and the
recorded action targets are plotted per joint, with reward and success, and the episode's
instruction is shown as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from policy.recording import paths
from policy.recording.recorder import Recorder, RerunTarget
from sim import keys
from sim.data.format import ACTION, ENV_TASK, OBS_FEATURES, REWARD, STATE, SUCCESS, DatasetError
from sim.data.reader import DemoDataset
from sim.env import ReverieEnv


def pick_episodes(n_available: int, episodes: Any) -> list[int]:
    """``episodes``: a count (the first N) or a list of episode indices -> checked indices."""
    if isinstance(episodes, int):
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1 or a list of indices, got {episodes}")
        return list(range(min(episodes, n_available)))
    chosen = [int(e) for e in episodes]
    bad = [e for e in chosen if not 0 <= e < n_available]
    if not chosen or bad:
        raise ValueError(f"episodes {bad or chosen} are not in the dataset "
                         f"(it has episodes 0..{n_available - 1})")
    return chosen


def replay(data: str | Path, target: str, episodes: Any = 3) -> dict[str, Any]:
    """Record ``episodes`` of the dataset at ``data`` to ``target`` (a .rrd file, spawn or a URL)."""
    ds = DemoDataset(data)
    task, robot = ds.info.get(ENV_TASK), ds.info.get("robot_type")
    if task is None or robot is None:
        raise DatasetError(f"{data}: info.json names no Reverie task or robot ({ENV_TASK!r}, 'robot_type'); "
                           "only datasets written by `reverie collect` can be replayed")
    chosen = pick_episodes(ds.num_episodes, episodes)
    env = ReverieEnv(task, robot)
    scene, joint_names = env.scene, env.robot.joint_names
    dt = 1.0 / ds.fps
    frames = 0
    with Recorder(RerunTarget.parse(target), chosen, app_id="reverie-dataset") as rec:
        for e in chosen:
            ep = ds.episode(e)
            first = int(ds.episode_bounds[e][0])
            rec.begin_episode(e, scene, dt, env.task.cubes, ds.task_of(first))
            for t in range(len(ep[STATE])):
                obs = _put_state(env, ep, t)
                rec.log_state(e, t, scene.data, obs)
                values = {f"joints/{n}/position": ep[STATE][t, j] for j, n in enumerate(joint_names)}
                values.update({f"joints/{n}/target": ep[ACTION][t, j] for j, n in enumerate(joint_names)})
                values.update({"gripper/position": ep[STATE][t, -1], "gripper/target": ep[ACTION][t, -1]})
                for name, key in (("reward", REWARD), ("success", SUCCESS)):
                    if key in ep:
                        values[name] = float(ep[key][t].reshape(-1)[0])
                rec.log_scalars(e, t, values)
                frames += 1
    env.close()
    return {"data": str(data), "task": task, "robot": robot, "episodes": chosen, "frames": frames,
            "rerun": target, "entity_root": paths.ROOT}


def _put_state(env: ReverieEnv, ep: dict[str, np.ndarray], t: int) -> dict[str, Any]:
    """Pose the scene as frame ``t`` recorded it; return the observation keys the recorder reads."""
    scene = env.scene
    state = ep[STATE][t]
    scene.set_robot(state[:-1], state[-1])
    obs: dict[str, Any] = {}
    poses_key = OBS_FEATURES[keys.OBJECT_POSES]
    if poses_key in ep:
        poses = ep[poses_key][t].reshape(-1, keys.POSE_DIM)
        for name, pose in zip(env.task.cubes, poses, strict=True):
            scene.set_object_pose(name, pose)
        obs[keys.OBJECT_POSES] = poses
    goal_key = OBS_FEATURES[keys.GOAL]
    if goal_key in ep:
        env.task.place_goal(scene, ep[goal_key][t])
    mujoco.mj_kinematics(scene.model, scene.data)
    ee_key = OBS_FEATURES[keys.EE_POSE]
    obs[keys.EE_POSE] = ep[ee_key][t] if ee_key in ep else scene.ee_pose()
    return obs
