"""A MuJoCo scene as rerun primitives, for any robot model: every visible geom of every body.

Geometry is logged once, in its body's frame (``static``); each step only the bodies' poses
change (``poses``). Ghosts of the arm at other joint configurations (the end pose of each dreamed
candidate) are posed by forward kinematics in a scratch copy of the data and logged in the world
frame, one batch per primitive kind (``ghosts``).

MuJoCo -> rerun: box -> Boxes3D; sphere, ellipsoid -> Ellipsoids3D; capsule -> Capsules3D (rerun's
starts at its origin and runs along +z, MuJoCo's is centred); cylinder -> Cylinders3D; plane -> a
thin box; mesh -> Mesh3D. Height fields and SDF geoms are not drawn. Quaternions: MuJoCo w-x-y-z,
rerun x-y-z-w.
"""

from __future__ import annotations

from collections import defaultdict

import mujoco
import numpy as np
import rerun as rr

from policy.recording import paths

VISIBLE_GROUPS = 3
"""Geom groups 0..2 are drawn: what MuJoCo's own viewer shows by default (3+ are collision-only
or hidden by convention)."""
PLANE_HALF = 1.0
"""Half-extent (m) drawn for an infinite plane."""
PLANE_THICKNESS = 0.001

_G = mujoco.mjtGeom
_KIND = {_G.mjGEOM_BOX: "box", _G.mjGEOM_PLANE: "box", _G.mjGEOM_SPHERE: "ellipsoid",
         _G.mjGEOM_ELLIPSOID: "ellipsoid", _G.mjGEOM_CAPSULE: "capsule", _G.mjGEOM_CYLINDER: "cylinder",
         _G.mjGEOM_MESH: "mesh"}


def _xyzw(wxyz: np.ndarray) -> np.ndarray:
    return np.asarray(wxyz)[..., [1, 2, 3, 0]]


