"""examples/single_layer_gd.py runs and shows what it claims: a trained single LSA layer is
its extracted one-step algorithm, close to GD-1, and a single mesa layer is close to least
squares."""

import os
import re
import subprocess
import sys

from conftest import ROOT


def test_single_layer_example():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "single_layer_gd.py"), "--steps", "200"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    losses = {
        label.strip(): float(value)
        for label, value in re.findall(r"^\s+(\S.*?)\s+(\d+\.\d{4})$", result.stdout, re.M)
    }
    assert len(losses) == 7, result.stdout
    lsa = losses["LSA-1, trained"]
    assert lsa < 0.6 * losses["zero predictor"]
    assert abs(losses["RevAlg-1 read off its weights"] / lsa - 1) < 0.03
    assert abs(losses["GD-1 with the model's clip"] / lsa - 1) < 0.10
    assert abs(losses["mesa-1, trained"] / losses["least squares"] - 1) < 0.10
    assert "ratios: LSA-1 / its one-step algorithm" in result.stdout
