"""The language-model planners: describing dreams, the tool-call protocol, fallbacks, grounding
and memory, with a scripted backend; then the real SmolLM2 in process and behind a real
llama.cpp server on loopback."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from policy.dreams import Dreams
from policy.planners.base import PlanQuery
from policy.planners.llm.backends import BackendError, BackendTimeout
from policy.planners.llm.config import LLMConfig
from policy.planners.llm.describe import group, outcomes
from policy.planners.llm.memory import Lesson, LessonStore
from policy.planners.llm.planner import LLMPlanner, LLMValuePlanner
from policy.planners.llm.protocol import AnswerError, messages, parse_tool_call, tool_schema
from sim import keys
from sim.language import SceneVocabulary

SORT = SceneVocabulary.for_task("sort", "panda")
CUBES = np.array([[0.45, -0.1, 0.02], [0.5, 0.0, 0.02], [0.55, 0.1, 0.02]])  # red, green, blue
PADS = np.array([0.4, 0.15, 0.0, 0.6, -0.15, 0.0])  # blue pad, yellow pad
TOOL = np.array([0.5, 0.0, 0.3])


def _observation(instruction: str = "put the red cube on the yellow pad") -> dict:
    poses = np.concatenate([CUBES, np.tile([1.0, 0, 0, 0], (3, 1))], axis=1)
    return {keys.OBJECT_POSES: poses, keys.EE_POSE: np.append(TOOL, [1.0, 0, 0, 0]), keys.GOAL: PADS,
            keys.INSTRUCTION: instruction}


def _sort_dreams(h: int = 6) -> Dreams:
    """Candidate 0 carries the red cube to the yellow pad; 1 carries it to the blue pad;
    2 reaches the green cube; 3 pushes the blue cube; 4 carries red to yellow, like 0."""
    k = 5
    ee = np.tile(TOOL, (1, k, h, 1)).astype(float)
    obj = np.tile(CUBES, (1, k, h, 1, 1)).astype(float)
    hold = np.zeros((1, k, h, 3))
    touch = np.zeros((1, k, h, 3))
    ramp = np.linspace(0, 1, h)[:, None]
    for j, pad in ((0, PADS[3:]), (1, PADS[:3]), (4, PADS[3:])):
        lift = np.array([0, 0, 0.05])
        path = CUBES[0] + ramp * (pad + lift / 2.5 - CUBES[0]) * 0.7
        obj[0, j, :, 0] = path + lift
        hold[0, j, :, 0] = 1.0
        ee[0, j] = path + lift
    ee[0, 2] = TOOL + ramp * (CUBES[1] - TOOL)
    touch[0, 2, -2:, 1] = 1.0
    obj[0, 3, :, 2] = CUBES[2] + ramp * [0.05, 0, 0]
    progress = np.tile(np.array([0.5, 0.6, 0.1, 0.2, 0.45])[:, None], (1, 1, h))
    return Dreams(ee, obj, hold, touch, progress, np.zeros((1, k, h)))


def _query(instruction: str = "put the red cube on the yellow pad") -> PlanQuery:
    return PlanQuery(np.zeros((5, 6, 8)), _sort_dreams(), instruction, _observation(instruction),
                     task="sort", scene=SORT)


class Scripted:
    """A backend that answers from a script (and can be made slow, broken or talkative)."""

    name = "scripted"

    def __init__(self, answers=(), logprobs=None, delay: float = 0.0) -> None:
        self.answers, self.logprobs, self.delay = list(answers), logprobs, delay
        self.calls: list[list[dict]] = []

    def chat(self, messages, schema, timeout_s):
        self.calls.append(messages)
        if self.delay > timeout_s:
            raise BackendTimeout(f"scripted took longer than {timeout_s:.2f} s")
        answer = self.answers.pop(0) if self.answers else "{}"
        if isinstance(answer, Exception):
            raise answer
        return answer

    def option_logprobs(self, prompt, options):
        return None if self.logprobs is None else np.asarray(self.logprobs(prompt, options), float)


def _call(option: int, tool: str = "choose", last_x: int = 0, k: int = 0) -> str:
    return json.dumps({"tool": tool, "option": option, "last_x": last_x, "k": k, "reason": "because"})


def test_dreams_are_described_as_what_they_do_to_which_object():
    found = outcomes(_sort_dreams(), _observation(), SORT)
    texts = [o.text(SORT) for o in found]
    assert texts[0] == "carries the red cube towards the yellow pad"
    assert texts[1] == "carries the red cube towards the blue pad"
    assert texts[2] == "reaches the green cube"
    assert texts[3] == "pushes the blue cube"
    assert found[4] == found[0]
    options = group(found, np.array([0.5, 0.6, 0.1, 0.2, 0.9]))
    assert len(options) == 4
    assert options[0].members == [0, 4] and options[0].best == 4  # best-valued member, best option first


def test_the_tool_call_is_checked_field_by_field():
    assert parse_tool_call(_call(1), 3).option == 1
    call = parse_tool_call(_call(2, "refine", last_x=8), 3)
    assert (call.tool, call.last_x) == ("refine", 8)
    assert parse_tool_call(_call(0, "resample", k=8), 3).k == 8
    for bad, why in (("sure, option 2!", "not JSON"), (_call(3), "option must be"),
                     (_call(0, "teleport"), "tool must be"), (_call(0, "refine", last_x=3), "refine needs"),
                     ("[1, 2]", "JSON object")):
        with pytest.raises(AnswerError, match=why):
            parse_tool_call(bad, 3)
    schema = tool_schema(3)
    assert all(s["properties"]["option"]["enum"] == [0, 1, 2] for s in schema["anyOf"])


def test_llm_planner_executes_the_chosen_option_and_reuses_identical_answers():
    backend = Scripted([_call(1)])
    planner = LLMPlanner(LLMConfig(), backend)
    first = planner.choose(_query())
    # options by best value: red->yellow (0.5), red->blue (0.6) ... option 1 is the second best
    _, options = planner.options(_query())
    assert first.index == options[1].best and "llm choose option 1" in first.reason
    prompt = backend.calls[0][1]["content"]
    assert "Instruction: put the red cube on the yellow pad" in prompt and "0: the robot" in prompt
    again = planner.choose(_query())
    assert again.index == first.index and len(backend.calls) == 1
    assert planner.stats.summary()["cached"] == 1


def test_llm_planner_passes_refine_and_resample_requests_on():
    planner = LLMPlanner(LLMConfig(cache=0), Scripted([_call(0, "refine", last_x=4),
                                                        _call(0, "resample", k=16)]))
    assert planner.choose(_query()).refine_last == 4
    assert planner.choose(_query()).resample == 16
    assert planner.stats.tools == {"refine": 1, "resample": 1}


@pytest.mark.parametrize("backend, reason", [
    (Scripted(["the red one", "still not json"]), "unparsable"),
    (Scripted([BackendError("connection refused"), BackendError("connection refused")]), "unreachable"),
    (Scripted(delay=10.0), "timeout"),
])
def test_llm_planner_falls_back_to_value_and_counts_why(backend, reason):
    planner = LLMPlanner(LLMConfig(timeout_s=0.5, retries=1), backend)
    choice = planner.choose(_query())
    assert choice.index == int(np.argmax(planner.value.score(_query())))
    assert choice.reason.startswith(f"fallback to value ({reason})")
    assert planner.stats.summary()["fallbacks"] == {reason: 1}


def test_llm_value_follows_the_instruction_the_model_reads():
    def reads_yellow(prompt, options):  # the model's restatement: red cube on the yellow pad
        if "ruby" not in prompt:  # a content-free instruction: the model's bias towards blue
            return [-1.0 if "blue pad" in o else -3.0 for o in options]
        return [0.0 if o == " red cube on the yellow pad" else -6.0 for o in options]

    planner = LLMValuePlanner(LLMConfig(), Scripted(logprobs=reads_yellow))
    # the value planner alone prefers candidate 1 (red cube towards the blue pad: progress 0.6)
    assert int(np.argmax(planner.value.score(_query()))) == 1
    choice = planner.choose(_query("could you drop the ruby brick onto the amber tile"))
    assert choice.index == 0 and "P(instruction satisfied)" in choice.reason
    p = planner.grounding(_query("could you drop the ruby brick onto the amber tile"))
    assert p.shape == (3, 2) and p.sum() == pytest.approx(1) and p[0, 1] > 0.9
    assert planner.stats.cached >= 1


def test_llm_value_asks_a_chat_endpoint_when_it_cannot_score_text():
    answer = json.dumps({"object": "red cube", "target": "yellow pad"})
    planner = LLMValuePlanner(LLMConfig(), Scripted([answer]))
    assert planner.choose(_query()).index in (0, 4)
    broken = LLMValuePlanner(LLMConfig(), Scripted([BackendError("down")]))
    assert broken.choose(_query()).index == 1  # value alone
    assert broken.stats.fallbacks["grounding"] == 1


def test_lessons_persist_are_retrieved_and_calibrate(tmp_path):
    path = tmp_path / "lessons.jsonl"
    store = LessonStore(path)
    for i, ok in enumerate([False, False, True]):
        store.add(Lesson("sort", "put the red cube on the blue pad", "grasps the red cube", 0.9, ok,
                         "The dream was wrong.", i))
    store.add(Lesson("push", "", "pushes the red cube", 0.9, True, "As dreamed.", 3))
    again = LessonStore(path)
    assert len(again.lessons) == 4
    got = again.retrieve("sort", "red cube blue pad", 2)
    assert len(got) == 2 and all(x.task == "sort" for x in got) and got[0].episode == 2
    assert again.calibration("sort", "grasps the red cube", 0.9) == pytest.approx((1.8 + 1) / 5)
    assert again.calibration("sort", "never seen", 0.9) == pytest.approx(0.9)
    # a plan not meant to do what was asked, or one that acted on another object than dreamed,
    # says nothing about the dream's promise
    again.add(Lesson("sort", "x", "grasps the red cube", 0.9, False, "", 4, intended=False))
    again.add(Lesson("sort", "x", "grasps the red cube", 0.9, False, "", 5, dreamed_obj=0, actual_obj=1))
    assert again.calibration("sort", "grasps the red cube", 0.9) == pytest.approx((1.8 + 1) / 5)
    again.add(Lesson("sort", "x", "grasps the red cube", 0.9, False, "", 6, dreamed_obj=0, actual_obj=0,
                     intended=True))
    assert again.calibration("sort", "grasps the red cube", 0.9) == pytest.approx((1.8 + 1) / 6)
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(ValueError, match="line 8 is corrupt"):
        LessonStore(path)


def test_memory_corrects_a_world_model_that_mixes_objects_up(tmp_path):
    store = LessonStore(tmp_path / "lessons.jsonl")
    assert (store.object_correction("sort", 3) == np.eye(3)).all()
    # twice the dream said "red cube" and the green one moved; once it was right about blue
    for dreamed, actual in ((0, 1), (0, 1), (2, 2)):
        store.add(Lesson("sort", "x", "y", 0.5, False, "", 0, dreamed, actual))
    fix = store.object_correction("sort", 3)
    assert fix[0].argmax() == 1 and fix[1].argmax() == 1 and fix[2].argmax() == 2

    def reads_yellow(prompt, options):
        if "ruby" not in prompt:
            return [-1.0 if "blue pad" in o else -3.0 for o in options]
        return [0.0 if o == " green cube on the yellow pad" else -6.0 for o in options]

    planner = LLMValuePlanner(LLMConfig(memory=str(store.path)), Scripted(logprobs=reads_yellow))
    # wanted: the green cube on the yellow pad; the dream of candidate 0 says red -> yellow, and
    # the lessons say this world model's "red" is really green
    assert planner.choose(_query("could you drop the ruby... green brick onto the amber tile")).index == 0
    plain = LLMValuePlanner(LLMConfig(), Scripted(logprobs=reads_yellow))
    assert plain.choose(_query("could you drop the ruby... green brick onto the amber tile")).index != 0
    # the value term reads the dreams through the same correction: scored by the dreamed
    # positions, carrying the dream's "red" cube to the yellow pad is what was asked
    q = dataclasses.replace(_query("could you drop the ruby... green brick onto the amber tile"),
                            robot="panda")
    assert planner.terms(q)["value"][0] > plain.terms(q)["value"][0]
    assert planner.intended(outcomes(q.dreams, q.observation, SORT)[0], q.instruction, SORT, "sort")
    assert not plain.intended(outcomes(q.dreams, q.observation, SORT)[0], q.instruction, SORT, "sort")


def test_llm_value_defers_to_a_dreamer_that_knows_every_word():
    """Where the world model was trained on every word of the instruction, its reading is used
    and the instruction kept as it is: the language model is not asked."""
    backend = Scripted(logprobs=lambda p, o: [0.0] * len(o))
    planner = LLMValuePlanner(LLMConfig(), backend)
    yellow_red = np.zeros((3, 2))
    yellow_red[0, 1] = 1.0
    q = dataclasses.replace(_query(), grounding=yellow_red, dreamer_reads=True)
    assert planner.choose(q).index in (0, 4) and planner.stats.deferred == 1
    assert planner.restate(q.instruction, SORT, dreamer_reads=True) is None
    assert backend.calls == []
    assert planner.stats.summary()["model_calls"] == 0
    # words it never saw: the language model reads them, and restates them for the policy
    unread = dataclasses.replace(q, dreamer_reads=False)
    planner.choose(unread)
    assert planner.stats.summary()["model_calls"] > 0 and planner.stats.deferred == 1
    assert planner.restate(q.instruction, SORT, dreamer_reads=False) is not None
    never = LLMValuePlanner(LLMConfig(defer=False), Scripted(logprobs=lambda p, o: [0.0] * len(o)))
    never.choose(q)
    assert never.stats.deferred == 0 and never.stats.summary()["model_calls"] > 0


def test_a_lesson_judges_intent_by_the_reading_the_decision_used():
    """Under ``defer`` the decision scored with the world model's reading, so whether a plan was
    meant to do what was asked is judged by that reading too: no language-model call, and no
    disagreement with a model that would read the instruction otherwise."""
    backend = Scripted(logprobs=lambda p, o: [0.0] * len(o))
    planner = LLMValuePlanner(LLMConfig(), backend)
    red_yellow = np.zeros((3, 2))
    red_yellow[0, 1] = 1.0
    q = dataclasses.replace(_query(), grounding=red_yellow, dreamer_reads=True)
    planner.choose(q)
    carries_red_to = {pad: dataclasses.replace(outcomes(_sort_dreams(), _observation(), SORT)[0], target=pad)
                      for pad in (0, 1)}
    assert planner.intended(carries_red_to[1], q.instruction, SORT, "sort") is True
    assert planner.intended(carries_red_to[0], q.instruction, SORT, "sort") is False
    assert backend.calls == [] and planner.stats.summary()["model_calls"] == 0
    # an instruction this planner never scored is read by the model (here: uniform, so red-yellow
    # is as likely as any pair and argmax picks the first, the red cube on the blue pad)
    assert planner.intended(carries_red_to[0], "put the red cube on the blue pad", SORT, "sort") is True
    assert planner.stats.summary()["model_calls"] > 0


def test_lessons_recalibrate_the_success_the_value_planner_counted(tmp_path):
    """Memory moves a candidate's score by at most the success weight: from the success the
    value planner counted to the rate the lessons saw, never by an unbounded log ratio."""
    store = LessonStore(tmp_path / "lessons.jsonl")
    dreams = _sort_dreams()
    q = _query()
    said = outcomes(dreams, q.observation, SORT)[2].text(SORT)  # reaches the green cube
    for i in range(6):
        store.add(Lesson("sort", "y", said, 0.0, True, "", i, 1, 1, True))

    def reads_red_to_yellow(prompt, options):
        asked = "put the red" in prompt
        return [0.0 if not asked or "red cube on the yellow" in o else -6.0 for o in options]

    planner = LLMValuePlanner(LLMConfig(memory=str(store.path)), Scripted(logprobs=reads_red_to_yellow))
    t = planner.terms(q)
    assert 0 < t["memory"][2] <= planner.value.cfg.success and (t["memory"][[0, 1, 3, 4]] == 0).all()
    assert planner.choose(q).index in (0, 4)  # a past success elsewhere does not outweigh the instruction


def test_the_config_names_bad_settings():
    with pytest.raises(ValueError, match="unknown llm backend"):
        LLMConfig(backend="telepathy")
    with pytest.raises(ValueError, match="timeout_s"):
        LLMConfig(timeout_s=0)


def test_bench_grounding_proposes_every_cube_pad_pair_and_scores_the_choice(tmp_path):
    from policy.cli import main

    out = tmp_path / "grounding.json"
    assert main(["bench", "grounding", "planners=[value]", "episodes=1", "horizon=8", "phrasings=[novel]",
                 f"out={out}"]) == 0
    r = json.loads(out.read_text())["results"]["novel"]
    assert r["episodes"] == 1 and 0 <= r["accuracy"]["value"] <= 1
    assert main(["bench", "grounding", "phrasings=[shouted]"]) == 2


# ---- the real model -----------------------------------------------------------------------------
llama_cpp = pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def smollm():
    from policy.planners.llm.backends import LlamaCppBackend

    return LlamaCppBackend(LLMConfig(n_ctx=1024, n_threads=1))


def test_smollm_answers_every_decision_with_a_valid_tool_call(smollm):
    planner = LLMPlanner(LLMConfig(timeout_s=60), smollm)
    choice = planner.choose(_query())
    assert choice.reason.startswith("llm "), choice.reason
    assert planner.stats.summary()["fallback_total"] == 0


def test_smollm_gives_up_at_the_timeout_instead_of_finishing_its_answer(smollm):
    """In process, generation stops at the deadline: the robot's planner is never held longer."""
    schema = tool_schema(3)
    msgs = messages("put the red cube on the yellow pad", ["a", "b", "c"], [])
    smollm.chat(msgs, schema, 60)  # llama.cpp then holds the prompt, as for the timed calls below
    t0 = time.perf_counter()
    whole = smollm.chat(msgs, schema, 60)
    full_s = time.perf_counter() - t0
    assert parse_tool_call(whole, 3)
    t0 = time.perf_counter()
    with pytest.raises(BackendTimeout):
        smollm.chat(msgs, schema, full_s / 4)
    assert time.perf_counter() - t0 < full_s * 0.75
    assert parse_tool_call(smollm.chat(msgs, schema, 60), 3)  # and the model still answers afterwards


