"""Rerun recordings, read back with rerun's own reader: the scene from MJCF, the dreams, the choice,
the reasoning, the dream error; dataset replay; the plots next to `reverie eval`'s JSON."""

from __future__ import annotations

import json

import mujoco
import numpy as np
import pytest
from PIL import Image

from policy.cli import main
from policy.recording import paths
from policy.recording.geometry import SceneGeometry, primitives, visible_geoms
from policy.recording.reader import has_blueprint, read_entities
from policy.recording.recorder import CHOSEN_RGBA, RerunTarget
from robots.registry import ROBOTS
from sim.data.reader import DemoDataset
from sim.env import ReverieEnv

_COUNT = {"Boxes3D": "half_sizes", "Ellipsoids3D": "half_sizes", "Capsules3D": "lengths",
          "Cylinders3D": "lengths"}


def _instances(arch) -> int:
    """How many primitives one rerun archetype holds."""
    name = type(arch).__name__
    return len(getattr(arch, _COUNT[name]).as_arrow_array())


@pytest.mark.parametrize("robot", list(ROBOTS))
def test_every_visible_geom_of_every_robot_is_drawn_and_posed_per_body(robot):
    env = ReverieEnv("sort", robot)
    env.reset(seed=0)
    m, d = env.scene.model, env.scene.data
    geo = SceneGeometry(m, env.scene.robot_bodies)
    drawn = sum(_instances(a) for _, a in geo.static())
    assert drawn == len(visible_geoms(m)) > 0
    assert {m.body(b).name for b in env.scene.robot_bodies if len(geo.geoms_of[b])} == \
        {p.split("/")[-1] for p in geo.path.values() if p.startswith(paths.ROBOT)}
    for path, tf in geo.poses(d):
        body = m.body(path.split("/")[-1]).id
        np.testing.assert_allclose(tf.translation.as_arrow_array().to_pylist()[0], d.xpos[body], atol=1e-6)


def test_a_capsule_is_moved_from_mujocos_centre_to_rerun_s_end_cap():
    m = mujoco.MjModel.from_xml_string("""<mujoco><worldbody><body><geom type="capsule" size="0.1 0.3"
        pos="1 2 3" euler="90 0 0"/></body></worldbody></mujoco>""")
    arch = primitives(m, np.array([0]), m.geom_pos, m.geom_quat, np.ones((1, 4)))["capsule"]
    start = np.array(arch.translations.as_arrow_array().to_pylist()[0])
    assert arch.lengths.as_arrow_array().to_pylist() == pytest.approx([0.6])
    # rotated 90 degrees about x, the capsule's axis (+z) points along -y: it starts 0.3 up the +y side
    np.testing.assert_allclose(start, [1, 2.3, 3], atol=1e-6)


def test_mesh_geoms_become_one_mesh_in_the_body_frame():
    m = mujoco.MjModel.from_xml_string("""<mujoco><asset><mesh name="tet"
        vertex="0 0 0  1 0 0  0 1 0  0 0 1"/></asset><worldbody><body>
        <geom type="mesh" mesh="tet" pos="0 0 1"/></body></worldbody></mujoco>""")
    mesh = primitives(m, np.array([0]), m.geom_pos, m.geom_quat, np.ones((1, 4)))["mesh"]
    verts = np.array(mesh.vertex_positions.as_arrow_array().to_pylist())
    assert verts.shape == (4, 3) and len(mesh.triangle_indices.as_arrow_array()) == 4


def test_targets_are_named_and_checked():
    assert RerunTarget.parse("a/b.rrd") == RerunTarget("file", "a/b.rrd")
    assert RerunTarget.parse("spawn").kind == "spawn"
    assert RerunTarget.parse("rerun+http://127.0.0.1:9876/proxy").kind == "connect"
    with pytest.raises(ValueError, match="not a recording target"):
        RerunTarget.parse("episodes.txt")


def _strips(df, col="LineStrips3D:strips"):
    return [np.array(s) for s in df[col]]


