"""The sample -> dream -> choose -> refine controller, the value planner and the planner registry."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from policy.checkpoint import load_policy
from policy.cli import main
from policy.controller import Controller, ControllerConfig, dream_inputs
from policy.dreamers import OracleDreamer
from policy.dreams import FIELDS, Dreams
from policy.evaluation import Displacement, evaluate
from policy.planners.base import Choice, PlanQuery
from policy.planners.registry import PLANNERS, make_planner
from policy.planners.value import ValuePlanner, ValuePlannerConfig
from sim import keys
from sim.env import ReverieEnv
from sim.language import SceneVocabulary


def _dreams(k: int, h: int = 4, progress=None, ee_z=None) -> Dreams:
    ee = np.zeros((1, k, h, 3)) + 0.1
    if ee_z is not None:
        ee[0, :, :, 2] = np.asarray(ee_z)[:, None]
    prog = np.zeros((1, k, h)) if progress is None else np.repeat(np.asarray(progress)[None, :, None], h, 2)
    return Dreams(ee, np.zeros((1, k, h, 1, 3)) + 0.02, np.zeros((1, k, h, 1)), np.zeros((1, k, h, 1)),
                  prog, np.zeros((1, k, h)))


def test_every_registered_planner_builds_and_chooses():
    obs = {keys.OBJECT_POSES: np.array([[0.5, 0, 0.02, 1, 0, 0, 0]]),
           keys.EE_POSE: np.array([0.5, 0, 0.3, 1, 0, 0, 0]), keys.GOAL: np.array([0.4, 0.1, 0.0])}
    q = PlanQuery(np.zeros((3, 4, 8)), _dreams(3, progress=[0.1, 0.6, 0.3]), "push the cube", obs,
                  task="push", scene=SceneVocabulary.for_task("push", "panda"))
    for name in PLANNERS:  # the language-model planners load the default model (SmolLM2, in process)
        choice = make_planner(name, **({"timeout_s": 60} if name.startswith("llm") else {})).choose(q)
        assert 0 <= choice.index < 3 and choice.scores.shape == (3,) and choice.reason
    with pytest.raises(ValueError, match="unknown planner"):
        make_planner("astrologer")


def test_value_planner_weighs_progress_collision_and_jerk():
    p = ValuePlanner()
    smooth = np.zeros((2, 6, 8))
    assert p.choose(PlanQuery(smooth, _dreams(2, 6, progress=[0.2, 0.7]))).index == 1
    # equal progress, but candidate 1 drives the tool into the table
    assert p.choose(PlanQuery(smooth, _dreams(2, 6, progress=[0.5, 0.5], ee_z=[0.05, -0.01]))).index == 0
    jerky = smooth.copy()
    jerky[0, ::2, :7] = 0.3
    assert p.choose(PlanQuery(jerky, _dreams(2, 6, progress=[0.5, 0.5]))).index == 1
    with pytest.raises(ValueError, match="must be >= 0"):
        make_planner("value", jerk=-1.0)


def _still(k_positions) -> Dreams:
    """One PickPlace dream per (tool, cube) pair of positions, held for 4 steps."""
    tool = np.array([t for t, _ in k_positions], dtype=float)[None, :, None].repeat(4, 2)
    cube = np.array([c for _, c in k_positions], dtype=float)[None, :, None, None].repeat(4, 2)
    held = (cube[..., 2] > 0.03).astype(float)
    return Dreams(tool, cube, held, np.zeros_like(held), np.zeros((1, len(k_positions), 4)),
                  np.zeros((1, len(k_positions), 4)))


def test_value_planner_can_score_each_draw_of_an_averaged_dream():
    """Candidate 0's grasp lands in one reading of the cube and misses in the other; candidate 1
    lifts the cube in both but carries it nowhere. The averaged dream shows candidate 0 half-lifted
    and half-carried, which the staged progress scores above candidate 1; scored draw by draw,
    candidate 0 is worth the mean of a carried cube and a missed one, below candidate 1."""
    cube0, lifted, carried = [0.5, 0.0, 0.02], [0.5, 0.0, 0.12], [0.5, 0.1, 0.12]
    draws = [_still([(carried, carried), (lifted, lifted)]), _still([(carried, cube0), (lifted, lifted)])]
    mean = Dreams.average(draws)
    assert mean.draws == tuple(draws) and Dreams.average(draws[:1]) is draws[0]
    np.testing.assert_allclose(mean.object_pos[0, 0, -1, 0], [0.5, 0.05, 0.07])
    obs = {keys.OBJECT_POSES: np.array([[*cube0, 1, 0, 0, 0]]), keys.GOAL: np.array([0.5, 0.2, 0.0])}
    query = PlanQuery(np.zeros((2, 4, 8)), mean, None, obs, task="pick_place", robot="panda", start=obs)
    expected = ValuePlanner()  # the default scores each draw
    each = [expected.score(dataclasses.replace(query, dreams=d)) for d in draws]
    np.testing.assert_allclose(expected.score(query), np.mean(each, axis=0))
    assert expected.choose(query).index == 1
    assert ValuePlanner(ValuePlannerConfig(score_draws=False)).choose(query).index == 0
    # an audit's mixed dream replaces its part in every draw too
    true_cubes = mean.object_pos[:, ::-1]
    mixed = mean.with_parts(object_pos=true_cubes)
    assert len(mixed.draws) == 2 and all(d.object_pos is true_cubes for d in (mixed, *mixed.draws))
    with pytest.raises(ValueError, match="draws are single dreams of the same candidates"):
        Dreams(*(getattr(mean, n) for n in FIELDS), draws=(_still([(cube0, cube0)]),))


def test_value_planner_risk_weight_prefers_the_candidate_its_dreams_agree_on():
    """Candidate 0 carries the cube towards the pad in one model's dream and only lifts it in the
    other's; candidate 1 lifts it in both. Candidate 0's expected score is higher; with enough
    weight on the spread, the candidate both dreams agree on wins."""
    cube0, lifted, carried = [0.5, 0.0, 0.02], [0.5, 0.0, 0.12], [0.5, 0.1, 0.12]
    draws = [_still([(carried, carried), (lifted, lifted)]), _still([(lifted, lifted), (lifted, lifted)])]
    obs = {keys.OBJECT_POSES: np.array([[*cube0, 1, 0, 0, 0]]), keys.GOAL: np.array([0.5, 0.2, 0.0])}
    query = PlanQuery(np.zeros((2, 4, 8)), Dreams.average(draws), None, obs, task="pick_place",
                      robot="panda", start=obs)
    terms = ValuePlanner().terms(query)
    assert terms["spread"][0] > 0 and terms["spread"][1] == 0
    assert ValuePlanner().choose(query).index == 0
    assert ValuePlanner(ValuePlannerConfig(risk=2.0)).choose(query).index == 1
    single = dataclasses.replace(query, dreams=draws[0])
    assert not ValuePlanner(ValuePlannerConfig(risk=2.0)).terms(single)["spread"].any()
    with pytest.raises(ValueError, match="risk must be >= 0"):
        ValuePlannerConfig(risk=-1.0)


def test_dream_inputs_drop_the_past_and_hold_the_last_target():
    traj = np.arange(8 * 2, dtype=float).reshape(8, 2)
    out = dream_inputs(traj, n_obs_steps=2, horizon=8)
    np.testing.assert_array_equal(out[:7], traj[1:])
    np.testing.assert_array_equal(out[7], traj[7])


@pytest.fixture(scope="module")
def policy(push_run):
    return load_policy(push_run)


def test_with_one_candidate_the_controller_is_the_plain_policy(policy):
    plain = evaluate(policy, 2, seed=7, batch=2, progress=False, generator_seed=3)
    ctrl = Controller(policy, OracleDreamer(8), make_planner("value"), ControllerConfig(k=1))
    chosen = evaluate(policy, 2, seed=7, batch=2, progress=False, generator_seed=3, controller=ctrl)
    assert [o["steps"] for o in plain["per_seed"]] == [o["steps"] for o in chosen["per_seed"]]
    assert plain["joint_step_rad"] == chosen["joint_step_rad"]


def test_a_cycle_records_its_decision_and_refinement_keeps_the_prefix(policy):
    env = ReverieEnv("push", "panda")
    obs, _ = env.reset(seed=1)
    ctrl = Controller(policy, OracleDreamer(8), make_planner("value"),
                      ControllerConfig(k=5, refine=4, refine_candidates=3, refine_strength=0.5))
    ctrl.reset([env])
    action = ctrl.select_action(obs, generator=torch.Generator().manual_seed(0))
    assert action.shape == (8,)
    (d,) = ctrl.decisions
    assert d.candidates.shape == (5, 8, 8) and d.scores.shape == (5,)
    assert d.dreams["ee_pos"].shape == (5, 8, 3)
    assert d.planner == "value" and d.dreamer == "oracle" and "candidate" in d.reason
    (r,) = d.refinements
    assert r.variants.shape == (3, 8, 8) and r.last_x == 4
    assert np.abs(r.variants[:, :4] - r.before[:4]).max() <= 1e-6  # the frozen prefix is exact
    assert r.denoising_steps == 2  # half of the policy's 4 steps
    expected = r.variants[int(np.argmax(r.scores))] if r.kept else r.before
    np.testing.assert_allclose(d.chosen, expected)
    np.testing.assert_allclose(action, d.chosen[1])  # step To-1 is executed first
    assert set(d.timings_ms) == {"sample", "dream", "choose", "refine", "total"}


def test_refining_steps_that_already_execute_is_refused(policy):
    with pytest.raises(ValueError, match="already executing"):
        Controller(policy, OracleDreamer(8), make_planner("value"), ControllerConfig(refine=7))


def test_the_audit_measures_dream_fidelity_against_the_simulator(policy):
    # the oracle audited against itself: zero error, full agreement
    ctrl = Controller(policy, OracleDreamer(8), make_planner("value"), ControllerConfig(k=3),
                      audit=OracleDreamer(8))
    r = evaluate(policy, 2, seed=11, batch=2, progress=False, controller=ctrl)
    f = r["controller"]["fidelity"]
    assert f["ee_err_cm"]["4"] == pytest.approx(0, abs=1e-9) and f["top1_agreement"] == 1.0
    # what the planner ranks by, and its scores, agree with the simulator's wherever it tells apart
    assert f["spearman_planned_decisions"] > 0 and f["spearman_planned_progress_mean"] == pytest.approx(1.0)
    assert f["spearman_scores_mean"] == pytest.approx(1.0)
    assert f["spearman_planned_clear_decisions"] <= f["spearman_planned_decisions"]
    assert f["spearman_planned_progress_clear"] in (None, pytest.approx(1.0))
    assert r["controller"]["cycles"] > 0 and r["controller"]["dreamer"] == "oracle"
    # exact dreams choose the best candidate, with any part of them taken from the simulator
    assert f["gain_share"] == pytest.approx({"dreamed": 1.0, "true_objects": 1.0, "true_tool": 1.0})


def test_every_query_of_an_episode_carries_its_first_observation(policy):
    seen: list[PlanQuery] = []

    class Recording(ValuePlanner):
        def choose(self, q: PlanQuery) -> Choice:
            seen.append(q)
            return super().choose(q)

    ctrl = Controller(policy, OracleDreamer(8), Recording(), ControllerConfig(k=2))
    evaluate(policy, 1, seed=11, batch=1, progress=False, controller=ctrl)
    assert len(seen) > 1 and all(q.start is seen[0].observation for q in seen)
    assert seen[-1].observation is not seen[0].observation


def test_a_ranking_that_tells_no_candidates_apart_counts_zero_and_a_flat_truth_is_skipped():
    from policy.decision_stats import DecisionStats

    rhos: list[float] = []
    DecisionStats._add_rho(rhos, np.zeros(3), np.array([0.1, 0.5, 0.9]))
    DecisionStats._add_rho(rhos, np.array([0.1, 0.5, 0.9]), np.full(3, 0.4))
    DecisionStats._add_rho(rhos, np.array([3.0, 2.0, 1.0]), np.array([0.1, 0.5, 0.9]))
    assert rhos == [0.0, pytest.approx(-1.0)]


def test_true_values_within_the_tie_tolerance_rank_as_ties():
    """A cube left at rest moves by the solver's jitter alone between replays: that is no order."""
    from policy.decision_stats import TRUE_TIE, DecisionStats, tied

    values = np.array([0.3, 0.1, 0.1 + 1e-9, 0.5, 0.3 + 2 * TRUE_TIE])
    np.testing.assert_array_equal(tied(values), [1, 0, 0, 3, 2])
    rhos: list[float] = []
    DecisionStats._add_rho(rhos, np.array([0.9, 0.1, 0.5]), 0.46 + np.array([1e-9, 3e-9, 2e-9]))  # skipped
    assert rhos == []
    # two candidates that lift (0.6) and two that do not, each pair apart only by jitter: any
    # ranking that puts the lifters first is perfect
    true = np.array([0.6, 0.6 + 2e-9, 0.2 + 1e-9, 0.2])
    DecisionStats._add_rho(rhos, np.array([0.7, 0.8, 0.2, 0.1]), true)
    DecisionStats._add_rho(rhos, true[::-1], true)  # and the truth's own order, reversed by jitter only
    DecisionStats._add_rho(rhos, true, true)
    assert rhos == [pytest.approx(np.corrcoef([3.5, 3.5, 1.5, 1.5], [3, 4, 2, 1])[0, 1]),
                    pytest.approx(-1.0), pytest.approx(1.0)]