def test_smollm_reads_plain_instructions(smollm):
    planner = LLMValuePlanner(LLMConfig(timeout_s=60), smollm)
    p = planner.grounding(_query("put the red cube on the yellow pad"))
    assert np.unravel_index(np.argmax(p), p.shape) == (0, 1)


def test_a_real_llama_cpp_server_on_loopback_answers_through_the_openai_backend(tmp_path):
    import socket
    import subprocess
    import sys
    import urllib.request

    from policy.planners.llm.backends import OpenAIBackend, default_model_path

    pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
                               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                               "--n_threads", "1"], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"llama_cpp.server exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        planner = LLMPlanner(LLMConfig(backend="openai", base_url=url, timeout_s=60),
                             OpenAIBackend(LLMConfig(backend="openai", base_url=url, timeout_s=60)))
        choice = planner.choose(_query())
        assert choice.reason.startswith("llm "), choice.reason
        server.kill()
        server.wait()
        down = LLMPlanner(LLMConfig(backend="openai", base_url=url, timeout_s=2, cache=0),
                          OpenAIBackend(LLMConfig(backend="openai", base_url=url, timeout_s=2)))
        assert down.choose(_query()).reason.startswith("fallback to value (unreachable)")
    finally:
        server.kill()
        log.close()


def test_bench_memory_runs_both_arms_on_the_same_episodes(tmp_path):
    from policy.cli import main

    out = tmp_path / "memory.json"
    assert main(["bench", "memory", "episodes=2", "block=1", "horizon=8", f"store_dir={tmp_path}",
                 f"out={out}"]) == 0
    got = json.loads(out.read_text())
    r = got["results"]
    assert set(r) == {"memory_off", "memory_on"} and len(r["memory_on"]["per_episode"]) == 1
    assert len(r["memory_on"]["per_episode"][0]) == 2 and 0 <= got["instruction_read_right"] <= 1
    assert len(r["memory_on"]["curve"]) == 2 // got["block"]
    assert len((tmp_path / "lessons_0.jsonl").read_text().splitlines()) == 2


