# The RP2040 write pulse: a PIO program that holds the analog-switch gate (its side-set pin) high for
# exactly N state-machine cycles, N being the 32-bit word the CPU puts in the TX FIFO.
#
# N is split by the OSR shifts, not by the CPU: N = 16 q + r with r = N & 15 (fine loop, one cycle per
# turn) and q = N >> 4 (coarse loop, 16 cycles per turn: the jmp plus 15 delay cycles). Every cycle of
# the gate-high section is counted below; tests/test_pio_pulse.py runs this very program in
# rp2040-pio-emulator and checks N cycles, zero error, for N from MIN_CYCLES to 10 ms at 125 MHz.
#
#   addr  instruction              side  cycles             gate
#   0     pull block               0     1 + stall          low    wait for N
#   1     out x, 4                 0     1                  low    x = r
#   2     out y, 28                0     1                  low    y = q (q >= 1 since N >= 16)
#   3     jmp y--, 4               0     1                  low    y = q - 1 (either way on to 4)
#   4     jmp x--, fine            0     1                  low    r > 0: x = r - 1, to 6; r == 0: on to 5
#   5     jmp coarse               0     1                  low    r == 0: skip the fine loop
#   6  fine:   jmp x--, fine       1     r turns x 1        HIGH   r cycles
#   7  coarse: jmp y--, coarse [15] 1    q turns x 16       HIGH   16 q cycles
#   8     push noblock             0     1                  low    end of pulse: one word to the RX FIFO
#   (wrap to 0)
# gate high = r + 16 q = N cycles exactly; from put() to the rising edge: 5 (r > 0) or 6 (r == 0)
# cycles. The CPU waits for the RX word, so it knows the pulse is over without timing it.
from micropython import const
import rp2

try:
    from typing_extensions import TYPE_CHECKING  # type: ignore
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from rp2.asm_pio import *  # noqa: F401,F403  (PIO assembler names, for mypy only)

FINE_BITS = const(4)            # r = N & 15: width of the first `out`
COARSE_BITS = const(28)         # q = N >> 4: the rest of the 32-bit word
COARSE_CYCLES = const(16)       # one coarse turn: 1 cycle of jmp + 15 delay cycles
MIN_CYCLES = const(16)          # q must be >= 1 (q = 0 would make y wrap to 2**32 - 1)
MAX_CYCLES = const(0x7FFFFFFF)  # keeps N a small int on the board; 17 s at 125 MHz


@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW, out_shiftdir=rp2.PIO.SHIFT_RIGHT)
def pulse_program():
    wrap_target()
    pull(block).side(0)                 # 0: stall, gate low, until the CPU puts N
    out(x, 4).side(0)                   # 1: x = N & 15   (OSR shifts right: low bits first)
    out(y, 28).side(0)                  # 2: y = N >> 4
    jmp(y_dec, "pre").side(0)           # 3: y = q - 1
    label("pre")
    jmp(x_dec, "fine").side(0)          # 4: r > 0 -> fine with x = r - 1; r == 0 -> 5
    jmp("coarse").side(0)               # 5: r == 0
    label("fine")
    jmp(x_dec, "fine").side(1)          # 6: gate high, 1 cycle per turn, r turns
    label("coarse")
    jmp(y_dec, "coarse").side(1)[15]    # 7: gate high, 16 cycles per turn, q turns
    push(noblock).side(0)               # 8: gate low; end-of-pulse word for the CPU
    wrap()