def test_displacement_moves_the_cube_mid_episode():
    env = ReverieEnv("push", "panda")
    obs, _ = env.reset(seed=0)
    d = Displacement(step=5, cm=4.0)
    moved = env.displace(d.offset(0))
    shift = np.linalg.norm(moved["object_poses"][0, :2] - obs["object_poses"][0, :2])
    assert shift == pytest.approx(0.04, abs=1e-6) or shift < 0.04  # clipped at the workspace edge
    with pytest.raises(ValueError, match="no cube"):
        ReverieEnv("reach", "panda").displace(np.zeros(2))


def test_eval_cli_runs_the_controller_and_names_missing_pieces(push_run, tmp_path, capsys):
    out = tmp_path / "e.json"
    assert main(["eval", f"checkpoint={push_run}", "episodes=1", "batch=1", "planner=value", "dreamer=oracle",
                 "k=2", "refine=2", "value.score_draws=false", f"out={out}"]) == 0
    r = json.loads(out.read_text())
    assert r["controller"]["k"] == 2 and r["controller"]["refinement"]["count"] > 0
    assert r["value"]["score_draws"] is False  # the planner's settings are in the record
    capsys.readouterr()
    assert main(["eval", f"checkpoint={push_run}", "planner=value"]) == 2
    assert "needs world_model=RUN" in capsys.readouterr().err
    assert main(["eval", f"checkpoint={push_run}", "planner=psychic"]) == 2
    assert "unknown planner" in capsys.readouterr().err