def test_the_value_planner_scores_learned_dreams_by_the_grounded_tasks_progress():
    """With a grounding, progress comes from the dreamed positions of the named cube and pad; the
    progress head (which here prefers carrying red to the *blue* pad) only stands without one,
    and simulator dreams keep it."""

    from policy.planners.objective import objective_progress
    from policy.planners.value import ValuePlanner

    q = dataclasses.replace(_query(), robot="panda", dreamer="learned")
    value = ValuePlanner()
    assert objective_progress(q) is None  # Sort names its cube in words: nothing to compute from
    assert int(np.argmax(value.score(q))) == 1
    red_on_yellow = np.zeros((3, 2))
    red_on_yellow[0, 1] = 1.0
    progress, _ = objective_progress(q, red_on_yellow)
    assert progress[0] == pytest.approx(progress[4]) and progress[0] > progress[1] > progress[2]
    assert int(np.argmax(value.score(q, red_on_yellow))) in (0, 4)
    # the world model's own reading, carried by the query, serves the same way
    assert int(np.argmax(value.score(dataclasses.replace(q, grounding=red_on_yellow)))) in (0, 4)
    oracle = dataclasses.replace(q, dreamer="oracle", exact=True)
    assert int(np.argmax(value.score(oracle, red_on_yellow))) == 1
    with pytest.raises(ValueError, match="does not match 3 objects and 2 targets"):
        objective_progress(q, np.ones((2, 2)))


