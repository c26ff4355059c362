"""The package as users get it: sdist and wheel built from this tree (python -m build: the wheel is
built from the sdist, as a release would be), installed NON-editable into a new venv (no system
site-packages, no PYTHONPATH) with the emu and pico extras, and run from a folder outside the checkout.

Needs PyPI (or pip's cache) for the dependencies and npm's registry (or its cache) for the emulated
Pico's Node packages, as `make test` does anyway; `make wheel-smoke` runs this file alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
DATA_IN_WHEEL = "memhost/_data/"


@dataclass
class Installed:
    wheel: Path
    venv: Path
    work: Path                  # the current folder of every command: outside the checkout
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / args[0]), *args[1:]], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str, timeout: float = 300) -> str:
        r = self.run(*args, timeout=timeout)
        assert r.returncode == 0, f"{' '.join(args)} -> {r.returncode}: {r.stderr[-1500:]}"
        return r.stdout


def _check(argv: list[str], **kw: object) -> None:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]
    assert r.returncode == 0, f"{' '.join(map(str, argv))}: {(r.stderr or r.stdout)[-2000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    dist, venv, work = root / "dist", root / "venv", root / "work"
    work.mkdir()
    _check([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)])
    wheels = sorted(dist.glob("memhost-*.whl"))
    assert len(wheels) == 1 and list(dist.glob("memhost-*.tar.gz")), sorted(dist.iterdir())
    _check([sys.executable, "-m", "venv", str(venv)])
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("MEMHOST_")}
    # pip keeps its cache (numpy and matplotlib come from it); memhost runs as for a user who never ran it
    _check([str(venv / "bin" / "pip"), "install", "--quiet", f"{wheels[0]}[emu,pico]"], env=env)
    return Installed(wheels[0], venv, work, {**env, "XDG_CACHE_HOME": str(root / "cache")})


def _tracked(*folders: str) -> set[str]:
    out = subprocess.run(["git", "ls-files", "-z", *folders], cwd=REPO, capture_output=True, check=True)
    return {p for p in out.stdout.decode().split("\0") if p}


def test_the_wheel_carries_the_firmware_the_device_model_and_the_pico_byte_for_byte(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as z:
        data = {n[len(DATA_IN_WHEEL):]: z.read(n) for n in z.namelist()
                if n.startswith(DATA_IN_WHEEL) and not n.endswith("/")}
        names = set(z.namelist())
    needed = {p for p in _tracked("firmware/micropython", "hil") if not p.endswith(".gitignore")}
    needed |= {"firmware/rp2-image/firmware.uf2", "firmware/rp2-image/bootrom.bin"}
    assert needed <= set(data), (f"missing from the wheel: {sorted(needed - set(data))}: add them to "
                                 "setup.py SHIPPED and MANIFEST.in")
    for rel, content in data.items():      # one copy in the repository: the wheel's is that file
        assert content == (REPO / rel).read_bytes(), rel
    assert not [n for n in data if "__pycache__" in n or "node_modules" in n]
    assert {"memhost/presets/tio2x-seed.toml", "memhost/presets/gaox.toml",
            "memhost/data/pico_loop.toml"} <= names


def test_the_installed_package_runs_from_the_venv_not_the_checkout(installed: Installed) -> None:
    assert installed.ok("memhost", "--version").split() == ["memhost", VERSION, "(protocol", "2)"]
    out = installed.ok("python", "-c", "import json, memhost, numpy, memhost.paths as p\n"
                       "print(json.dumps([memhost.__file__, numpy.__file__, p.DATA_SOURCE, str(p.FIRMWARE_DIR)]))")
    pkg, np_file, source, firmware = json.loads(out)
    venv = str(installed.venv)
    assert pkg.startswith(venv) and np_file.startswith(venv) and firmware.startswith(venv), out
    assert source == "wheel"
    r = installed.run("python", "-c", "import pytest")      # a clean venv: the test tools are not in it
    assert r.returncode != 0


def test_flash_dry_run_plans_the_wheels_firmware(installed: Installed) -> None:
    from memhost.commands.flash import plan
    out = json.loads(installed.ok("memhost", "flash", "--port", "/dev/ttyACM0", "--board", "pico",
                                  "--dry-run", "--json"))
    assert out["dry_run"] and out["board"] == "pico"
    expected = {c.remote: c.local.read_bytes() for c in plan("pico", REPO / "firmware" / "micropython")}
    got = {f["remote"].lstrip(":"): Path(f["local"]) for f in out["files"]}
    assert set(got) == set(expected) and "memfw/hal/rp2.py" in got and "memfw/hal/sim.py" not in got
    for remote, local in got.items():
        assert str(local).startswith(str(installed.venv)) and local.read_bytes() == expected[remote], remote
    assert out["command"][1:4] == ["-m", "mpremote", "connect"]
    mpremote = installed.run("python", "-m", "mpremote", "--help")     # a core dependency: flash needs it
    assert mpremote.returncode == 0, mpremote.stderr


def test_info_and_levels_on_the_emulated_board(installed: Installed) -> None:
    info = json.loads(installed.ok("memhost", "info", "--port", "emu", "--json"))
    assert info["hal"] == "sim" and info["protocol"] == 2 and info["preset"] == "tio2x-seed"
    for preset in ("tio2x-seed", "gaox"):
        out = json.loads(installed.ok("memhost", "levels", "--port", "emu", "--preset", preset, "-n", "4",
                                      "--cycles", "2", "--json", "--quiet", "--no-plots",
                                      "--out", str(installed.work / "runs")))
        assert out["preset"] == preset and out["results"] == 8 and out["converged_fraction"] == 1.0, out
        assert Path(out["run_dir"]).resolve().is_relative_to(installed.work.resolve())


def test_memhost_emulator_serves_a_port_the_board_tools_open(installed: Installed) -> None:
    proc = subprocess.Popen([str(installed.venv / "bin" / "memhost"), "emulator", "--json", "--preset", "gaox"],
                            cwd=installed.work, env=installed.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        port = json.loads(line)["port"]
        info = json.loads(installed.ok("memhost", "info", "--port", port, "--json"))
        assert info["hal"] == "sim" and info["preset"] == "gaox"
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    assert rc == 0


def test_the_emulated_pico_from_the_wheel(installed: Installed) -> None:
    r = installed.run("memhost", "info", "--port", "emu:pico")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "memhost emulator --board pico --setup" in r.stderr
    setup = installed.ok("memhost", "emulator", "--board", "pico", "--setup")
    assert str(Path(installed.env["XDG_CACHE_HOME"]) / "memhost" / "pico-node") in setup
    info = json.loads(installed.ok("memhost", "info", "--port", "emu:pico", "--json"))
    assert info["hal"] == "rp2" and info["runtime"].startswith("micropython 1.28"), info