def test_eval_records_scene_dreams_choice_reason_and_dream_error(push_run, tmp_path, capsys):
    rrd, out = tmp_path / "eval.rrd", tmp_path / "evals" / "value.json"
    assert main(["eval", f"checkpoint={push_run}", "episodes=2", "batch=2", "planner=value", "dreamer=oracle",
                 "k=3", "refine=2", f"rerun={rrd}", "rerun_episodes=1", "rerun_images=true",
                 f"out={out}"]) == 0
    assert f"rerun {rrd}" in capsys.readouterr().err
    result = json.loads(out.read_text())
    seed, steps = result["seed"], result["per_seed"][0]["steps"]
    e = read_entities(rrd)
    root = paths.episode(seed)
    assert has_blueprint(rrd)
    assert not any(k.startswith(paths.episode(seed + 1)) for k in e)  # only the episode asked for

    # the scene: every robot body posed at every step, starting where the environment resets
    env = ReverieEnv("push", "panda")
    env.reset(seed=seed)
    for b in env.scene.robot_bodies | {env.scene.model.body("cube").id}:
        name = env.scene.model.body(b).name
        group = paths.ROBOT if b in env.scene.robot_bodies else paths.OBJECTS
        if f"{root}/{group}/{name}" not in e:
            continue  # a body with nothing to draw
        df = e[f"{root}/{group}/{name}"]
        assert list(df[paths.STEP]) == list(range(steps + 1))
        np.testing.assert_allclose(df["Transform3D:translation"][0][0], env.scene.data.xpos[b], atol=1e-5)
    assert len(e[f"{root}/{paths.CAMERA}"]) == steps + 1
    assert len(_strips(e[f"{root}/{paths.EXECUTED}"])[-1][0]) == steps + 1

    # every decision: K dreamed paths, exactly one highlighted, the same one the text and scores name
    paths_df, scores = e[f"{root}/{paths.EE_PATHS}"], e[f"{root}/{paths.SCORES}"]
    texts = e[f"{root}/{paths.REASON}"]
    chosen = e[f"{root}/{paths.CHOSEN}"]
    assert len(paths_df) == len(scores) == len(chosen) >= steps // 4
    choices = [t for t in texts["TextLog:text"] if "chose candidate" in t[0]]
    assert len(choices) == len(paths_df)
    ghosts = sum(sum(len(v) for v in e[f"{root}/{paths.GHOSTS}/{kind}"][col])
                 for kind, col in (("box", "Boxes3D:half_sizes"), ("capsule", "Capsules3D:lengths"),
                                   ("cylinder", "Cylinders3D:lengths")))
    robot_geoms = len(SceneGeometry(env.scene.model, env.scene.robot_bodies).robot_geoms)
    assert ghosts == len(paths_df) * 3 * robot_geoms
    highlight = int.from_bytes(bytes(np.round(CHOSEN_RGBA * 255).astype(np.uint8)), "big")
    for strips, colours, values, text in zip(_strips(paths_df), paths_df["LineStrips3D:colors"],
                                             scores["BarChart:values"], choices, strict=True):
        assert strips.shape[0] == 3
        lit = [i for i, c in enumerate(colours) if c == highlight]
        vals = values[0]["buffer"]
        assert len(lit) == 1 and len(vals) == 3
        assert f"chose candidate {lit[0]} of 3" in text[0] and lit[0] == int(np.argmax(vals))
    assert f"{root}/{paths.REFINE_BEFORE}" in e
    assert any("refined the last 2" in t[0] for t in texts["TextLog:text"])

    # the oracle dreams by replaying the simulator: its executed dream matches reality exactly
    err = np.array([v[0] for v in e[f"{root}/{paths.DREAM_ERROR_EE}"]["Scalars:scalars"]])
    assert len(err) >= steps - 1 and err.max() < 1e-3
    assert max(result["controller"]["executed_dream_error"]["ee_cm"]) < 1e-3

    # plots next to the JSON
    for png in ("success_per_planner.png", "value_dream_error.png"):
        with Image.open(out.parent / png) as im:
            assert im.size[0] > 300 and im.size[1] > 200


def test_the_learned_dreamer_s_error_is_measured_against_what_happened(push_run, push_wm, tmp_path):
    from policy.checkpoint import load_policy, load_world_model
    from policy.controller import Controller, ControllerConfig
    from policy.dreamers import LearnedDreamer
    from policy.evaluation import evaluate
    from policy.planners.registry import make_planner
    from policy.recording.recorder import Recorder

    policy = load_policy(push_run)
    ctrl = Controller(policy, LearnedDreamer(load_world_model(push_wm)), make_planner("value"),
                      ControllerConfig(k=2))
    with Recorder(str(tmp_path / "l.rrd"), [7]) as rec:
        r = evaluate(policy, 1, seed=7, batch=1, controller=ctrl, recorder=rec, progress=False)
    err = r["controller"]["executed_dream_error"]
    assert err["steps"][0] == 1 and min(err["ee_cm"]) > 0.01  # an untrained model is wrong, and it shows
    logged = read_entities(tmp_path / "l.rrd")[f"{paths.episode(7)}/{paths.DREAM_ERROR_OBJECT}"]
    assert len(logged) == sum(err["count"])


