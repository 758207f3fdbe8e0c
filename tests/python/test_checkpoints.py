"""Checkpoints and safetensors files between mesalab and plain numpy, in both directions."""

import json

import numpy as np
import pytest

import mesalab
import mesalab_safetensors

ARRAYS = {
    "f32": np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4),
    "f64": np.array([np.pi, -0.0, 1e-300, np.inf]),
    "i64": np.arange(-3, 3, dtype=np.int64).reshape(3, 2),
    "i32": np.array([7, -7], dtype=np.int32),
    "u8": np.arange(5, dtype=np.uint8),
    "scalar": np.array(2.5, dtype=np.float32),
    "empty": np.zeros((0, 3), dtype=np.float64),
}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name


def test_arrays_from_mesalab_read_by_numpy(tmp_path):
    path = tmp_path / "a.safetensors"
    mesalab.save_safetensors(str(path), ARRAYS, {"note": "from mesalab"})
    tensors, metadata = mesalab_safetensors.load(path)
    assert metadata == {"note": "from mesalab"}
    assert list(tensors) == list(ARRAYS)  # the dict's order is the file's order
    assert_same(tensors, ARRAYS)


def test_arrays_from_numpy_read_by_mesalab(tmp_path, cli):
    path = tmp_path / "b.safetensors"
    transposed = {"t": np.arange(6.0).reshape(2, 3).T}  # not C-contiguous: written in C order
    mesalab_safetensors.save(path, {**ARRAYS, **transposed}, {"note": "from numpy"})
    loaded = mesalab.load_safetensors(str(path))
    assert loaded["metadata"] == {"note": "from numpy"}
    assert_same(loaded["tensors"], {**ARRAYS, "t": np.ascontiguousarray(transposed["t"])})
    listing = cli("inspect", path, "--json")
    assert "t" in json.dumps(listing)


def test_unsupported_dtype_is_refused(tmp_path):
    with pytest.raises(ValueError, match="complex"):
        mesalab.save_safetensors(str(tmp_path / "c.safetensors"), {"z": np.zeros(2, np.complex64)})


def test_checkpoint_read_by_numpy(trained_run):
    run = mesalab.load_run(str(trained_run))
    tensors, metadata = mesalab_safetensors.load(trained_run / "ckpt" / "latest.safetensors")
    assert metadata["format"] == "mesalab-checkpoint"
    assert int(metadata["step"]) == run["step"] == 30
    assert json.loads(metadata["config"]) == run["config"]
    model = run["model"]
    params = model.split(run["params"])
    moments = model.split(run["adam_m"])
    assert list(model.tensors) == list(params)
    for name, shape in model.tensors.items():
        assert tensors[name].shape == shape
        assert tensors[name].tobytes() == params[name].tobytes(), name
        assert tensors["optim.m." + name].tobytes() == moments[name].tobytes(), name
    assert tensors["train.loss_accumulator"].dtype == np.float64


def test_checkpoint_written_by_numpy_loads_in_mesalab(trained_run, tmp_path, cli):
    tensors, metadata = mesalab_safetensors.load(trained_run / "ckpt" / "latest.safetensors")
    edited = {name: np.array(t) for name, t in tensors.items()}
    edited["layers.0.q"] *= 2
    stale = tmp_path / "stale.safetensors"
    mesalab_safetensors.save(stale, edited, metadata)
    # The stored checksum no longer matches the data: mesalab refuses the file.
    with pytest.raises(ValueError, match="checksum"):
        mesalab.load_checkpoint(str(stale))

    # Without a checksum (an external writer's file) it loads, with a note.
    path = tmp_path / "edited.safetensors"
    unverified = {k: v for k, v in metadata.items() if k != "data_checksum"}
    mesalab_safetensors.save(path, edited, unverified)
    loaded = mesalab.load_checkpoint(str(path))
    assert loaded["step"] == 30
    params = loaded["model"].split(loaded["params"])
    for name in loaded["model"].tensors:
        assert params[name].tobytes() == edited[name].tobytes(), name
    cli("inspect", path, "--json")


def test_checkpoint_round_trip_through_mesalab(trained_run, tmp_path, cli):
    run = mesalab.load_run(str(trained_run))
    path = tmp_path / "saved.safetensors"
    params = run["params"] + np.float32(0.5)
    mesalab.save_checkpoint(str(path), run["model"], params, run["adam_m"], run["adam_v"], step=7)
    loaded = mesalab.load_checkpoint(str(path))
    assert loaded["step"] == 7
    assert loaded["params"].tobytes() == params.tobytes()
    assert loaded["adam_v"].tobytes() == run["adam_v"].tobytes()
    assert loaded["config"] == run["config"]
    out = cli("inspect", "--verify", path, json_output=False)
    assert "ok" in out.lower()


def test_split_views_write_through():
    model = mesalab.Model({"model": {"layers": 1}})
    params = model.init_params(seed=5)
    views = model.split(params)
    assert sum(v.size for v in views.values()) == params.size == model.num_params
    views["layers.0.q"][...] = 1.0
    first = list(model.tensors).index("layers.0.q")
    offset = sum(views[n].size for n in list(model.tensors)[:first])
    assert (params[offset : offset + views["layers.0.q"].size] == 1.0).all()
