"""The ``physics`` dreamer: MuJoCo rebuilt from the observation alone, then every candidate replayed.

The ``oracle`` copies the running simulation's full state, which only a simulation has. This
dreamer knows the scene's geometry (the task's MJCF: robot, table, cube size) and nothing of the
state beyond what an observation says: the arm's joint positions and velocities, the gripper's
opening and each cube's pose. It sets its own MuJoCo model to that, with each cube's velocity
estimated from the last two observations, and steps every candidate through it:

```
state(obs) = arm q, arm dq, gripper opening, cube poses, cube velocity ~ (p_t - p_{t-1}) / control_dt
dream_k    = MuJoCo(state(obs) + perception noise, model with mismatched friction and mass)(candidate_k)
```
So it is what a robot with a known scene and a pose estimate of each cube could run. The
mismatch settings (``PhysicsDreamerConfig``) make its model and its reading of the cubes wrong on
purpose, to measure how much the choice depends on a faithful simulator.
With ``variants`` it dreams each candidate in several such models and averages the dreams; with
``hedge_mm`` (and ``hedge_deg``) it does the same over readings of the cubes spread as a pose
estimator's error would be, so the choice favours futures that hold up if the cube is not
quite where it was seen. The single dreams stay as the mean's ``draws``, for a planner that
scores each (``value.score_draws``). All rollouts of a decision go to MuJoCo's ``rollout`` in
one call, spread over ``threads``. A rollout MuJoCo finds unstable (it then resets the state) is
held at its last good step and counted (``diverged``), so no dream shows a reset state. Measured
in BENCHMARKS.md ("A dreamer rebuilt from the observation").

Its progress and success are left to the planner, which computes them from the dreamed positions
by the task's own definition (``policy/planners/objective.py``); so it dreams only the tasks whose
cube and target are fixed (Push, PickPlace). Sort needs an instruction's grounding, which only a
world model (or the simulator's own task state) supplies.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from mujoco import rollout

from policy.dreams import Dreams, History, holding_label, touching_label
from policy.planners.objective import FIXED_PAIR
from sim import keys
from sim.env import ReverieEnv

_STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS
"""What a rollout starts from: time, joint positions and velocities, actuator state."""


@dataclass
class PhysicsDreamerConfig:
    """How wrong the physics dreamer's simulator is on purpose (all off: a faithful model)."""

    friction: float = 1.0
    """Scale of the cubes' sliding friction in the dreamer's model (the real table is unknown)."""
    mass: float = 1.0
    """Scale of the cubes' mass and inertia in the dreamer's model."""
    pose_noise_mm: float = 0.0
    """Standard deviation (mm) of the error added to each cube's observed x and y at each
    decision, as a pose estimator would make it."""
    yaw_noise_deg: float = 0.0
    """Standard deviation (degrees) of the error added to each cube's observed yaw."""
    seed: int = 0
    """Seed of the perception noise."""
    variants: int = 1
    """Models each candidate is dreamed in, their dreams averaged (positions, and the share of
    models in which a cube is held or touched): a hedge against not knowing the cubes' friction
    and mass. With several, variant v scales friction by f_v and mass by f_(V-1-v), the factors f
    evenly spread over [1 - spread, 1 + spread]: from slippery and heavy to grippy and light."""
    spread: float = 0.0
    """Half-width of the variants' factors (0 <= spread < 1; > 0 exactly when variants > 1)."""
    hedge_mm: float = 0.0
    """Standard deviation (mm) of the cube position error the choice should hold up against. With
    it (or ``hedge_deg``), every candidate is dreamed from several readings of the cubes, moved off
    the observed pose by the sigma points of that error, and the dreams averaged: a grasp that
    only works if the pose estimate is exact then scores below one that works nearby too. The
    points are a regular simplex (n + 1 points at sqrt(n) standard deviations, whose mean and
    covariance are the error's), over the n hedged dimensions: x and y, and yaw with
    ``hedge_deg``. Every cube moves by the same offset. It multiplies the rollouts by n + 1."""
    hedge_deg: float = 0.0
    """Standard deviation (degrees) of the cube yaw error to hedge against (see ``hedge_mm``)."""
    threads: int = 1
    """Threads MuJoCo spreads the rollouts over (its own pool; 1 runs them on the calling thread)."""

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"physics.threads must be >= 1, got {self.threads}")
        if self.variants < 1 or not 0 <= self.spread < 1 or (self.variants > 1) != (self.spread > 0):
            raise ValueError(f"physics.variants={self.variants}, physics.spread={self.spread}: give one "
                             "variant and no spread, or several variants and a spread in (0, 1)")
        for name in ("friction", "mass"):
            if not getattr(self, name) > 0:
                raise ValueError(f"physics.{name} scales the cubes' {name}; it must be > 0, got "
                                 f"{getattr(self, name)}")
        for name in ("pose_noise_mm", "yaw_noise_deg", "hedge_mm", "hedge_deg"):
            if getattr(self, name) < 0:
                raise ValueError(f"physics.{name} is a standard deviation; it must be >= 0, got "
                                 f"{getattr(self, name)}")


