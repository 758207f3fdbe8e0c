"""Baselines and analyses from Python give the CLI's numbers (same code, same data)."""

import numpy as np
import pytest

import mesalab

TINY = {"data.seq_len": 10, "train.test_batches": 2, "train.test_batch_size": 32}


def test_baselines_match_the_cli(cli):
    from_python = mesalab.baselines(TINY)
    sets = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    from_cli = cli("baselines", "--json", *sets)
    assert from_python["gd_eta"] == from_cli["gd_eta"]
    assert list(from_python["curves"]) == [b["name"] for b in from_cli["baselines"]]
    for b in from_cli["baselines"]:
        assert from_python["curves"][b["name"]].tolist() == b["curve"], b["name"]


def test_baseline_curves_on_given_states():
    states = mesalab.sequences(TINY, batch=64, seed=3)["hidden"]
    out = mesalab.baseline_curves(states)
    assert out["gd_eta"] == mesalab.tune_gd_eta(states)
    c = out["curves"]
    assert c["zero"].shape == (10,)
    # On the sequences it was tuned on, GD-1 beats predicting zero, least squares beats GD-1
    # once there are pairs to fit.
    assert c["gd1"].mean() < c["zero"].mean()
    assert c["least_squares_all_pairs"][5:].mean() < c["gd1"][5:].mean()
    fixed = mesalab.baseline_curves(states, eta=0.0)
    assert np.array_equal(fixed["curves"]["gd1"], c["zero"])


def test_gd_step_at_zero_w0_family():
    states = mesalab.sequences(TINY, batch=64, seed=4)["hidden"]
    step = mesalab.gd_step(states)
    w0 = mesalab.gd_w0(states)
    assert step["w0"].shape == (10, 10) and step["curve"].shape == (10,)
    assert step["loss"] == pytest.approx(step["curve"].mean(), rel=1e-9)
    gd1 = mesalab.baseline_curves(states)["curves"]["gd1"].mean()
    # Learned W0 can only help on the sequences it was fitted on.
    assert step["loss"] <= gd1 * (1 + 1e-9) and w0["curve"].mean() <= gd1 * (1 + 1e-9)


def test_evaluate_matches_cli_eval(trained_run, cli):
    run = mesalab.load_run(str(trained_run))
    from_cli = cli("eval", trained_run, "--json")
    assert run["model"].evaluate(run["params"]).tolist() == from_cli["model"]["per_t"]


def test_probes_match_the_cli(trained_run, cli):
    run = mesalab.load_run(str(trained_run))
    from_python = mesalab.probe(run["model"], run["params"], target="all", batch=64)
    from_cli = cli("probe", trained_run, "--batch", 64, "--json")
    for target in ("current", "next", "inverse"):
        ours = from_python["probes"][target]
        theirs = from_cli["probes"][target]
        assert ours["loss"].shape == (10, 2)
        assert np.array_equal(ours["loss"], np.array(theirs["loss"], dtype=float)), target
        assert ours["kept"].tolist() == theirs["kept"]
    assert from_python["control"]["loss"].tolist() == from_cli["control"]["loss"]
    acts = mesalab.activations(run["model"], run["params"], batch=64)
    assert acts["activations"].shape == (2, 10, 64, 40)
    # Layer 0 of constructed tokens is the token itself.
    assert np.array_equal(acts["activations"][0], acts["tokens"].transpose(1, 0, 2))


def test_revalg_matches_the_cli(trained_run, cli):
    run = mesalab.load_run(str(trained_run))
    out = mesalab.revalg(run["model"], run["params"])
    from_cli = cli("revalg", trained_run, "--json")
    assert out["kinds"] == ["lsa"]
    assert out["qk"]["scalars"].shape == (1, 2, 4, 4)
    cli_head = from_cli["structure"][0]["heads"][1]["qk"]
    assert out["qk"]["scalars"][0, 1].tolist() == cli_head["scalars"]
    closed = out["closed_form"]
    assert closed["coefficients"].shape == (2, 2, 2)
    cli_closed = from_cli["closed_form"]
    assert closed["gd_eta"] == cli_closed["gd_eta"]
    model_curve = closed["curves"]["model"]
    assert model_curve.tolist() == run["model"].evaluate(run["params"]).tolist()
    assert out["revalg_d"]["q"].shape == (1, 2, 4, 4)
    assert out["sparsity"]["qk"].shape == (2,)
    assert np.array_equal(
        mesalab.sparsity(run["model"], run["params"])["pv"], out["sparsity"]["pv"]
    )
    assert out["revalg_d"]["curves"]["revalg_d"].tolist() == (
        mesalab.revalg_d(run["model"], run["params"])["curves"]["revalg_d"].tolist()
    )


def test_closed_form_note_for_deeper_models():
    small = {"data.seq_len": 5, "train.test_batch_size": 8, "train.test_batches": 1}
    model = mesalab.Model({"model.layers": 2, **small})
    out = mesalab.revalg(model, model.init_params())
    assert out["closed_form"] is None
    assert out["closed_form_note"] == "no closed-form comparison: the model has 2 layers, not 1"
    assert out["revalg_d"]["q"].shape == (2, 4, 4, 4) and out["revalg_d_note"] == ""


def test_interpolation_replays_the_run(trained_run):
    out = mesalab.interpolate(str(trained_run), alpha=0.5)
    assert out["steps"].tolist() == [0, 10, 20, 30]
    assert out["replay_max_difference"] == 0.0
    assert np.array_equal(out["model"], out["recorded"])


def test_held_out_implicit_probe_matches_the_cli(trained_run, cli):
    run = mesalab.load_run(str(trained_run))
    out = mesalab.probe(run["model"], run["params"], "implicit", batch=48, held_out_seed=2)
    from_cli = cli(
        "probe", trained_run, "--target", "implicit", "--batch", 48, "--held-out-seed", 2, "--json"
    )
    assert list(out["probes"]) == ["implicit"] and "control" not in out
    ours, theirs = out["probes"]["implicit"], from_cli["probes"]["implicit"]
    assert np.array_equal(ours["loss"], np.array(theirs["loss"], dtype=float))
    assert out["implicit_reference"]["loss"].tolist() == from_cli["implicit_reference"]["loss"]
