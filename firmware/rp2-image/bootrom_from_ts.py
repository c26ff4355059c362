"""Decode rp2040js's demo/bootrom.ts (the RP2040 B1 bootrom as a Uint32Array) into its 16 KiB binary."""

import re
import struct
import sys

BOOTROM_BYTES = 16 * 1024  # the RP2040 mask ROM at 0x00000000


def main(ts_path: str, out_path: str) -> None:
    text = open(ts_path, encoding="utf-8").read()
    body = text[text.index("new Uint32Array([") :]
    words = [int(w, 16) for w in re.findall(r"0x([0-9a-fA-F]{1,8})", body)]
    data = struct.pack(f"<{len(words)}I", *words)
    if len(data) != BOOTROM_BYTES:
        sys.exit(f"bootrom_from_ts: {ts_path} holds {len(data)} bytes, expected {BOOTROM_BYTES}")
    with open(out_path, "wb") as out:
        out.write(data)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: bootrom_from_ts.py demo/bootrom.ts bootrom.bin")
    main(sys.argv[1], sys.argv[2])