def simplex_offsets(sigma: np.ndarray) -> np.ndarray:
    """(n + 1, d) offsets whose mean is 0 and covariance diag(sigma**2) over the n dimensions of
    ``sigma`` (d of them) that are > 0: a regular simplex at sqrt(n) standard deviations. With no
    dimension > 0, the single zero offset."""
    active = np.flatnonzero(sigma > 0)
    n = len(active)
    if n == 0:
        return np.zeros((1, len(sigma)))
    centred = np.eye(n + 1) - 1.0 / (n + 1)  # the simplex's corners, in the plane sum = 0
    basis = np.linalg.svd(centred)[2][:n]  # n orthonormal directions spanning that plane
    unit = centred @ basis.T * np.sqrt(n + 1)  # unit covariance: mean(v v^T) = I
    out = np.zeros((n + 1, len(sigma)))
    out[:, active] = unit * sigma[active]
    return out


def stable_steps(states: np.ndarray, substeps: int, horizon: int) -> int:
    """Control steps of a rollout that ran wholly before MuJoCo found it unstable, from its
    (physics steps, state) record, one physics step past the horizon. MuJoCo's rollout stops at
    the first warning and repeats the state of the step that raised it (a reset state, for an
    instability), so that step is the first one its successor copies exactly; a healthy state
    never repeats, its clock moves on."""
    repeated = np.flatnonzero((np.diff(states, axis=0) == 0).all(axis=1))
    return horizon if not repeated.size else min(horizon, int(repeated[0]) // substeps)


def _turn(quats: np.ndarray, yaws: np.ndarray) -> None:
    """Rotates each (w, x, y, z) quaternion in place by its yaw (radians) about the world's z."""
    for q, yaw in zip(quats, yaws, strict=True):
        mujoco.mju_mulQuat(q, np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]), q.copy())


@dataclass
class _Reading:
    """One row's state as observed: what the dreamer rebuilds its simulation from."""

    joints: np.ndarray
    joint_vel: np.ndarray
    gripper: float
    cubes: np.ndarray
    """(n, 7) position and quaternion (w, x, y, z), noise included."""
    cube_vel: np.ndarray
    """(n, 3) linear velocity estimated from the last two observations."""