def test_pick_place_progress_is_computed_from_a_dream_that_sets_the_cube_down_on_the_pad():
    from policy.planners.objective import objective_progress
    from sim.workspace import WORKSPACES

    half = WORKSPACES["panda"].cube_half
    cube, pad = np.array([0.5, 0.0, half]), np.array([0.5, 0.2, 0.0])
    h = 5
    up = np.array([0.0, 0.0, 1.0])
    ee = np.tile(cube + 0.1 * up, (1, 2, h, 1))
    obj = np.tile(cube, (1, 2, h, 1, 1))
    obj[0, 0, :, 0] = cube + np.linspace(0, 1, h)[:, None] * (pad + half * up - cube)  # slides onto it
    hold = np.zeros((1, 2, h, 1))
    dreams = Dreams(ee, obj, hold, hold.copy(), np.full((1, 2, h), 0.3), np.zeros((1, 2, h)))
    obs = {keys.OBJECT_POSES: np.append(cube, [1.0, 0, 0, 0])[None], keys.GOAL: pad,
           keys.EE_POSE: np.append(ee[0, 0, 0], [1.0, 0, 0, 0])}
    q = PlanQuery(np.zeros((2, h, 8)), dreams, None, obs, task="pick_place", robot="panda", dreamer="learned")
    progress, success = objective_progress(q)
    np.testing.assert_allclose(progress, [1.0, 0.2 * (1 - 0.1 / 0.2)])
    np.testing.assert_allclose(success, [1.0, 0.0])