def test_bench_planner_times_each_planner_and_eval_names_bad_settings(push_run, push_wm, tmp_path, capsys):
    out = tmp_path / "planner.json"
    assert main(["bench", "planner", f"checkpoint={push_run}", f"world_model={push_wm}", "k=3",
                 "repeats=2", "planners=[value,llm_value]", f"out={out}"]) == 0
    r = json.loads(out.read_text())
    assert [x["planner"] for x in r["results"]] == ["value", "llm_value"]
    assert all(x["p50_ms"] > 0 for x in r["results"]) and r["results"][1]["stats"]["decisions"] == 2
    assert main(["eval", f"checkpoint={push_run}", "planner=llm", "dreamer=oracle",
                 "llm.backend=carrier_pigeon"]) == 2
    assert "unknown llm backend" in capsys.readouterr().err
    assert main(["eval", f"checkpoint={push_run}", "phrasing=shouted"]) == 2
    assert "phrasing must be" in capsys.readouterr().err


def test_bench_cycle_times_whole_cycles_against_the_chunk(push_run, push_wm, tmp_path):
    out = tmp_path / "cycle.json"
    assert main(["bench", "cycle", f"checkpoint={push_run}", f"world_model={push_wm}", "k=[1,3]",
                 "repeats=2", "refine=2", f"out={out}"]) == 0
    r = json.loads(out.read_text())
    assert [x["k"] for x in r["results"]] == [1, 3] and r["chunk_execution_ms"] == pytest.approx(400)
    assert all(0 < x["p50_ms"] <= x["p95_ms"] and x["parts_p50_ms"]["dream"] > 0 for x in r["results"])
    assert main(["bench", "cycle", f"checkpoint={push_run}", "dreamer=physics", "k=[2]", "repeats=2",
                 f"out={out}"]) == 0
    r = json.loads(out.read_text())
    assert r["dreamer"] == "physics" and r["world_model"] is None
    assert r["results"][0]["parts_p50_ms"]["dream"] > 0
    assert r["compile"] is None
    assert main(["bench", "cycle", f"checkpoint={push_run}", "compile=true", "compile_mode=fast"]) == 2


