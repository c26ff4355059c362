# Byte layouts of the wire protocol (mirror of host/memhost/protocol.py; pinned by tests/vectors/).
# Header: <BBI = protocol version, message type, sequence number. Bodies little-endian, SI units.
import struct
from micropython import const

PROTOCOL_VERSION = const(2)
FW_VERSION = (0, 2, 0)
HEADER = "<BBI"
HEADER_SIZE = const(6)
MAX_BODY = const(240)
SEQ_UNSOLICITED = const(0)      # ERROR frames whose command's sequence number could not be trusted

# commands (host -> board)
HELLO = const(0x01)
PING = const(0x02)
READ = const(0x03)
PULSE = const(0x04)
PROGRAM = const(0x05)
ABORT = const(0x06)
CONFIG_GET = const(0x07)
CONFIG_SET = const(0x08)
WAIT = const(0x09)
REPL = const(0x0A)
TRACE = const(0x0B)
# replies (board -> host)
INFO = const(0x81)
PONG = const(0x82)
READING = const(0x83)
PULSED = const(0x84)
RESULT = const(0x85)
ACK = const(0x86)
CONFIG = const(0x87)
BUSY = const(0x88)           # heartbeat while a command runs (never cached, not a reply)
TRACE_DATA = const(0x89)
ERROR = const(0xFF)

# fixed command body layouts; the body length must match exactly (PING: 0..MAX_BODY bytes)
CMD_LAYOUT = {
    HELLO: "<BI",           # flags (bit0 = new host session: clears the reply cache), host nonce
    READ: "<Hf",            # n reads (1..1000), read voltage V (0 = CONFIG read_v)
    PULSE: "<ff",           # amplitude V (signed), width s
    PROGRAM: "<ffBBHffff",  # target S, tolerance S, algorithm, n_reads, max_pulses, p0..p3
    ABORT: "",
    CONFIG_GET: "<B",       # key
    CONFIG_SET: "<Bf",      # key, value
    WAIT: "<f",             # seconds
    REPL: "",
    TRACE: "<I",            # absolute index of the first pulse record wanted
}
CMD_SIZE = {HELLO: 5, READ: 6, PULSE: 8, PROGRAM: 28, ABORT: 0, CONFIG_GET: 1, CONFIG_SET: 5,
            WAIT: 4, REPL: 0, TRACE: 4}

INFO_FIXED = "<BBBBBBIffffffHHIIIIII"   # then 3 strings, each u8 length + UTF-8: board, hal, preset
INFO_TRAILER = "<I"             # then: mem_free (bytes, 0 = not reported) and a 4th string: runtime
READING_LAYOUT = "<ffHI"       # g S, g_std S, n, elapsed_us
PULSED_LAYOUT = "<ffI"         # amplitude V, width s, elapsed_us
RESULT_LAYOUT = "<BBffHHIf"    # status, algorithm, g S, error S, pulses, reads, elapsed_us, overhead_us/iter
ACK_LAYOUT = "<I"              # a count (ABORT: commands aborted), else 0
CONFIG_LAYOUT = "<Bf"          # key, value in force
BUSY_LAYOUT = "<I"             # ms the command has run so far
ERROR_FIXED = "<BB"            # code, the message type it answers (0 if unknown); then UTF-8 message
TRACE_FIXED = "<IIHB"          # first index sent, next index to be written, ring length, records;
TRACE_RECORD = "<IHffffi"      # then each: PROGRAM seq, k, amplitude V (signed), width s, g_before S,
TRACE_RECORD_SIZE = const(26)  # g_after S, dt µs (-1: none)

# PROGRAM algorithms
ALG_ISPP = const(0)
ALG_ADAPTIVE = const(1)
ALG_LEARNED = const(2)

# RESULT status
ST_CONVERGED = const(0)
ST_MAX_PULSES = const(1)
ST_OUT_OF_RANGE = const(2)
ST_ABORTED = const(3)
ST_LIMIT = const(4)

# ERROR codes
E_CRC = const(1)
E_COBS = const(2)
E_TOO_LONG = const(3)
E_UNKNOWN_TYPE = const(4)
E_BAD_LENGTH = const(5)
E_OUT_OF_RANGE = const(6)
E_VERSION = const(7)
E_QUEUE_FULL = const(8)
E_SAFETY = const(9)
E_INTERNAL = const(10)
E_STALE_SEQ = const(11)
E_ABORTED = const(12)
E_UNKNOWN_KEY = const(13)
E_SEQ_REUSED = const(14)        # a seq already used by a different frame (not executed)
E_ADC_RANGE = const(15)         # a read on an ADC rail, or a window the front end cannot hold
E_NO_SESSION = const(16)        # a command before any HELLO since the board started (not executed)