def test_push_progress_is_the_share_slid_and_success_asks_the_tool_to_leave_the_cube():
    from policy.planners.objective import objective_progress
    from sim.workspace import WORKSPACES

    half = WORKSPACES["panda"].cube_half
    cube, pad = np.array([0.5, 0.0, half]), np.array([0.5, 0.2, 0.0])
    h = 5
    slid = cube + np.linspace(0, 1, h)[:, None] * (pad + np.array([0, 0, half]) - cube)
    obj = np.tile(cube, (1, 3, h, 1, 1))
    obj[0, 0, :, 0] = obj[0, 1, :, 0] = slid  # both slide it onto the pad
    obj[0, 2, :, 0] = cube + np.linspace(0, 0.5, h)[:, None] * (pad - cube) * [1, 1, 0]  # half way
    ee = obj[:, :, :, 0] - np.array([0.0, 0.03, 0.0])  # pushing from behind
    touch = np.ones((1, 3, h, 1))
    touch[0, 0, -1] = 0.0  # the first backs off at the end; the second keeps pushing
    dreams = Dreams(ee, obj, np.zeros((1, 3, h, 1)), touch, np.full((1, 3, h), 0.3), np.zeros((1, 3, h)))
    obs = {keys.OBJECT_POSES: np.append(cube, [1.0, 0, 0, 0])[None], keys.GOAL: pad,
           keys.EE_POSE: np.append(ee[0, 0, 0], [1.0, 0, 0, 0])}
    q = PlanQuery(np.zeros((3, h, 8)), dreams, None, obs, task="push", robot="panda", dreamer="learned")
    progress, success = objective_progress(q)
    np.testing.assert_allclose(progress, [1.0, 0.95, 0.95 * 0.5])
    np.testing.assert_allclose(success, [1.0, 0.0, 0.0])


