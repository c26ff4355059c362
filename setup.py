"""One build step on top of pyproject.toml: the wheel carries the files the tools run from.

The repository keeps one copy of the firmware tree, the emulated device and the emulated Pico at their
own paths (firmware/, hil/); a wheel copies them, same relative layout, into memhost/_data/, where
memhost.paths finds them when the package is not in a checkout. Editable installs copy nothing: they
run from the checkout. An sdist holds the same sources (MANIFEST.in), so a wheel built from it has
them too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent

# (folder in the repository, glob patterns in it): copied to memhost/_data/<folder>/. What each is for:
# memhost.paths (docstring). Generated files (node_modules, __pycache__, build work folders) stay out.
SHIPPED = [
    ("firmware/micropython", ["main.py", "memfw/**/*.py"]),
    ("firmware/rp2-image", ["firmware.uf2", "bootrom.bin", "SHA256SUMS", "PROVENANCE.md", "LICENSES/*"]),
    ("hil", ["*.py"]),
    ("hil/pico", ["pico.js", "device.py", "package.json", "package-lock.json", "README.md"]),
]


def shipped_files(root: Path = HERE) -> list[str]:
    """The repository paths (posix, relative to root) a wheel carries under memhost/_data/."""
    out: set[str] = set()
    for folder, patterns in SHIPPED:
        for pattern in patterns:
            for f in (root / folder).glob(pattern):
                if f.is_file() and "__pycache__" not in f.parts:
                    out.add(f.relative_to(root).as_posix())
    return sorted(out)


class build_py_with_data(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        files = shipped_files()
        if not any(f.endswith("firmware/micropython/main.py") for f in files):
            raise SystemExit(f"memhost build: no firmware/micropython/main.py under {HERE}")
        dest = Path(self.build_lib) / "memhost" / "_data"
        shutil.rmtree(dest, ignore_errors=True)
        for rel in files:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / rel, target)


setup(cmdclass={"build_py": build_py_with_data})