def test_bench_cycle_compiles_the_denoiser_in_the_mode_asked(push_run, push_wm, tmp_path, monkeypatch):
    from policy.diffusion.policy import DiffusionPolicy

    modes = []
    monkeypatch.setattr(DiffusionPolicy, "compile_denoiser", lambda self, mode: modes.append(mode))
    out = tmp_path / "cycle.json"
    assert main(["bench", "cycle", f"checkpoint={push_run}", f"world_model={push_wm}", "k=[2]", "repeats=1",
                 "compile=true", "compile_mode=reduce-overhead", f"out={out}"]) == 0
    assert modes == ["reduce-overhead"] and json.loads(out.read_text())["compile"] == "reduce-overhead"


def test_learned_controller_drives_episodes(policy, push_wm):
    from policy.checkpoint import load_world_model
    from policy.dreamers import LearnedDreamer

    ctrl = Controller(policy, LearnedDreamer(load_world_model(push_wm)), make_planner("value"),
                      ControllerConfig(k=3), audit=OracleDreamer(8))
    r = evaluate(policy, 2, seed=5, batch=2, progress=False, controller=ctrl)
    assert r["controller"]["dreamer"] == "learned" and r["controller"]["fidelity"]["decisions"] > 0
    # no choice can gain more than the best candidate does
    shares = r["controller"]["fidelity"]["gain_share"]
    assert set(shares) == {"dreamed", "true_objects", "true_tool"} and max(shares.values()) <= 1 + 1e-9