def test_the_value_planner_prefers_a_push_that_leaves_the_tool_behind_the_cube():
    """Two Push dreams slide the cube equally far; one ends with the tool behind it, facing the
    pad, the other beside it. Only the first is ready for the next push."""
    from policy.planners.objective import push_readiness
    from policy.planners.value import ValuePlanner, ValuePlannerConfig
    from sim.workspace import WORKSPACES

    half = WORKSPACES["panda"].cube_half
    cube, pad = np.array([0.5, 0.0, half]), np.array([0.5, 0.3, 0.0])
    h = 4
    obj = np.tile(cube, (1, 2, h, 1, 1))
    obj[0, :, :, 0, 1] += np.linspace(0, 0.05, h)  # both slide it 5 cm toward the pad
    ee = obj[:, :, :, 0].copy()
    ee[0, 0, :, 1] -= 0.04  # behind it
    ee[0, 1, :, 0] -= 0.04  # beside it
    dreams = Dreams(ee, obj, np.zeros((1, 2, h, 1)), np.ones((1, 2, h, 1)), np.zeros((1, 2, h)),
                    np.zeros((1, 2, h)))
    obs = {keys.OBJECT_POSES: np.append(cube, [1.0, 0, 0, 0])[None], keys.GOAL: pad,
           keys.EE_POSE: np.append(ee[0, 0, 0], [1.0, 0, 0, 0])}
    q = PlanQuery(np.zeros((2, h, 8)), dreams, None, obs, task="push", robot="panda", dreamer="learned")
    np.testing.assert_allclose(push_readiness(q), [1.0, 0.0], atol=1e-9)
    assert ValuePlanner().choose(q).index == 0
    without = ValuePlanner(ValuePlannerConfig(push_ready=0.0)).score(q)
    assert without[0] == pytest.approx(without[1])
    np.testing.assert_array_equal(push_readiness(dataclasses.replace(q, task="pick_place")), [0.0, 0.0])


