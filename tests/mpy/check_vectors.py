# Runs under the real `micropython` (unix port): checks the FIRMWARE codec against tests/vectors.
# Usage: MICROPYPATH=firmware/micropython micropython tests/mpy/check_vectors.py tests/vectors/frames.json
import sys
import json
import struct
import binascii
from memfw import link
from memfw import protocol as P

REPLY_LAYOUT = {P.READING: P.READING_LAYOUT, P.PULSED: P.PULSED_LAYOUT, P.RESULT: P.RESULT_LAYOUT,
                P.ACK: P.ACK_LAYOUT, P.CONFIG: P.CONFIG_LAYOUT, P.BUSY: P.BUSY_LAYOUT}
failures = []
checked = 0


def fail(name, why):
    failures.append(name + ": " + why)


def firmware_body(mtype, values):
    """The body the firmware would put on the wire for this message."""
    if mtype in (P.PING, P.PONG):
        return binascii.unhexlify(values[0])
    if mtype == P.INFO:                     # 21 fixed values, 3 strings, then the optional trailer
        fixed = struct.pack(P.INFO_FIXED, *values[:21])
        extra = values[24:]                 # mem_free, runtime: sent when reported (as the host does)
        if not (extra and (extra[0] or extra[1])):
            extra = [None, ""]
        return P.info_body(fixed, values[21:24], extra[0], extra[1])
    if mtype == P.ERROR:
        return struct.pack(P.ERROR_FIXED, values[0], values[1]) + values[2].encode()
    if mtype == P.TRACE_DATA:
        return P.trace_body(values[0], values[1], values[2], binascii.unhexlify(values[3]))
    layout = P.CMD_LAYOUT.get(mtype, REPLY_LAYOUT.get(mtype))
    return struct.pack(layout, *values) if layout else b""


with open(sys.argv[1]) as f:
    doc = json.load(f)
if doc["protocol_version"] != P.PROTOCOL_VERSION:
    fail("version", "vectors are protocol %d, firmware %d" % (doc["protocol_version"], P.PROTOCOL_VERSION))

for v in doc["frames"]:
    name = "%s seq %d" % (v["name"], v["seq"])
    wire = binascii.unhexlify(v["wire"])
    got = []
    errs = []
    reader = link.FrameReader(lambda mv, n: got.append(bytes(mv[:n])), errs.append)
    reader.feed(wire, len(wire))
    if errs or len(got) != 1:
        fail(name, "decode: errors %r, frames %d" % (errs, len(got)))
        continue
    payload = got[0]
    ver, mtype, seq = struct.unpack(P.HEADER, payload[:P.HEADER_SIZE])
    if (ver, mtype, seq) != (v["version"], v["type"], v["seq"]):
        fail(name, "header %r" % ((ver, mtype, seq),))
    body = firmware_body(mtype, v["values"])
    if body != payload[P.HEADER_SIZE:]:
        fail(name, "body bytes differ")
    header = struct.pack(P.HEADER, v["version"], v["type"], v["seq"])
    if link.encode_frame(header + body) != wire:
        fail(name, "firmware encoding differs from the vector")
    checked += 1

for b in doc["bad_frames"]:
    wire = binascii.unhexlify(b["wire"])
    got = []
    errs = []
    reader = link.FrameReader(lambda mv, n: got.append(1), errs.append)
    reader.feed(wire, len(wire))
    if got or errs != [b["error_code"]]:
        fail("bad frame " + b["why"], "frames %d errors %r, expected error %d" % (
            len(got), errs, b["error_code"]))
    checked += 1

for f in failures:
    print("FAIL " + f)
print("checked %d failed %d" % (checked, len(failures)))
