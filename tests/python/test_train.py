"""Training from Python: the same bits as the CLI, the callback, stopping cleanly."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mesalab
import mesalab_safetensors
from conftest import small_config


def metrics(run_dir):
    with open(run_dir / "metrics.jsonl") as f:
        return [json.loads(line) for line in f]


def checkpoint_tensors(path):
    return mesalab_safetensors.load(path)[0]


@pytest.mark.parametrize("layer", ["lsa", "mesa"])
def test_training_is_bit_identical_to_the_cli(tmp_path, cli, layer):
    config = small_config(f"same_{layer}", model={"layer": layer})
    config["train"]["runs_dir"] = str(tmp_path / "cli")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    from_cli = cli("train", "--config", config_file, "--quiet", "--json")

    run_dir = tmp_path / "python"
    from_python = mesalab.train(config, run_dir=str(run_dir))

    assert from_python["steps"] == from_cli["steps"] == 30
    assert from_python["test_loss"] == from_cli["test_loss"]
    assert from_python["test_curve"].tolist() == from_cli["test_curve"]
    cli_metrics = metrics(tmp_path / "cli" / config["name"])
    python_metrics = metrics(run_dir)
    assert [m["step"] for m in python_metrics] == [0, 10, 20, 30]
    for key in ("test_loss", "train_loss", "lr"):
        assert [m[key] for m in python_metrics] == [m[key] for m in cli_metrics], key
    a = checkpoint_tensors(run_dir / "ckpt" / "latest.safetensors")
    b = checkpoint_tensors(tmp_path / "cli" / config["name"] / "ckpt" / "latest.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].tobytes() == b[name].tobytes(), name


def test_callback_sees_every_evaluation(tmp_path):
    seen = []

    def on_evaluation(step, params, test_loss):
        seen.append((step, params, test_loss))

    run_dir = tmp_path / "run"
    result = mesalab.train(small_config("callback"), run_dir=str(run_dir), callback=on_evaluation)
    logged = metrics(run_dir)
    assert [s for s, _, _ in seen] == [m["step"] for m in logged] == [0, 10, 20, 30]
    assert [loss for _, _, loss in seen] == [m["test_loss"] for m in logged]
    # Each call gets its own copy of the parameters the loss was measured on.
    model = mesalab.Model(small_config("callback"))
    assert all(p.dtype == np.float32 and p.shape == (model.num_params,) for _, p, _ in seen)
    assert np.array_equal(seen[0][1], model.init_params())
    final = mesalab.load_run(str(run_dir))["params"]
    assert np.array_equal(seen[-1][1], final)
    assert not np.array_equal(seen[1][1], seen[2][1])
    for step, params, loss in seen:
        assert model.evaluate(params).mean() == pytest.approx(loss, rel=1e-12, abs=0)
    assert result["test_loss"] == seen[-1][2]


def test_an_exception_in_the_callback_stops_after_a_checkpoint(tmp_path):
    config = small_config("stop")
    run_dir = tmp_path / "run"

    class Stop(Exception):
        pass

    def stop_at_10(step, params, test_loss):
        if step == 10:
            raise Stop("enough")

    with pytest.raises(Stop, match="enough"):
        mesalab.train(config, run_dir=str(run_dir), callback=stop_at_10)
    # The step in progress (10) finished and its checkpoint was written.
    assert mesalab.load_run(str(run_dir))["step"] == 11
    assert [m["step"] for m in metrics(run_dir)] == [0, 10]

    resumed = mesalab.train(run_dir=str(run_dir), resume=True)
    straight = mesalab.train(config, run_dir=str(tmp_path / "straight"))
    assert resumed["test_curve"].tolist() == straight["test_curve"].tolist()
    for a, b in zip(metrics(run_dir), metrics(tmp_path / "straight")):
        assert (a["step"], a["test_loss"], a["train_loss"]) == (
            b["step"],
            b["test_loss"],
            b["train_loss"],
        )


def test_ctrl_c_stops_cleanly_after_a_checkpoint(tmp_path):
    """SIGINT to a Python process that trains: KeyboardInterrupt after the step's checkpoint,
    and the run resumes to the bits of an uninterrupted one."""
    config = small_config("interrupted")
    config["train"].update(steps=100000, eval_every=1)
    run_dir = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import sys, mesalab
        def ready(step, params, loss):
            if step == 3:
                print("ready", flush=True)
        try:
            mesalab.train({config!r}, run_dir={str(run_dir)!r}, callback=ready)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 3 and out.strip() == "interrupted"
    stopped_at = mesalab.load_run(str(run_dir))["step"]
    assert 4 <= stopped_at < 100000
    assert metrics(run_dir)[-1]["step"] == stopped_at - 1

    steps = stopped_at + 3
    resumed = mesalab.train(
        dict(config, train=dict(config["train"], steps=steps)), run_dir=str(run_dir), resume=True
    )
    straight = mesalab.train(
        dict(config, train=dict(config["train"], steps=steps)), run_dir=str(tmp_path / "straight")
    )
    assert resumed["test_curve"].tolist() == straight["test_curve"].tolist()
