"""The diffusion policy's parts: config checks, denoiser sizes, normalisation, sampling,
inpainting and the action queue."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policy.diffusion.config import PRESETS, DiffusionConfig
from policy.diffusion.normalize import MinMaxNormalizer
from policy.diffusion.text import HashedTextEncoder
from policy.diffusion.unet import ConditionalUnet1D
from sim import keys
from tests.policy.conftest import tiny_policy


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"preset": "huge"}, "unknown preset"),
    ({"horizon": 10}, "divisible by"),
    ({"n_action_steps": 16}, "n_action_steps must lie"),
    ({"scheduler": "euler"}, "unknown scheduler"),
    ({"num_inference_steps": 0}, "num_inference_steps"),
    ({"down_dims": [30, 60]}, "multiples of n_groups"),
    ({"obs_features": ["observation.goal"]}, "observation.state"),
    ({"prediction_type": "v"}, "prediction_type"),
    ({"prefix_max": 16}, "prefix_max must lie"),
    ({"cond_mlp": [64, 0]}, "cond_mlp widths"),
    ({"prefix_prob": 1.5}, "prefix_prob must lie"),
])
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DiffusionConfig(**kwargs)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_and_keeps_shapes(preset):
    cfg = DiffusionConfig(preset=preset)
    with torch.device("meta"):
        net = ConditionalUnet1D(8, 90, cfg.dims, cfg.embed_dim, cfg.kernel_size, cfg.n_groups)
        out = net(torch.zeros(3, cfg.horizon, 8), torch.zeros(3, dtype=torch.long), torch.zeros(3, 90))
    assert out.shape == (3, cfg.horizon, 8)


def test_preset_sizes_grow():
    sizes = []
    for preset in PRESETS:
        cfg = DiffusionConfig(preset=preset)
        with torch.device("meta"):
            net = ConditionalUnet1D(8, 90, cfg.dims, cfg.embed_dim)
        sizes.append(sum(p.numel() for p in net.parameters()))
    assert sizes == sorted(sizes)
    assert 60e6 < sizes[list(PRESETS).index("base")] < 70e6  # Chi et al.'s state U-Net, ~66 M


def test_normalizer_round_trip_and_constant_dims():
    norm = MinMaxNormalizer(np.array([0.0, -2.0, 5.0]), np.array([1.0, 2.0, 5.0]))
    x = torch.tensor([[0.0, -2.0, 5.0], [1.0, 2.0, 5.0]])
    y = norm.normalize(x)
    assert torch.allclose(y, torch.tensor([[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0]]))
    assert torch.allclose(norm.unnormalize(y), x)
    with pytest.raises(ValueError, match="NaN"):
        MinMaxNormalizer(np.array([np.nan]), np.array([1.0]))


def test_text_encoder_is_stable_and_separates_instructions():
    torch.manual_seed(0)
    enc = HashedTextEncoder(16, 512)
    a = enc(["put the red cube on the blue pad", "put the red cube on the blue pad"])
    b = enc(["put the green cube on the yellow pad"])
    assert torch.allclose(a[0], a[1]) and not torch.allclose(a[0], b[0])
    assert enc.ids(["Red cube!"], torch.device("cpu"))[0].tolist() == \
        enc.ids(["red cube"], torch.device("cpu"))[0].tolist()


@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver++", "ddpm"])
def test_sample_shapes_bounds_and_determinism(scheduler):
    policy = tiny_policy(scheduler=scheduler)
    obs = torch.randn(2, 2, 11)
    a = policy.sample(obs, k=3, generator=torch.Generator().manual_seed(1))
    b = policy.sample(obs, k=3, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 3, 8, 8) and torch.equal(a, b)
    assert torch.isfinite(a).all() and a.min() >= -1 - 1e-5 and a.max() <= 1 + 1e-5
    assert not torch.allclose(a[:, 0], a[:, 1])  # K candidates differ


def test_compile_denoiser_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match=r"unknown compile mode 'fastest'.*reduce-overhead"):
        tiny_policy().compile_denoiser("fastest")


def test_cuda_graph_modes_mark_each_step_and_copy_the_output_out(monkeypatch):
    """A CUDA-graph replay returns the same static buffer every step and overwrites it on the next
    one: the wrapper must start a new graph step per call and hand back a copy, so the samples
    equal eager ones exactly."""
    policy = tiny_policy()
    obs = torch.randn(2, 2, 11)
    eager = policy.sample(obs, k=3, generator=torch.Generator().manual_seed(1))
    static: dict[str, torch.Tensor] = {}

    def replaying(fn, **_):
        def run(*args, **kwargs):
            out = fn(*args, **kwargs)
            buf = static.setdefault("out", torch.empty_like(out))
            return buf.copy_(out)
        return run

    steps = []
    monkeypatch.setattr(torch, "compile", replaying)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: steps.append(1))
    policy.compile_denoiser("reduce-overhead")
    graphed = policy.sample(obs, k=3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(graphed, eager)
    assert len(steps) == policy.cfg.num_inference_steps
    with torch.no_grad():
        cond = policy.encode(obs).repeat_interleave(3, dim=0)
        out = policy.denoiser(torch.zeros(6, 8, 8), torch.zeros(6, dtype=torch.long), cond)
    assert out.data_ptr() != static["out"].data_ptr()


@pytest.mark.slow
def test_compiled_denoiser_samples_as_eager():
    policy = tiny_policy()
    obs = torch.randn(2, 2, 11)
    eager = policy.sample(obs, k=3, generator=torch.Generator().manual_seed(1))
    policy.compile_denoiser("default")
    compiled = policy.sample(obs, k=3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(compiled, eager, atol=1e-4)


def test_inpainting_holds_kept_steps_exactly():
    policy = tiny_policy()
    obs = torch.randn(2, 2, 11)
    known = torch.rand(2, 8, 8) * 1.6 - 0.8
    keep = torch.arange(8) < 5
    for strength in (1.0, 0.5):
        out = policy.sample(obs, k=2, known=known, keep=keep, strength=strength,
                            generator=torch.Generator().manual_seed(0))
        assert torch.allclose(out[:, :, :5], known[:, None, :5], atol=1e-5)
        assert not torch.allclose(out[:, :, 5:], known[:, None, 5:], atol=1e-3)


def test_guided_inpainting_keeps_the_prefix_and_steers_the_rest():
    policy = tiny_policy()
    obs = torch.randn(1, 2, 11)
    known = torch.rand(1, 8, 8) * 1.6 - 0.8
    keep = torch.arange(8) < 3

    def draw(**kw):
        gen = torch.Generator().manual_seed(1)
        return policy.sample(obs, k=3, known=known, keep=keep, generator=gen, **kw)

    plain, zero, guided = draw(), draw(guidance=0.0), draw(guidance=2.0)
    assert torch.equal(plain, zero)  # guidance 0 is the replacement-only sampler, bit for bit
    assert torch.allclose(guided[:, :, :3], known[:, None, :3], atol=1e-5)
    assert not torch.allclose(guided[:, :, 3:], plain[:, :, 3:], atol=1e-4)
    with pytest.raises(ValueError, match="guidance must be >= 0"):
        draw(guidance=-1.0)
    with pytest.raises(ValueError, match="need a known trajectory"):
        policy.sample(obs, guidance=1.0)


def test_prefix_training_feeds_known_steps_clean_and_scores_only_the_rest():
    policy = tiny_policy(prefix_conditioning=True, prefix_prob=1.0, prefix_max=3)
    masks = policy.draw_prefixes(500, 8, "cpu", torch.Generator().manual_seed(0))
    lengths = masks.sum(1)
    assert lengths.min() == 1 and lengths.max() == 3 and (masks[:, :1]).all()  # prefixes, 1..3 long
    assert not tiny_policy(prefix_conditioning=True, prefix_prob=0.0).draw_prefixes(50, 8, "cpu").any()

    class Spy(torch.nn.Module):
        known_channel = True

        def forward(self, x, t, cond, known):
            self.x, self.known = x, known
            return torch.where(known[..., None], torch.full_like(x, 1e6), torch.zeros_like(x))

    policy.denoiser = spy = Spy()
    obs, act = torch.randn(6, 2, 11), torch.rand(6, 8, 8) * 2 - 1
    loss = policy.compute_loss(obs, act, generator=torch.Generator().manual_seed(1))
    x0 = policy.action_norm.normalize(act)
    assert torch.equal(spy.x[spy.known], x0[spy.known])  # the known steps go in clean
    assert 0.3 < loss.item() < 3  # E[noise^2] = 1 on the free steps; the 1e6 on known steps is not scored


def test_prefix_conditioned_sampling_gives_the_denoiser_the_kept_steps_clean():
    policy = tiny_policy(prefix_conditioning=True)
    seen = []
    forward = policy.denoiser.forward

    def spy(x, t, cond, known=None):
        seen.append((x.clone(), known))
        return forward(x, t, cond, known)

    policy.denoiser.forward = spy
    obs = torch.randn(1, 2, 11)
    known = torch.rand(1, 8, 8) * 1.6 - 0.8
    keep = torch.arange(8) < 3
    out = policy.sample(obs, k=2, known=known, keep=keep, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, :, :3], known[:, None, :3], atol=1e-5)
    kn = policy.action_norm.normalize(known)
    for x, mask in seen:
        assert torch.equal(mask, keep.expand(2, 8)) and torch.allclose(x[:, :3], kn[:, :3].expand(2, 3, 8))
    seen.clear()
    policy.sample(obs, k=2)
    assert all(mask is None for _, mask in seen)  # nothing known: the channel reads 0


def test_the_conditioning_mlp_mixes_the_whole_conditioning_before_film():
    policy = tiny_policy(cond_mlp=[32, 24])
    obs = torch.randn(3, 2, 11)
    assert policy.encode(obs).shape == (3, 24)
    assert policy.denoiser.down[0][0].film[1].in_features == 24 + 16  # + the step embedding
    assert policy.sample(obs, k=2).shape == (3, 2, 8, 8)
    assert tiny_policy().cond_mlp is None


def test_a_denoiser_without_the_known_channel_refuses_a_mask():
    net = ConditionalUnet1D(8, 4, [16, 32], 16)
    with pytest.raises(ValueError, match="prefix_conditioning"):
        net(torch.zeros(1, 8, 8), torch.zeros(1, dtype=torch.long), torch.zeros(1, 4),
            torch.zeros(1, 8, dtype=torch.bool))
    with_channel = ConditionalUnet1D(8, 4, [16, 32], 16, known_channel=True)
    assert with_channel.down[0][0].conv1[0].in_channels == 9


def test_inpainting_checks_its_inputs():
    policy = tiny_policy()
    obs = torch.randn(1, 2, 11)
    with pytest.raises(ValueError, match="known trajectory must have shape"):
        policy.sample(obs, known=torch.zeros(1, 5, 8), keep=torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="need a known trajectory"):
        policy.sample(obs, strength=0.5)
    with pytest.raises(ValueError, match="keep mask"):
        policy.sample(obs, known=torch.zeros(1, 8, 8), keep=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="observation window"):
        policy.sample(torch.zeros(1, 3, 11))


def _obs(value: float = 0.1) -> dict:
    return {keys.JOINT_POS: np.full(7, value, np.float32), keys.GRIPPER: np.array([0.02], np.float32),
            keys.GOAL: np.array([0.4, 0.0, 0.3], np.float32)}


def test_select_action_runs_a_receding_horizon_queue(monkeypatch):
    policy = tiny_policy()
    calls = []
    original = policy.sample

    def counting(*args, **kw):
        calls.append(kw)
        return original(*args, **kw)

    monkeypatch.setattr(policy, "sample", counting)
    policy.reset()
    actions = [policy.select_action(_obs(0.01 * i)) for i in range(9)]
    assert len(calls) == 3 and all(a.shape == (8,) for a in actions)  # chunks of 4: steps 0, 4, 8
    # Each new trajectory's first To-1 steps are held to the action already sent.
    assert "known" not in calls[0]
    assert torch.allclose(calls[1]["known"][0, 0], torch.as_tensor(actions[3]))
    assert calls[1]["keep"].tolist() == [True] + [False] * 7


def test_select_action_with_a_lead_plans_ahead_and_holds_the_committed_steps(monkeypatch):
    """lead=2, chunks of 4 (H=8, To=2): the second chunk is planned at step 2 from the observation
    then, holding the past action and the two queued ones; it takes over at step 4, as in the node."""
    policy = tiny_policy()
    calls = []
    original = policy.sample

    def counting(*args, **kw):
        calls.append((args[0].clone(), kw))
        return original(*args, **kw)

    monkeypatch.setattr(policy, "sample", counting)
    policy.reset()
    actions = [policy.select_action([_obs(0.01 * i), _obs(0.02 * i)], lead=2) for i in range(7)]
    assert len(calls) == 3  # planned at steps 0, 2 and 6
    window, kw = calls[1]
    assert torch.allclose(window[0, -1, :7], torch.full((7,), 0.02))  # the observation at step 2
    assert kw["keep"].tolist() == [True, True, True, False, False, False, False, False]
    for row in range(2):
        held = kw["known"][row, :3].numpy()
        np.testing.assert_allclose(held, [actions[1][row], actions[2][row], actions[3][row]], rtol=1e-6)
    assert calls[2][1]["keep"].tolist()[:3] == [True] * 3


def test_lead_zero_is_the_plain_queue_and_a_lead_past_the_horizon_is_refused():
    policy = tiny_policy()
    policy.reset()
    def gen(i):
        return torch.Generator().manual_seed(i)

    plain = [policy.select_action(_obs(0.01 * i), generator=gen(i)) for i in range(6)]
    policy.reset()
    zero = [policy.select_action(_obs(0.01 * i), 0, generator=gen(i)) for i in range(6)]
    np.testing.assert_array_equal(np.stack(plain), np.stack(zero))
    with pytest.raises(ValueError, match=r"lead must lie in \[0, 3\]"):  # Ta = 4
        policy.select_action(_obs(), lead=4)  # would never be reached: the queue holds 3 at most
    one_obs = tiny_policy(n_obs_steps=1)  # no past actions to hold: only the committed ones
    one_obs.reset()
    assert np.stack([one_obs.select_action(_obs(0.01 * i), lead=2) for i in range(6)]).shape == (6, 8)


def test_known_prefix_places_past_and_committed_steps_per_row():
    policy = tiny_policy()  # To=2, H=8, A=8
    past = np.arange(2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)  # only the last To-1=1 is used
    committed = -np.ones((2, 2, 8), np.float32)
    known, keep = policy.known_prefix(past, committed)
    assert known.shape == (2, 8, 8) and keep.tolist() == [True, True, True] + [False] * 5
    np.testing.assert_array_equal(known[:, 0].numpy(), past[:, -1])
    assert torch.all(known[:, 1:3] == -1) and torch.all(known[:, 3:] == 0)
    single, keep1 = policy.known_prefix(np.zeros((0, 8)), np.ones((1, 8)))
    assert single.shape == (1, 8, 8) and keep1.tolist() == [False, True] + [False] * 6
    assert policy.known_prefix(None, None) == (None, None)
    with pytest.raises(ValueError, match="do not fit in a horizon of 8"):
        policy.known_prefix(None, np.zeros((8, 8)))


def test_select_action_batches_and_fills_history():
    policy = tiny_policy()
    policy.reset()
    out = policy.select_action([_obs(0.1), _obs(0.2), _obs(0.3)])
    assert out.shape == (3, 8)
    window = policy.observation_window()
    assert window.shape == (3, 2, 11) and torch.equal(window[:, 0], window[:, 1])
    with pytest.raises(ValueError, match="batch size changed"):
        policy.select_action([_obs(0.1)])


def test_bad_observations_are_refused():
    policy = tiny_policy()
    bad = _obs()
    bad[keys.JOINT_POS][2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        policy.select_action(bad)
    policy.reset()
    missing = _obs()
    del missing[keys.GOAL]
    with pytest.raises(ValueError, match="lacks"):
        policy.select_action(missing)
    policy.reset()
    with pytest.raises(ValueError, match="lacks 'joint_pos'"):
        policy.select_action({keys.GOAL: np.zeros(3)})


def test_loss_decreases_when_fitting_one_batch():
    policy = tiny_policy().train()
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    obs, act = torch.randn(16, 2, 11), torch.rand(16, 8, 8) * 2 - 1
    losses = []
    for i in range(60):
        loss = policy.compute_loss(obs, act, generator=torch.Generator().manual_seed(i % 4))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-8:]) < 0.6 * np.mean(losses[:8])