def _rotate(wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors (G, 3) by quaternions (G, 4) w-x-y-z."""
    w, u = wxyz[:, :1], wxyz[:, 1:]
    t = 2 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def geom_rgba(model: mujoco.MjModel) -> np.ndarray:
    """(ngeom, 4) colours in [0, 1]: the material's where a geom has one, else the geom's own."""
    rgba = model.geom_rgba.copy()
    has_mat = model.geom_matid >= 0
    rgba[has_mat] = model.mat_rgba[model.geom_matid[has_mat]]
    return rgba


def visible_geoms(model: mujoco.MjModel) -> np.ndarray:
    """Indices of the geoms drawn (group < VISIBLE_GROUPS and a kind rerun can show)."""
    return np.array([g for g in range(model.ngeom)
                     if model.geom_group[g] < VISIBLE_GROUPS and int(model.geom_type[g]) in _KIND], int)


def primitives(model: mujoco.MjModel, geoms: np.ndarray, pos: np.ndarray, quat: np.ndarray,
               rgba: np.ndarray) -> dict[str, rr.AsComponents]:
    """Geoms ``geoms`` (G,) placed at ``pos`` (G, 3), ``quat`` (G, 4) w-x-y-z with colours ``rgba``
    (G, 4) in [0, 1] -> one rerun archetype per primitive kind present."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(geoms):
        by_kind[_KIND[int(model.geom_type[g])]].append(i)
    colours = np.clip(np.round(np.asarray(rgba) * 255), 0, 255).astype(np.uint8)
    size = model.geom_size[geoms]
    out: dict[str, rr.AsComponents] = {}
    for kind, idx in by_kind.items():
        i = np.array(idx)
        g, p, q, c, s = geoms[i], pos[i], quat[i], colours[i], size[i]
        if kind == "box":
            half = s.copy()
            plane = model.geom_type[g] == _G.mjGEOM_PLANE
            half[plane, :2] = np.where(half[plane, :2] > 0, half[plane, :2], PLANE_HALF)
            half[plane, 2] = PLANE_THICKNESS
            out[kind] = rr.Boxes3D(centers=p, half_sizes=half, quaternions=_xyzw(q), colors=c,
                                   fill_mode="solid")
        elif kind == "ellipsoid":
            sphere = model.geom_type[g] == _G.mjGEOM_SPHERE
            half = np.where(sphere[:, None], s[:, :1], s)
            out[kind] = rr.Ellipsoids3D(centers=p, half_sizes=half, quaternions=_xyzw(q), colors=c,
                                        fill_mode="solid")
        elif kind == "capsule":
            start = p - _rotate(q, np.stack([np.zeros(len(i)), np.zeros(len(i)), s[:, 1]], 1))
            out[kind] = rr.Capsules3D(lengths=2 * s[:, 1], radii=s[:, 0], translations=start,
                                      quaternions=_xyzw(q), colors=c)
        elif kind == "cylinder":
            out[kind] = rr.Cylinders3D(lengths=2 * s[:, 1], radii=s[:, 0], centers=p,
                                       quaternions=_xyzw(q), colors=c)
        else:
            out[kind] = _meshes(model, g, p, q, c)
    return out


def _meshes(model: mujoco.MjModel, geoms: np.ndarray, pos: np.ndarray, quat: np.ndarray,
            colours: np.ndarray) -> rr.Mesh3D:
    """Mesh geoms merged into one Mesh3D, vertices moved into the frame the poses are given in."""
    verts, faces, vcol, offset = [], [], [], 0
    for g, p, q, c in zip(geoms, pos, quat, colours, strict=True):
        m = model.geom_dataid[g]
        v0, nv = model.mesh_vertadr[m], model.mesh_vertnum[m]
        f0, nf = model.mesh_faceadr[m], model.mesh_facenum[m]
        v = model.mesh_vert[v0:v0 + nv].astype(np.float64)
        verts.append(_rotate(np.repeat(q[None], nv, 0), v) + p)
        faces.append(model.mesh_face[f0:f0 + nf] + offset)
        vcol.append(np.repeat(c[None], nv, 0))
        offset += nv
    return rr.Mesh3D(vertex_positions=np.concatenate(verts), triangle_indices=np.concatenate(faces),
                     vertex_colors=np.concatenate(vcol))


class SceneGeometry:
    """Which entity each body of a scene is logged under, its static geometry and its poses."""

    def __init__(self, model: mujoco.MjModel, robot_bodies: set[int]) -> None:
        self.model = model
        self.rgba = geom_rgba(model)
        shown = visible_geoms(model)
        self.geoms_of = {b: shown[model.geom_bodyid[shown] == b] for b in range(model.nbody)}
        self.bodies = [b for b in range(1, model.nbody) if len(self.geoms_of[b])]
        """Bodies with something to draw (posed every step)."""
        self.robot_bodies = robot_bodies
        mine = [self.geoms_of[b] for b in sorted(robot_bodies)]
        self.robot_geoms = np.concatenate(mine).astype(int) if mine else np.zeros(0, int)
        self.path = {b: f"{paths.ROBOT if b in robot_bodies else paths.OBJECTS}/{model.body(b).name}"
                     for b in self.bodies}

    def static(self) -> list[tuple[str, rr.AsComponents]]:
        """(entity, archetype) pairs: each body's geoms in its own frame, world geoms in the world's."""
        m = self.model
        out = []
        for b, base in [(0, paths.STATIC), *((b, self.path[b]) for b in self.bodies)]:
            g = self.geoms_of[b]
            if len(g):
                for kind, arch in primitives(m, g, m.geom_pos[g], m.geom_quat[g], self.rgba[g]).items():
                    out.append((f"{base}/{kind}", arch))
        return out

    def poses(self, data: mujoco.MjData) -> list[tuple[str, rr.Transform3D]]:
        """(entity, transform) of every drawn body in the current state (world frame)."""
        return [(self.path[b], rr.Transform3D(translation=data.xpos[b], quaternion=_xyzw(data.xquat[b])))
                for b in self.bodies]

    def ghosts(self, data: mujoco.MjData, set_pose, configs: np.ndarray,
               rgba: np.ndarray) -> dict[str, rr.AsComponents]:
        """The robot's geoms at each of ``configs`` (K, A) joint targets, in the world frame, one
        archetype per primitive kind; ``set_pose(q)`` writes one configuration into ``data``;
        ``rgba`` (K, 4) colours each ghost."""
        g = self.robot_geoms
        pos, quat, col = [], [], []
        q4 = np.empty(4)
        for q, c in zip(configs, rgba, strict=True):
            set_pose(q)
            mujoco.mj_kinematics(self.model, data)
            pos.append(data.geom_xpos[g].copy())
            rows = []
            for mat in data.geom_xmat[g]:
                mujoco.mju_mat2Quat(q4, mat)
                rows.append(q4.copy())
            quat.append(np.array(rows))
            col.append(np.repeat(np.asarray(c, float)[None], len(g), 0))
        return primitives(self.model, np.tile(g, len(configs)), np.concatenate(pos), np.concatenate(quat),
                          np.concatenate(col))
