"""Sequences and tokens: shapes, dtypes, determinism, and the same bits as the batches the
CLI trains on."""

import numpy as np
import pytest

import mesalab
from conftest import small_config


@pytest.mark.parametrize("kind", ["linear", "contracting", "nonlinear", "fixed"])
def test_sequences_of_every_kind(kind):
    config = {"data": {"kind": kind, "seq_len": 7, "dim": 3}}
    s = mesalab.sequences(config, batch=5, seed=3, step=2, purpose="train")
    assert s["hidden"].shape == (5, 8, 3) and s["hidden"].dtype == np.float64
    assert np.array_equal(s["observed"], s["hidden"])
    again = mesalab.sequences(config, batch=5, seed=3, step=2, purpose="train")
    assert np.array_equal(again["hidden"], s["hidden"])
    other = mesalab.sequences(config, batch=5, seed=3, step=3, purpose="train")
    assert not np.array_equal(other["hidden"], s["hidden"])
    # Sequence b depends only on its own stream: a smaller batch is a prefix.
    prefix = mesalab.sequences(config, batch=2, seed=3, step=2, purpose="train")
    assert np.array_equal(prefix["hidden"], s["hidden"][:2])


def test_observation_model():
    config = {"data": {"dim": 4, "obs_dim": 2, "noise_obs": 0.1, "seq_len": 6}}
    s = mesalab.sequences(config, batch=3, seed=1)
    assert s["observed"].shape == (3, 7, 2) and s["hidden"].shape == (3, 7, 4)


def test_result_arrays_own_their_buffers_without_copies():
    s = mesalab.sequences({"data": {"seq_len": 4}}, batch=2)
    hidden = s["hidden"]
    assert not hidden.flags.owndata and hidden.base is not None  # a view of mesalab's vector
    assert hidden.flags.c_contiguous and hidden.flags.writeable
    del s
    assert np.isfinite(hidden).all()  # still alive after the dict is gone


@pytest.mark.parametrize(
    "tokens,width", [("constructed", 40), ("constructed_masked", 40), ("raw", 10), ("delay", 40)]
)
def test_tokens_are_built_from_their_states(tokens, width):
    config = {"data": {"tokens": tokens, "seq_len": 6}}
    b = mesalab.tokens(config, batch=4, seed=9, step=1, purpose="train")
    assert b["tokens"].shape == (4, 6, width) and b["tokens"].dtype == np.float32
    assert b["labels"].shape == (4, 6, 10) and b["states"].shape == (4, 7, 10)
    rebuilt = mesalab.build_tokens(b["states"], tokens, width)
    assert np.array_equal(rebuilt["tokens"], b["tokens"])
    assert np.array_equal(rebuilt["labels"], b["labels"])
    # The states are the sequences of the same (seed, purpose, step).
    s = mesalab.sequences(config, batch=4, seed=9, step=1, purpose="train")
    assert np.array_equal(s["observed"], b["states"])
    assert np.array_equal(b["labels"], s["observed"][:, 1:].astype(np.float32))


def test_constructed_token_layout():
    states = np.arange(2 * 4 * 3, dtype=np.float64).reshape(2, 4, 3)
    b = mesalab.build_tokens(states)
    t = b["tokens"]
    assert t.shape == (2, 3, 12)
    # e_t = [0, s_t, s_t, s_{t-1}], s_0 = 0
    assert np.array_equal(t[:, :, :3], 0 * t[:, :, :3])
    assert np.array_equal(t[:, :, 3:6], states[:, :3].astype(np.float32))
    assert np.array_equal(t[:, :, 6:9], states[:, :3].astype(np.float32))
    assert np.array_equal(t[:, 1:, 9:], states[:, :2].astype(np.float32))
    assert not t[:, 0, 9:].any()


def test_transposed_input_is_converted():
    states = np.asfortranarray(mesalab.sequences({"data": {"seq_len": 5}}, batch=3)["hidden"])
    assert not states.flags.c_contiguous
    assert np.array_equal(
        mesalab.build_tokens(states)["tokens"],
        mesalab.build_tokens(np.ascontiguousarray(states))["tokens"],
    )


def test_test_set_is_what_the_model_is_evaluated_on():
    model = mesalab.Model(small_config("eval"))
    params = model.init_params()
    cfg = model.config["train"]
    batches = [
        mesalab.tokens(model, batch=cfg["test_batch_size"], step=i, purpose="test")
        for i in range(cfg["test_batches"])
    ]
    per_batch = [model.evaluate(params, b["tokens"], b["labels"]) for b in batches]
    assert np.allclose(model.evaluate(params), np.mean(per_batch, axis=0), rtol=1e-12, atol=0)
