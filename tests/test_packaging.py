"""The distribution (issue 18): the wheel carries both licences and says so in its metadata,
and the installed command reports its version."""

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import steepest

ROOT = Path(__file__).resolve().parent.parent
LICENCES = ["LICENSE", "steepest/data/mnist/LICENSE"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the sources, so the build leaves nothing in the tree
    (setuptools writes build/ and *.egg-info beside pyproject.toml)."""
    import setuptools  # the dev extra, which README's set-up installs, brings setuptools>=77

    assert int(setuptools.__version__.split(".")[0]) >= 77, (
        f"setuptools {setuptools.__version__} < 77 cannot write license-files: "
        f"pip install -e '.[dev]' brings a newer one")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "steepest", source / "steepest",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nb[ic]", "*.py[co]"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                          "--no-build-isolation", "--no-index", "-q", "-w", str(tmp / "dist")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (path,) = (tmp / "dist").glob("steepest-*.whl")
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()
                if ".dist-info/" in name or name.endswith("LICENSE")}


def _dist_info(wheel, name):
    (found,) = [path for path in wheel if path.endswith(f".dist-info/{name}")]
    return wheel[found].decode()


def test_the_wheel_carries_both_licences(wheel):
    for licence in LICENCES:
        key = next((path for path in wheel if path.endswith(f".dist-info/licenses/{licence}")),
                   None)
        assert key is not None, f"{licence} missing from the wheel's dist-info: {sorted(wheel)}"
        assert wheel[key] == (ROOT / licence).read_bytes()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    mnist = (ROOT / LICENCES[1]).read_text()
    assert "CC BY-SA 3.0" in mnist and "LeCun" in mnist and "Cortes" in mnist
    assert "Burges" in mnist
    # and beside the data in the installed package
    assert "steepest/data/mnist/LICENSE" in wheel


def test_the_wheel_metadata_names_the_licences_and_authors(wheel):
    metadata = email.message_from_string(_dist_info(wheel, "METADATA"))
    assert metadata["License-Expression"] == "MIT AND CC-BY-SA-3.0"
    assert sorted(metadata.get_all("License-File")) == sorted(LICENCES)
    assert metadata["Author"] == "The steepest developers"
    assert metadata["Version"] == steepest.__version__
    assert metadata.get_all("Project-URL") is None  # no public URL exists yet: none invented


def test_the_wheel_installs_the_steepest_command(wheel):
    entry_points = _dist_info(wheel, "entry_points.txt")
    assert "steepest = steepest.cli:main" in entry_points


def test_version_from_python_m_and_the_installed_command():
    expected = f"steepest {steepest.__version__}\n"
    out = subprocess.run([sys.executable, "-m", "steepest", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, expected), out.stderr
    script = Path(sys.executable).with_name("steepest")
    # README's set-up (pip install -e .) writes the entry point beside the interpreter
    assert script.exists(), f"no {script}: install steepest with pip install -e '.[dev]'"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, expected), out.stderr