def test_the_oracle_skips_rows_whose_episodes_ended(policy):
    envs = [ReverieEnv("push", "panda") for _ in range(2)]
    obs = [e.reset(seed=i)[0] for i, e in enumerate(envs)]
    ctrl = Controller(policy, OracleDreamer(8), make_planner("value"), ControllerConfig(k=2),
                      audit=OracleDreamer(8))
    ctrl.reset(envs)
    ctrl.select_action(obs, active=np.array([True, False]))
    live, ended = ctrl.decisions
    assert live.active and not ended.active
    assert np.abs(live.dreams["ee_pos"]).sum() > 0 and np.abs(ended.dreams["ee_pos"]).sum() == 0
    assert live.audit is not None and ended.audit is None


class _AsksForMore:
    """Asks for 6 fresh candidates at its first decision, then takes the first candidate."""

    name = "asks"

    def __init__(self):
        self.calls = 0

    def score(self, q):
        return np.zeros(len(q.candidates))

    def choose(self, q):
        self.calls += 1
        return Choice(0, self.score(q), "first", resample=6 if self.calls == 1 else 0)


def test_a_planner_can_ask_for_fresh_candidates(policy):
    env = ReverieEnv("push", "panda")
    obs, _ = env.reset(seed=2)
    ctrl = Controller(policy, OracleDreamer(8), _AsksForMore(), ControllerConfig(k=3))
    ctrl.reset([env])
    ctrl.select_action(obs, generator=torch.Generator().manual_seed(0))
    (d,) = ctrl.decisions
    assert d.resampled == 6 and d.candidates.shape[0] == 6 and d.dreams["progress"].shape[0] == 6
    assert d.reason.startswith("resampled 6") and ctrl.planner.calls == 2


def test_a_planner_with_memory_writes_a_lesson_per_episode(policy, tmp_path):
    from policy.planners.llm.config import LLMConfig
    from policy.planners.llm.planner import LLMValuePlanner
    from tests.policy.test_llm_planner import Scripted

    store = tmp_path / "lessons.jsonl"
    planner = LLMValuePlanner(LLMConfig(memory=str(store)), Scripted(logprobs=lambda p, o: np.zeros(len(o))))
    ctrl = Controller(policy, OracleDreamer(8), planner, ControllerConfig(k=2))
    evaluate(policy, 2, seed=5, batch=2, progress=False, controller=ctrl)
    lessons = [json.loads(x) for x in store.read_text().splitlines()]
    assert [x["episode"] for x in sorted(lessons, key=lambda x: x["episode"])] == [5, 6]
    assert all(x["task"] == "push" and x["why"] for x in lessons)


def test_the_policy_sees_the_planners_restatement_and_the_planner_the_original(policy):
    told = []

    class Restates(ValuePlanner):
        def restate(self, instruction, vocab, dreamer_reads=None):
            told.append(dreamer_reads)
            if instruction is None or dreamer_reads:
                return None
            return f"put the {vocab.objects[0]} on the {vocab.targets[0]}"

    ctrl = Controller(policy, OracleDreamer(8), Restates(), ControllerConfig(k=2))
    original = {keys.INSTRUCTION: "shove the scarlet thing over there", "other": 1}
    (seen,) = ctrl._restated([original])
    assert seen[keys.INSTRUCTION] == "put the red cube on the green pad" and seen["other"] == 1
    assert original[keys.INSTRUCTION] == "shove the scarlet thing over there"  # not rewritten in place
    assert ctrl._restated([{"other": 1}]) == [{"other": 1}]

    class Knows(OracleDreamer):  # a dreamer trained on every word it is given
        def reads(self, instruction):
            return True

    ctrl = Controller(policy, Knows(8), Restates(), ControllerConfig(k=2))
    assert ctrl._restated([original]) == [original] and told[-1] is True
    assert ctrl._query(np.zeros((2, 8, 8)), None, original, 0).dreamer_reads is True