def test_carrying_progress_is_measured_from_where_the_cube_started_the_episode():
    """Halfway through a carry, a dream that holds the cube still and one that drifts it back 1 cm
    differ by the task's measure (from the episode's start); from the current distance both
    would tie at the start of the carry stage."""
    from policy.planners.objective import objective_progress
    from sim.workspace import WORKSPACES

    half = WORKSPACES["panda"].cube_half
    first, pad = np.array([0.5, -0.2, half]), np.array([0.5, 0.2, 0.0])
    now = np.array([0.5, 0.0, half + 0.05])  # lifted, half way there
    h = 4
    obj = np.tile(now, (1, 2, h, 1, 1))
    obj[0, 1, :, 0, 1] -= 0.01
    ee = obj[:, :, :, 0] + np.array([0.0, 0.0, 0.01])
    hold = np.ones((1, 2, h, 1))
    dreams = Dreams(ee, obj, hold, hold.copy(), np.full((1, 2, h), 0.3), np.zeros((1, 2, h)))
    obs = {keys.OBJECT_POSES: np.append(now, [1.0, 0, 0, 0])[None], keys.GOAL: pad,
           keys.EE_POSE: np.append(ee[0, 0, 0], [1.0, 0, 0, 0])}
    q = PlanQuery(np.zeros((2, h, 8)), dreams, None, obs, task="pick_place", robot="panda", dreamer="learned")
    np.testing.assert_allclose(objective_progress(q)[0], [0.4, 0.4])
    began = {keys.OBJECT_POSES: np.append(first, [1.0, 0, 0, 0])[None]}
    progress, _ = objective_progress(dataclasses.replace(q, start=began))
    np.testing.assert_allclose(progress, [0.4 + 0.5 * 0.5, 0.4 + 0.5 * (1 - 0.21 / 0.4)])


def test_llm_value_restates_the_instruction_in_plain_words_for_the_policy():
    def reads_lime_as_green(prompt, options):
        return [5.0 if "lime" in prompt and o == " green cube on the blue pad" else 0.0 for o in options]

    planner = LLMValuePlanner(LLMConfig(), Scripted(logprobs=reads_lime_as_green))
    assert planner.restate("could you drop the lime box onto the navy tile", SORT) == \
        "put the green cube on the blue pad"
    assert planner.restate(None, SORT) is None
    assert planner.stats.consulted == 1 and planner.stats.cached == 0  # restating is not a decision
    off = LLMValuePlanner(LLMConfig(restate=False), Scripted(logprobs=reads_lime_as_green))
    assert off.restate("could you drop the lime box onto the navy tile", SORT) is None
