# Runs under the real `micropython` (unix port): feeds the FIRMWARE's FrameReader one byte stream
# (hex, one line on stdin) cut into chunks in several ways and prints, per way, the events it produced
# ("F<hex payload>" or "E<code>"), one way per line; also the heap allocated while feeding a long
# burst of bytes without a delimiter (no allocation per byte).
import sys
import gc
import binascii
from memfw import link

stream = binascii.unhexlify(sys.stdin.readline().strip())
events = []
reader = link.FrameReader(lambda mv, n: events.append("F" + binascii.hexlify(bytes(mv[:n])).decode()),
                          lambda code: events.append("E%d" % code))


def run(sizes):
    # chunks of the given sizes in turn (a size cycles), each copied into a 256-byte rx buffer as
    # the server does
    del events[:]
    rx = bytearray(256)
    i = 0
    k = 0
    while i < len(stream):
        n = sizes[k % len(sizes)]
        k += 1
        chunk = stream[i:i + n]
        rx[:len(chunk)] = chunk
        reader.feed(rx, len(chunk))
        i += len(chunk)
    return " ".join(events)


for sizes in ([len(stream) or 1], [1], [2], [3, 1], [7], [64], [255], [1, 2, 3, 5, 8, 13]):
    print(run(sizes))
# a burst with no delimiter, fed in 256-byte chunks: past MAX_ENCODED it is counted, not stored


def alloc_feeding(burst, times):
    # (in a function: a new module global would grow the globals dict, which is heap)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    i = 0
    while i < times:
        reader.feed(burst, 256)
        i += 1
    after = gc.mem_alloc()
    gc.enable()
    return after - before


burst = bytearray(b"\x55" * 256)
alloc_feeding(burst, 1)
print("alloc", alloc_feeding(burst, 400), end=" ")
reader.feed(b"\x00", 1)
print(" ".join(events[-1:]))
# replies: encode_reply(type, seq, body) for bodies of every length 0..240 (byte i = (i * 37 + len) &
# 0xFF: zeros and 0xFF among them), one hex frame a line after a "replies" line
print("replies")
for n in range(241):
    body = bytes([(i * 37 + n) & 0xFF for i in range(n)])
    print(binascii.hexlify(link.encode_reply(0x85, 0x80000000 + n * 65599, body)).decode())
