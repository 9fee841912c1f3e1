"""Every script under examples/ runs from the command line and prints the tutorial's numbers."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name):
    out = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True,
                         timeout=120, cwd=EXAMPLES.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def numbers(line):
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", line)]


def test_every_example_is_tested():
    tested = {"house_prices.py", "linear_regression_methods.py", "descent_1d.py",
              "descent_2d.py", "perceptron_logic.py", "optimizers.py", "gradient_health.py",
              "tutorial_networks.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_house_prices():
    lines = run("house_prices.py").splitlines()
    assert lines[0] == "MSE of predictions 90, 130, 95: 141.67"
    first = numbers(lines[1])
    assert all(b < a for a, b in zip(first, first[1:]))
    assert lines[2].endswith(": True")
    (w_gd, b_gd), (w_ls, b_ls) = numbers(lines[3]), numbers(lines[4])
    assert w_gd == pytest.approx(w_ls, abs=0.05) and b_gd == pytest.approx(b_ls, abs=0.1)
    assert numbers(lines[5])[-1] == pytest.approx(133.3, abs=0.1)


def test_linear_regression_methods_reach_lstsq():
    lines = run("linear_regression_methods.py").splitlines()
    rows = {line.split(":")[0]: numbers(line)[-1] for line in lines[1:]}
    assert set(rows) == {"batch", "sgd", "minibatch"}
    assert rows["batch"] < 0.002 and rows["minibatch"] < 0.01 and rows["sgd"] < 0.02


def test_descent_1d():
    lines = run("descent_1d.py").splitlines()
    assert lines[1] == "lr 0.3: 5, 2, 0.8, 0.32, 0.128, 0.0512, 0.02048  diverged=False"
    assert lines[2] == "lr 1.0: 5, -5, 5, -5, 5, -5, 5  diverged=False"
    assert lines[3].startswith("lr 1.1: 5, -6, 7.2, -8.64") and lines[3].endswith("diverged=True")


def test_descent_2d_path_bends():
    lines = run("descent_2d.py").splitlines()
    first_direction, last_direction = numbers(lines[0])[-1], numbers(lines[-2])[-1]
    assert first_direction < -60 and abs(last_direction) < 1
    assert numbers(lines[-1])[0] > 60


def test_perceptron_logic():
    out = run("perceptron_logic.py")
    assert "perceptron AND: predictions [0, 0, 0, 1] accuracy 1.00 converged True" in out
    assert "perceptron OR: predictions [0, 1, 1, 1] accuracy 1.00 converged True" in out
    xor = next(line for line in out.splitlines() if line.startswith("perceptron XOR"))
    assert "converged False" in xor and numbers(xor.split("accuracy")[1])[0] <= 0.75
    assert out.splitlines()[-1].endswith("predictions [0, 1, 1, 0]")


def test_optimizers_example():
    # "NAME MSE after 1 epoch A, after 40 B" -> (A, B)
    rows = {line.split()[0]: numbers(line)[1::2] for line in run("optimizers.py").splitlines()}
    assert list(rows) == ["SGD", "Momentum", "Adagrad", "RMSProp", "Adam"]
    finals = {name: values[-1] for name, values in rows.items()}
    # every optimiser lowers the MSE; on this narrow valley each one beats plain SGD
    assert all(after < first for first, after in rows.values())
    assert all(finals[name] < finals["SGD"] / 10 for name in finals if name != "SGD")


def test_gradient_health_example():
    lines = run("gradient_health.py").splitlines()
    norms = [numbers(line)[-1] for line in lines[:5]]
    assert norms == sorted(norms) and norms[-1] > 50 * norms[0]


def test_tutorial_networks_example():
    lines = run("tutorial_networks.py").splitlines()
    assert lines[0] == "784-16-16-10: 12,960 weights + 42 biases = 13,002 parameters"
    assert lines[1] == "784-30-10: 23,820 weights + 40 biases = 23,860 parameters"
