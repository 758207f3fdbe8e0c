"""Shared fixtures of the Python suite.

Run from the repository root after building (ctest runs it as the test python.pytest):
    PYTHONPATH=build/python python3 -m pytest tests/python
MESALAB_BINARY names the CLI the results are compared with (default: build/mesalab).
"""

import json
import os
import pathlib
import subprocess

import pytest

import mesalab

ROOT = pathlib.Path(__file__).resolve().parents[2]


def small_config(name, **sections):
    """A config that trains in a fraction of a second: the paper's data (D = 10) cut to
    T = 10, small batches, evaluations every 10 steps. Keyword sections update the nested
    dict, e.g. model={"layer": "mesa"}."""
    config = {
        "name": name,
        "data": {"seq_len": 10},
        "model": {"layers": 1, "heads": 2, "key_size": 8},
        "train": {
            "steps": 30,
            "batch_size": 16,
            "eval_every": 10,
            "test_batches": 2,
            "test_batch_size": 16,
            "checkpoint_every": 1000,
        },
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


@pytest.fixture(scope="session")
def binary():
    path = pathlib.Path(os.environ.get("MESALAB_BINARY", ROOT / "build" / "mesalab"))
    assert path.is_file(), f"the mesalab CLI is not built at {path}"
    return path


@pytest.fixture(scope="session")
def cli(binary):
    """Runs `mesalab ARGS...`; returns stdout parsed as JSON when json=True."""

    def run(*args, json_output=True, cwd=None):
        result = subprocess.run(
            [str(binary), *map(str, args)], capture_output=True, text=True, cwd=cwd
        )
        assert result.returncode == 0, f"mesalab {' '.join(map(str, args))}: {result.stderr}"
        return json.loads(result.stdout) if json_output else result.stdout

    return run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A 1-layer LSA trained from Python for 30 steps: its run directory."""
    run_dir = tmp_path_factory.mktemp("runs") / "lsa"
    mesalab.train(small_config("lsa"), run_dir=str(run_dir))
    return run_dir
