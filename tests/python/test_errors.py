"""mesalab's errors arrive as Python exceptions carrying its message."""

import numpy as np
import pytest

import mesalab
from conftest import small_config


@pytest.mark.parametrize(
    "config", [{"model": {"layerz": 3}}, {"model.layerz": 3}], ids=["nested", "dotted"]
)
def test_unknown_key_is_a_value_error_naming_it(config):
    with pytest.raises(ValueError, match=r"unknown config key 'model\.layerz'"):
        mesalab.Model(config)


def test_out_of_range_and_wrong_type_name_the_key():
    with pytest.raises(ValueError, match=r"'model\.layers' = 0 is out of range \[1, 64\]"):
        mesalab.Model({"model": {"layers": 0}})
    with pytest.raises(ValueError, match=r"config key 'optim\.lr' must be a"):
        mesalab.resolve_config({"optim.lr": "fast"})
    with pytest.raises(ValueError, match=r"data\.kind"):
        mesalab.sequences({"data": {"kind": "chaotic"}})


def test_config_values_from_numpy_and_the_resolved_config():
    config = {"model.layers": np.int64(3), "optim": {"lr": np.float32(0.5)}}
    resolved = mesalab.resolve_config(config)
    assert resolved["model"]["layers"] == 3 and resolved["optim"]["lr"] == 0.5
    assert resolved["data"]["dim"] == 10  # defaults filled in
    keys = {k["key"] for k in mesalab.config_schema()}
    assert {"model.layers", "optim.lr", "train.steps", "data.kind"} <= keys
    with pytest.raises(TypeError):
        mesalab.Model("model.layers=1")
    with pytest.raises(ValueError, match=r"config\.model\.layers"):
        mesalab.Model({"model": {"layers": object()}})


def test_bad_arrays_name_the_argument():
    model = mesalab.Model({"model": {"layers": 1}})
    expected = f"params must be a 1-d array of the model's {model.num_params} parameters"
    with pytest.raises(ValueError, match=expected):
        model.evaluate(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="states must have 3 dimensions"):
        mesalab.build_tokens(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="unknown purpose 'validation'"):
        mesalab.tokens(purpose="validation")


def test_missing_files_name_the_path(tmp_path):
    missing = tmp_path / "nothing.safetensors"
    with pytest.raises(ValueError, match="nothing.safetensors"):
        mesalab.load_checkpoint(str(missing))
    with pytest.raises(ValueError, match="nothing"):
        mesalab.load_run(str(tmp_path / "nothing"))


def test_runtime_failure_is_a_runtime_error_with_the_step(tmp_path):
    config = small_config("nan", debug={"inject_nan_at_step": 4})
    with pytest.raises(RuntimeError, match=r"step 4: non-finite value in the gradient"):
        mesalab.train(config, run_dir=str(tmp_path / "run"))


def test_existing_run_is_refused_without_force(trained_run):
    with pytest.raises(ValueError, match="already exists"):
        mesalab.train(small_config("lsa"), run_dir=str(trained_run))


def test_analysis_that_does_not_apply_says_why():
    model = mesalab.Model({"model": {"layers": 1, "layer": "mesa"}})
    with pytest.raises(ValueError, match="layer 0 is a mesa layer"):
        mesalab.sparsity(model, model.init_params())