class PhysicsDreamer:
    """Replays candidates in a MuJoCo model of the task set from each observation (see the module
    docstring). ``task`` and ``robot`` are registry names; the scene is built from them."""

    name = "physics"
    exact = False

    def __init__(self, task: str, robot: str, horizon: int = 16, control_dt: float = 0.1,
                 cfg: PhysicsDreamerConfig | None = None) -> None:
        if task not in FIXED_PAIR:
            raise ValueError(f"dreamer=physics scores dreams by a fixed cube and target, which task "
                             f"{task!r} has not (it dreams {', '.join(FIXED_PAIR)}); use dreamer=learned "
                             "with a world model, or dreamer=oracle in simulation")
        self.horizon, self.cfg = horizon, cfg or PhysicsDreamerConfig()
        c = self.cfg
        self._rng = np.random.default_rng(c.seed)
        factors = np.linspace(1 - c.spread, 1 + c.spread, c.variants)
        self.variants = [ReverieEnv(task, robot, control_dt=control_dt, max_episode_steps=10**9)
                         for _ in factors]
        self.env = self.variants[0]
        self._cube_bodies = [self.env.scene.model.body(name).id for name in self.env.task.cubes]
        for env, grip, weight in zip(self.variants, factors, factors[::-1], strict=True):
            model = env.scene.model
            for b in self._cube_bodies:
                model.body_mass[b] *= c.mass * weight
                model.body_inertia[b] *= c.mass * weight
                model.geom_friction[np.flatnonzero(model.geom_bodyid == b), 0] *= c.friction * grip
            mujoco.mj_setConst(model, env.scene.data)  # the constraint solver's weights follow the new masses
        self._lo, self._hi = self.env.robot.action_lower, self.env.robot.action_upper
        xy = c.hedge_mm / 1000
        self.hedges = simplex_offsets(np.array([xy, xy, np.radians(c.hedge_deg)]))
        """(P, 3) offsets (x, y in metres, yaw in radians) each candidate is dreamed from."""
        self._threads = [mujoco.MjData(self.env.scene.model) for _ in range(c.threads)]
        self._scratch = mujoco.MjData(self.env.scene.model)
        self.rollouts = self.diverged = 0
        """Candidate rollouts so far, and how many of them MuJoCo found unstable (held there)."""

    def attach(self, envs: list[ReverieEnv]) -> None:
        """Checks that the controlled scene is the one it models; it never reads their state."""
        for env in envs:
            mine = (self.env.task.name, self.env.robot.name, self.env.control_dt)
            theirs = (env.task.name, env.robot.name, env.control_dt)
            if theirs != mine:
                raise ValueError(f"the physics dreamer models task, robot, control_dt = {mine}, but "
                                 f"controls {theirs}; build it for the controlled scene")

    def grounding(self, latent) -> None:
        del latent

    def reads(self, instruction: str) -> None:
        del instruction

    def encode(self, history: History, active: np.ndarray | None = None) -> list[_Reading | None]:
        if not history:
            raise ValueError("the physics dreamer needs at least one observation")
        now, before = history[-1], history[-2] if len(history) > 1 else history[-1]
        dt = self.env.control_dt
        out: list[_Reading | None] = []
        for i, (obs, prev) in enumerate(zip(now, before, strict=True)):
            if active is not None and not active[i]:
                out.append(None)
                continue
            missing = [k for k in (keys.JOINT_POS, keys.JOINT_VEL, keys.GRIPPER, keys.OBJECT_POSES)
                       if k not in obs]
            if missing:
                raise ValueError(f"the physics dreamer rebuilds the scene from {', '.join(missing)}, "
                                 f"which observation row {i} lacks")
            cubes = np.array(obs[keys.OBJECT_POSES], dtype=float).reshape(-1, 7)
            if len(cubes) != len(self._cube_bodies):
                raise ValueError(f"observation row {i} has {len(cubes)} cube poses; the "
                                 f"{self.env.task.name!r} scene has {len(self._cube_bodies)}")
            before_xyz = np.array(prev[keys.OBJECT_POSES], dtype=float).reshape(-1, 7)[:, :3]
            velocity = (cubes[:, :3] - before_xyz) / dt
            out.append(_Reading(np.array(obs[keys.JOINT_POS], dtype=float),
                                np.array(obs[keys.JOINT_VEL], dtype=float),
                                float(np.asarray(obs[keys.GRIPPER]).reshape(-1)[0]),
                                self._perceive(cubes), velocity))
        return out

    def _perceive(self, cubes: np.ndarray) -> np.ndarray:
        """Cube poses with the configured estimation error (unit quaternions)."""
        c = self.cfg
        out = cubes.copy()
        out[:, 3:] /= np.linalg.norm(out[:, 3:], axis=1, keepdims=True)
        if c.pose_noise_mm:
            out[:, :2] += self._rng.normal(0.0, c.pose_noise_mm / 1000, (len(out), 2))
        if c.yaw_noise_deg:
            _turn(out[:, 3:], np.radians(self._rng.normal(0.0, c.yaw_noise_deg, len(out))))
        return out

    def _rebuild(self, env: ReverieEnv, r: _Reading, hedge: np.ndarray) -> None:
        scene = env.scene
        m, d = scene.model, scene.data
        mujoco.mj_resetData(m, d)
        scene.set_robot(r.joints, r.gripper)
        d.qvel[scene.arm_qvel] = r.joint_vel
        cubes = r.cubes.copy()
        cubes[:, :2] += hedge[:2]
        if hedge[2]:
            _turn(cubes[:, 3:], np.full(len(cubes), hedge[2]))
        for name, pose, vel in zip(env.task.cubes, cubes, r.cube_vel, strict=True):
            scene.set_object_pose(name, pose)
            dof = m.joint(f"{name}_joint").dofadr[0]
            d.qvel[dof:dof + 3] = vel
        mujoco.mj_forward(m, d)

    def dream(self, latent: list[_Reading | None], trajs: np.ndarray) -> Dreams:
        b, k, h, _ = trajs.shape
        if len(latent) != b:
            raise ValueError(f"{len(latent)} observed states for {b} batches of trajectories")
        half = self.env.task.ws.cube_half
        return Dreams.average([Dreams(ee_pos=ee, object_pos=objects, holding=holding_label(objects, half),
                                      touching=touching_label(ee, objects), progress=np.zeros((b, k, h)),
                                      success=np.zeros((b, k, h)))
                               for ee, objects in self._roll_out(latent, trajs)])

    def _roll_out(self, latent: list[_Reading | None], trajs: np.ndarray
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per model variant and hedge point: (B, K, H, 3) tool and (B, K, H, n, 3) cube positions
        of every candidate. All rollouts go to MuJoCo's rollout in one call, spread over its
        threads, with each control target held for the control period's physics steps."""
        b, k, h, _ = trajs.shape
        ns, n_cubes = self.env.n_substeps, len(self._cube_bodies)
        control = np.zeros((b, k, h, self.env.scene.model.nu))
        control[..., self.env.scene.actuators] = np.clip(trajs, self._lo, self._hi)
        # one physics step more than the dream, so that an instability in its last step shows too
        # (see stable_steps)
        control = np.concatenate([np.repeat(control, ns, axis=2), control[:, :, -1:]], axis=2)
        models, starts, controls, at_start, where = [], [], [], [], []
        for p, (env, hedge) in enumerate((e, x) for e in self.variants for x in self.hedges):
            m, d = env.scene.model, env.scene.data
            for i, reading in enumerate(latent):
                if reading is None:
                    continue
                self._rebuild(env, reading, hedge)
                state = np.empty(mujoco.mj_stateSize(m, _STATE))
                mujoco.mj_getState(m, d, state, _STATE)
                models += [m] * k
                starts.append(np.broadcast_to(state, (k, state.size)))
                controls.append(control[i])
                at_start.append((d.site_xpos[env.scene.ee_site].copy(), d.xpos[self._cube_bodies].copy()))
                where.append((p, i))
        runs = [(np.zeros((b, k, h, 3)), np.zeros((b, k, h, n_cubes, 3))) for _ in range(len(self.hedges) *
                                                                                         len(self.variants))]
        if not models:
            return runs
        states, _ = rollout.rollout(models, self._threads, np.concatenate(starts), np.concatenate(controls),
                                    persistent_pool=len(self._threads) > 1)
        self.rollouts += len(models)
        scratch = self._scratch
        for n, ((p, i), (tool0, cubes0)) in enumerate(zip(where, at_start, strict=True)):
            ee, objects = runs[p]
            for j in range(k):
                r = n * k + j
                good = stable_steps(states[r], ns, h)
                self.diverged += int(good < h)
                tool, cubes = tool0, cubes0
                for t in range(good):
                    mujoco.mj_setState(models[r], scratch, states[r, (t + 1) * ns - 1], _STATE)
                    mujoco.mj_kinematics(models[r], scratch)
                    tool = scratch.site_xpos[self.env.scene.ee_site].copy()
                    cubes = scratch.xpos[self._cube_bodies].copy()
                    ee[i, j, t], objects[i, j, t] = tool, cubes
                # MuJoCo reset an unstable rollout: the rest of its dream holds where it last was
                ee[i, j, good:], objects[i, j, good:] = tool, cubes
        return runs
