"""The board commands of the CLI, run as a user would (subprocess), on the emulated board."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import serial

from memhost import PROTOCOL_VERSION, __version__
from memhost import protocol as P

MEMHOST = [sys.executable, "-m", "memhost"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(MEMHOST + list(args), capture_output=True, text=True, timeout=timeout)


def test_version_names_the_protocol() -> None:
    out = run("--version")
    assert out.returncode == 0 and f"memhost {__version__} (protocol {PROTOCOL_VERSION})" in out.stdout


def test_info_json_shows_firmware_protocol_and_sim_hal() -> None:
    out = run("info", "--port", "emu", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["protocol"] == PROTOCOL_VERSION and info["hal"] == "sim"
    assert info["firmware_version"] == "%d.%d.%d" % (info["fw_major"], info["fw_minor"], info["fw_patch"])
    assert info["preset"] == "tio2x-seed"


def test_info_selects_the_preset_of_the_emulated_board() -> None:
    out = run("info", "--port", "emu", "--preset", "gaox", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["preset"] == "gaox"


def test_program_json_reports_a_converged_result() -> None:
    g = json.loads(run("read", "--port", "emu", "--json").stdout)["g"]
    out = run("program", str(g * 1.02), "--tolerance", str(g * 1e-3), "--algorithm", "ispp",
              "--port", "emu", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["status"] == "converged" and abs(r["error"]) <= g * 1e-3


def test_user_mistakes_get_one_line_and_exit_2_without_traceback() -> None:
    for args in (("program", "nan", "--port", "emu"),
                 ("pulse", "9", "1e-4", "--port", "emu"),
                 ("info", "--port", "emu", "--preset", "no-such-preset"),
                 ("info", "--port", "/dev/no-such-port")):
        out = run(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr
        assert out.stderr.startswith("memhost: error: "), out.stderr


def test_read_window_is_centred_or_refused_with_what_it_needs() -> None:
    """The board centres its ADC on --window (CONFIG win_lo/win_hi); a window its front end cannot
    hold is refused, one line, with the read bias that would hold it (docs/hardware.md)."""
    g = json.loads(run("read", "--port", "emu", "--json", "--window", "0.95e-3", "1.25e-3").stdout)["g"]
    assert 0.95e-3 < g < 1.25e-3
    out = run("read", "--port", "emu", "--window", "0.9e-3", "5e-3")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "use a read bias <= " in out.stderr and "Traceback" not in out.stderr


def test_ports_json_lists_ports() -> None:
    out = run("ports", "--json")
    assert out.returncode == 0 and isinstance(json.loads(out.stdout)["ports"], list)


def test_emulator_command_prints_a_port_another_client_can_use() -> None:
    proc = subprocess.Popen(MEMHOST + ["emulator", "--preset", "gaox"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/")
        with serial.Serial(port, 115200, timeout=2, exclusive=True) as ser:
            ser.write(P.encode_frame(P.Hello(1), 1))
            buf = b""
            deadline = time.monotonic() + 5
            while not buf.endswith(b"\x00") and time.monotonic() < deadline:
                buf += ser.read(1)
        info = P.decode_frame(buf).message
        assert isinstance(info, P.Info) and info.preset == "gaox"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_a_read_outside_the_adc_window_is_refused_with_what_to_set_not_a_clipped_value() -> None:
    """tio2x-seed reads about 1.0-1.19 mS: a window at 1.3-1.4 mS puts it below the ADC's zero, where
    every conversion clips; the board says so (ADC_RANGE) instead of returning the window's edge."""
    out = run("read", "--port", "emu", "--window", "1.3e-3", "1.4e-3")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "ADC_RANGE" in out.stderr and "--window" in out.stderr
    assert "below the window" in out.stderr and "Traceback" not in out.stderr