def test_success_plot_gathers_every_evaluation_in_the_folder(tmp_path):
    from policy.plots import label, success_plot

    plain = {"task": "push", "episodes": 10, "success_rate": 0.4, "ci95": [0.17, 0.69]}
    value = {**plain, "success_rate": 0.6, "controller": {"planner": "value", "k": 16, "dreamer": "learned"}}
    for name, r in (("a", plain), ("b", value)):
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    (tmp_path / "other.json").write_text("{\"not\": \"an evaluation\"}")
    assert label(plain) == "plain policy" and label(value) == "value K=16 learned"
    with Image.open(success_plot(tmp_path)) as im:
        assert im.size[0] > 300
    (tmp_path / "empty").mkdir()
    assert success_plot(tmp_path / "empty") is None


def test_viz_replays_a_dataset_with_its_recorded_state(push_data, tmp_path, capsys):
    rrd = tmp_path / "data.rrd"
    assert main(["viz", f"data={push_data}", "episodes=[1]", f"rerun={rrd}"]) == 0
    ds = DemoDataset(push_data)
    ep = ds.episode(1)
    e = read_entities(rrd)
    root = paths.episode(1)
    hand = e[f"{root}/{paths.ROBOT}/panda_hand"]
    assert len(hand) == len(ep["observation.state"])
    env = ReverieEnv("push", "panda")
    t = len(hand) // 2
    env.scene.set_robot(ep["observation.state"][t, :-1], ep["observation.state"][t, -1])
    mujoco.mj_kinematics(env.scene.model, env.scene.data)
    np.testing.assert_allclose(hand["Transform3D:translation"][t][0],
                               env.scene.data.xpos[env.scene.model.body("panda_hand").id], atol=1e-5)
    cube = e[f"{root}/{paths.OBJECTS}/cube"]
    np.testing.assert_allclose(cube["Transform3D:translation"][t][0], ep["observation.object_poses"][t, :3],
                               atol=1e-5)
    target = e[f"{root}/{paths.JOINTS}/panda_joint2/target"]["Scalars:scalars"]
    np.testing.assert_allclose([v[0] for v in target], ep["action"][:, 1], atol=1e-6)
    capsys.readouterr()
    assert main(["viz", f"data={push_data}", "episodes=[99]", f"rerun={rrd}"]) == 2
    assert "not in the dataset" in capsys.readouterr().err
    assert main(["viz", f"data={push_data}", "rerun=replay.txt"]) == 2
    assert "not a recording target" in capsys.readouterr().err


def test_bench_recording_times_the_cycle_with_recording_off_and_on(push_run, push_wm, tmp_path):
    out = tmp_path / "rec.json"
    assert main(["bench", "recording", f"checkpoint={push_run}", f"world_model={push_wm}", "k=2",
                 "repeats=3", f"out={out}"]) == 0
    r = json.loads(out.read_text())
    for part in ("decision", "chunk"):
        assert r[part]["off_p50_ms"] > 0 and r[part]["on_p50_ms"] > 0
        assert r[part]["on_over_off"] == pytest.approx(r[part]["on_p50_ms"] / r[part]["off_p50_ms"])
    assert r["rrd_bytes_per_chunk"] > 1000


def test_eval_streams_to_a_running_viewer(push_run, tmp_path):
    """The live option: rerun's own gRPC proxy (what a viewer listens on) receives the recording."""
    import socket

    import rerun as rr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = rr.RecordingStream("reverie-test-viewer")
    url = proxy.serve_grpc(grpc_port=port)
    assert RerunTarget.parse(url).kind == "connect"
    out = tmp_path / "live.json"
    assert main(["eval", f"checkpoint={push_run}", "episodes=1", "batch=1", "planner=value", "dreamer=oracle",
                 "k=2", f"rerun={url}", "rerun_episodes=1", f"out={out}"]) == 0
    assert json.loads(out.read_text())["rerun"]["target"] == url
    proxy.disconnect()
