#!/usr/bin/env bash
# Rebuild the pinned MicroPython rp2 image (firmware.uf2, board RPI_PICO) and the RP2040 B1 bootrom
# binary from their public sources. Not part of `make test`: CI has no route to GitHub, so the outputs
# are committed next to this script (see PROVENANCE.md); this is how anyone reproduces them.
#
#   firmware/rp2-image/build.sh [WORKDIR]          # default WORKDIR: ./rp2-image-work (outside git)
#   MIRRORS=/path/to/mirrors firmware/rp2-image/build.sh   # use local bare clones <owner>+<name>/repo
#
# Needs: git, cmake, make, a host C/C++ compiler, python3, and the Arm toolchain
#   (Debian: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
#    cmake build-essential), node is NOT needed (the bootrom is decoded with python3).
# The UF2 embeds the build date, so a rebuild differs from the committed one in a few bytes only;
# the commits below are what make it the same firmware.
set -euo pipefail

if [[ -n "${CI:-}" ]]; then
  echo "build.sh: not run in CI (needs GitHub sources); the committed firmware.uf2 is used instead" >&2
  exit 2
fi

# ---- pinned sources (owner/name commit what) ----------------------------------------------------
MPY_COMMIT=e0e9fbb17ed6fd06bb76e266ae554784c9c80804         # micropython/micropython tag v1.28.0
PICOTOOL_COMMIT=de8ae5ac334e1126993f72a5c67949712fd1e1a4    # raspberrypi/picotool tag 2.1.1
# submodules exactly as `git ls-tree v1.28.0 lib/...` names them (checked again below)
SUBMODULES=(
  "lib/pico-sdk raspberrypi/pico-sdk a1438dff1d38bd9c65dbd693f0e5db4b9ae91779"
  "lib/tinyusb hathach/tinyusb aa0fc2e08f1c2dd6f026a431e8989357fbb4c5bf"
  "lib/mbedtls Mbed-TLS/mbedtls 107ea89daaefb9867ea9121002fbbdf926780e98"
  "lib/micropython-lib micropython/micropython-lib 8380c7bb8f9e5e5260e9539156742925e00366b2"
)
RP2040JS_COMMIT=7701ee065f50a04380f81361befd754810cb9e28    # wokwi/rp2040js tag v1.3.3 (demo/bootrom.ts)

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${1:-$PWD/rp2-image-work}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

# checkout <owner/name> <commit> <dir>: a git work tree at exactly that commit, from GitHub or, with
# $MIRRORS, from local bare clones. A local snapshot may lack a few large blobs the RP2040 build never
# reads (pico-sdk's RP2350.svd, an mbedtls test-data file): those paths are left out by a sparse
# checkout and listed, every other file is checked out from the pinned commit.
checkout() {
  local repo=$1 commit=$2 dir=$3
  if [[ -e "$dir/.git" ]] && [[ "$(git -C "$dir" rev-parse HEAD 2>/dev/null)" == "$commit" ]]; then
    return 0
  fi
  rm -rf "$dir"
  if [[ -n "${MIRRORS:-}" ]]; then
    local src="$MIRRORS/${repo/\//+}/repo" missing
    git clone -q --shared --no-checkout "$src" "$dir"
    missing=$(git -C "$src" ls-tree -r "$commit" | awk '$2 == "blob" {print $3}' |
      git -C "$src" cat-file --batch-check | awk '$2 == "missing" {print $1}')
    if [[ -n "$missing" ]]; then
      local pats=("/*")
      while read -r blob; do
        path=$(git -C "$src" ls-tree -r "$commit" | awk -v b="$blob" '$3 == b {print $4}')
        echo "   $repo: $path absent from the snapshot, left out (not used by the RP2040 build)"
        pats+=("!/$path")
      done <<<"$missing"
      git -C "$dir" sparse-checkout set --no-cone "${pats[@]}"
    fi
  else
    mkdir -p "$dir"
    git -C "$dir" init -q
    git -C "$dir" fetch -q --depth 1 "https://github.com/$repo.git" "$commit"
  fi
  git -C "$dir" -c advice.detachedHead=false checkout -q "$commit"
  [[ "$(git -C "$dir" rev-parse HEAD)" == "$commit" ]] || { echo "build.sh: $repo is not at $commit" >&2; exit 1; }
}

start=$(date +%s)
echo "== sources into $WORK"
checkout micropython/micropython "$MPY_COMMIT" "$WORK/micropython"
for entry in "${SUBMODULES[@]}"; do
  read -r path repo commit <<<"$entry"
  named=$(git -C "$WORK/micropython" ls-tree "$MPY_COMMIT" "$path" | awk '{print $3}')
  [[ "$named" == "$commit" ]] || { echo "build.sh: v1.28.0 names $path at $named, script pins $commit" >&2; exit 1; }
  rmdir "$WORK/micropython/$path" 2>/dev/null || true
  checkout "$repo" "$commit" "$WORK/micropython/$path"
done
checkout raspberrypi/picotool "$PICOTOOL_COMMIT" "$WORK/picotool"
checkout wokwi/rp2040js "$RP2040JS_COMMIT" "$WORK/rp2040js"

echo "== picotool 2.1.1 (no libusb: only its cmake package and UF2 tooling are used)"
cmake -S "$WORK/picotool" -B "$WORK/picotool-build" -DPICO_SDK_PATH="$WORK/micropython/lib/pico-sdk" \
  -DPICOTOOL_NO_LIBUSB=1 -DCMAKE_INSTALL_PREFIX="$WORK/picotool-install" >/dev/null
make -C "$WORK/picotool-build" -j"$JOBS" install >/dev/null

echo "== mpy-cross and the RPI_PICO firmware"
make -C "$WORK/micropython/mpy-cross" -j"$JOBS" >/dev/null
make -C "$WORK/micropython/ports/rp2" BOARD=RPI_PICO -j"$JOBS" \
  CMAKE_ARGS="-Dpicotool_DIR=$WORK/picotool-install/lib/cmake/picotool" >/dev/null

mkdir -p "$WORK/out"
cp "$WORK/micropython/ports/rp2/build-RPI_PICO/firmware.uf2" "$WORK/out/firmware.uf2"
python3 "$HERE/bootrom_from_ts.py" "$WORK/rp2040js/demo/bootrom.ts" "$WORK/out/bootrom.bin"

echo "== done in $(( $(date +%s) - start )) s"
( cd "$WORK/out" && sha256sum firmware.uf2 bootrom.bin )
echo "compare with $HERE/SHA256SUMS (the bootrom must match exactly; the UF2 differs only by its build date)"
echo "copy into the project:  cp $WORK/out/* $HERE/"
