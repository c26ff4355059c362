# Runs under the real `micropython`: for each hex line on stdin, prints the FIRMWARE's COBS encoding
# of those bytes and its own decoding of the `cobs` package's encoding (given after a space), in hex.
import sys
import binascii
from memfw import link

out = bytearray(2048)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    parts = line.split()
    data = binascii.unhexlify(parts[0]) if parts and parts[0] != "-" else b""
    ref = binascii.unhexlify(parts[1]) if len(parts) > 1 and parts[1] != "-" else b""
    enc = link.cobs_encode(data)
    n = link.cobs_decode(ref, out)
    dec = bytes(out[:n]) if n >= 0 else b"ERR"
    print((binascii.hexlify(enc).decode() or "-") + " " + (binascii.hexlify(dec).decode() or "-"))