# CONFIG keys (value always float32 on the wire)
K_MAX_V = const(1)          # V, |pulse amplitude| limit (<= ABS_MAX_V)
K_MIN_WIDTH = const(2)      # s
K_MAX_WIDTH = const(3)      # s
K_MAX_PULSES = const(4)     # pulses per PROGRAM
K_READ_V = const(5)         # V, read bias
K_MAX_READ_V = const(6)     # V
K_N_READS = const(7)        # default reads averaged per verify
K_SETTLE = const(8)         # s, wait before the final verify
K_V_SET_START = const(9)    # V
K_V_RESET_START = const(10)  # V (magnitude)
K_V_STEP = const(11)        # V
K_WIDTH = const(12)         # s, default pulse width
K_V_SET_MAX = const(13)     # V, ISPP ramp ceiling (magnitude; clipped to max_v)
K_MAX_READS = const(14)     # adaptive: most reads averaged per verify (docs/algorithms.md)
# adaptive: device-type prior per polarity (docs/algorithms.md); v or dg 0 = no prior (search)
K_PRIOR_SET_V = const(15)       # V, SET amplitude the prior response refers to
K_PRIOR_SET_DG = const(16)      # S, |dG| per pulse at that amplitude
K_PRIOR_SET_SLOPE = const(17)   # octaves of |dG| per V (0 = the built-in default)
K_PRIOR_RESET_V = const(18)     # V (magnitude)
K_PRIOR_RESET_DG = const(19)    # S
K_PRIOR_RESET_SLOPE = const(20)  # octaves per V
# adaptive: device-type relaxation (docs/algorithms.md); either 0 = not tracked
K_PRIOR_RELAX_FRAC = const(21)  # volatile fraction of every state change (0..0.5)
K_PRIOR_RELAX_TAU = const(22)   # s, its decay time
# the read window (S): the board centres it on its ADC (read-bias and offset DAC codes) and refuses a
# window its front end cannot hold, with the number it would need; 0 = none (docs/hardware.md)
K_WIN_LO = const(23)
K_WIN_HI = const(24)
K_TRACE = const(25)         # records of the pulse-trace ring (0 = off; docs/traces.md)
# learned: the pulse predictor (memfw/learned.py, docs/algorithms.md): per polarity log2|dG| (S) =
# c0 + c1 v + c2 v^2 + cg log2 G, not below v_lo V; all c 0 = no model
K_LM_SET_C0 = const(26)
K_LM_SET_C1 = const(27)
K_LM_SET_C2 = const(28)
K_LM_SET_CG = const(29)
K_LM_SET_VLO = const(30)
K_LM_RESET_C0 = const(31)
K_LM_RESET_C1 = const(32)
K_LM_RESET_C2 = const(33)
K_LM_RESET_CG = const(34)
K_LM_RESET_VLO = const(35)
K_LM_CAUTION = const(36)    # octaves a polarity's first seed assumes more response (no offset yet)
K_LM_FAR = const(37)        # tolerances: the predictor seeds only changes at least this large
K_LM_WEXP = const(38)       # |dG| ~ width^wexp: a small change shortens the pulse (0 = keeps it)
# learned, threshold form (docs/algorithms.md): per polarity + ca log2(v - vt) + pw log2 W(G), W the
# room left in the reading's range g_lo..g_hi (S); ca 0 = the quadratic alone
K_LM_SET_CA = const(39)
K_LM_SET_VT = const(40)
K_LM_SET_PW = const(41)
K_LM_RESET_CA = const(42)
K_LM_RESET_VT = const(43)
K_LM_RESET_PW = const(44)
K_LM_GLO = const(45)
K_LM_GHI = const(46)
# ... variances of the device's offset from it (octaves^2): the devices' spread, the residual
# within a device (rvar 0: the offset is learned with fixed gains)
K_LM_SET_DVAR = const(47)
K_LM_SET_RVAR = const(48)
K_LM_RESET_DVAR = const(49)
K_LM_RESET_RVAR = const(50)


def trace_body(first, nxt, ring, records):
    """TRACE_DATA body: TRACE_FIXED then the packed records (bytes)."""
    return struct.pack(TRACE_FIXED, first, nxt, ring, len(records) // TRACE_RECORD_SIZE) + records


def info_body(fixed, strings, mem_free, runtime):
    """INFO body: the INFO_FIXED bytes, the strings (board, hal, preset), then the optional trailer
    (mem_free, runtime) unless mem_free is None. Strings are cut to 60 bytes."""
    out = bytearray(fixed)
    for s in strings:
        b = s.encode()[:60]
        out.append(len(b))
        out.extend(b)
    if mem_free is not None:
        out.extend(struct.pack(INFO_TRAILER, mem_free))
        b = runtime.encode()[:60]
        out.append(len(b))
        out.extend(b)
    return bytes(out)
