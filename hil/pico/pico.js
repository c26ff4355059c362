#!/usr/bin/env node
// The emulated Raspberry Pi Pico of memhost: the stock MicroPython rp2 firmware in rp2040js, with the
// analog front end wired to its pins and buses as the schematic wires it.
//
// Started by host/memhost/pico_emulator.py (never by hand). Arguments:
//   --uf2 F --bootrom F [--fs IMG] [--obs F] [--status F] --cdc-fd N --dev-out N --dev-in N
// cdc-fd: the controller side of a pty (USB CDC bytes to and from the host, which opens the other
// side); dev-out / dev-in: text-line pipes to hil/pico/device.py, the device and front-end model.
// stderr: start-up line and last words (the host shows them when the board stops responding).
//
// At the pin/bus level (pins and converter constants come from config.py, through device.py):
//   DACs     SPI0: MCP4922 16-bit words while its /CS (a GPIO) is low, latched on /CS rising (A:
//            amplitude, B: read bias); DAC8551 24-bit frames on its SYNC (offset current). Words
//            of the wrong length or clocked in a mode the chip does not sample are ignored, as the
//            chips would.
//   Gate     the PIO side-set pin: the device gets DAC A's code (through the pulse stage, in
//            device.py) for exactly as many system-clock cycles as the pin was high.
//   Read     READ_EN pin; AD7685 on SPI1: CNV rising samples (device.py: bias, offset, TIA, ADC
//            from hil/frontend.py), CNV low puts the 16 bits on SDO, MSB first, for SPI1 to clock.
//   USB      CDC bytes both ways (an OUT transfer waits for host bytes instead of returning empty).
//   Flash    the bootrom's flash_range_erase / flash_range_program are hooked, so MicroPython's
//            filesystem writes (mpremote fs cp) persist; machine.reset() reboots with that flash.
//
// Timing: rp2040js runs its PIO on wall-clock timers and never spends `[delay]` cycles. Here the PIO
// is stepped in the core's cycle count: each enabled state machine executes when its own next-cycle
// mark (instruction cycles + delay, times the clock divider) is reached, so a pin's high time is exact
// in system-clock cycles. Idle time (WFI) is skipped to the next timer alarm, but emulated time never
// runs ahead of wall-clock time (the host's timeouts and heartbeats keep their meaning).
'use strict';

const fs = require('fs');
const tty = require('tty');
const { RP2040, USBCDC, GPIOPinState } = require('rp2040js');
const { decodeBlock } = require('uf2');

const FLASH_BASE = 0x10000000;
const FS_OFFSET = 0xa0000;          // MicroPython RPI_PICO: LittleFS starts 640 KiB into flash
const UF2_BLOCK = 512;
const BOOTROM_BYTES = 16384;
const SLICE_MS = 8;                 // wall time per execute slice before yielding to the event loop
const CHECK_EVERY = 4096;           // instructions between checks of the wall clock / PIO state
const FUNC_SPI = 1;                 // GPIO function select: SPI
const WAIT_TX = 3, WAIT_OUT = 4;    // rp2040js StateMachine wait types (pull / out on an empty TX FIFO)
const BKPT_ERASE = 0xe0, BKPT_PROGRAM = 0xe1;   // our hooks in the bootrom's flash functions

function die(msg, code = 2) {
  process.stderr.write(`pico: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) die(`bad argument ${argv[i]}`);
    a[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['uf2', 'bootrom', 'cdc-fd', 'dev-out', 'dev-in']) {
    if (a[k] === undefined) die(`missing --${k} (pico.js is started by memhost, see pico_emulator.py)`);
  }
  return a;
}

const args = parseArgs(process.argv.slice(2));
const FD_CDC = Number(args['cdc-fd']), FD_DEV_OUT = Number(args['dev-out']), FD_DEV_IN = Number(args['dev-in']);

// ---- device pipe (synchronous: the emulated core waits for the device as it would for a wire) ------
const devBuf = Buffer.alloc(4096);
let devPending = '';
function devSend(line) {
  fs.writeSync(FD_DEV_OUT, line + '\n');
}
function devAsk(line) {
  devSend(line);
  for (;;) {
    const nl = devPending.indexOf('\n');
    if (nl >= 0) {
      const out = devPending.slice(0, nl);
      devPending = devPending.slice(nl + 1);
      if (out.startsWith('!')) die(`device model: ${out.slice(1)}`, 3);
      return out;
    }
    let n;
    try {
      n = fs.readSync(FD_DEV_IN, devBuf, 0, devBuf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      throw e;
    }
    if (n === 0) die('the device model process (hil/pico/device.py) exited', 3);
    devPending += devBuf.toString('latin1', 0, n);
  }
}

// ---- images -------------------------------------------------------------------------------------------
function readOrDie(path, what) {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    return die(`cannot read ${what} ${path}: ${e.code || e.message}`);
  }
}

function flashFromImages() {
  const flash = new Uint8Array(16 * 1024 * 1024).fill(0xff);
  const data = readOrDie(args.uf2, 'the MicroPython UF2');
  if (data.length === 0 || data.length % UF2_BLOCK) die(`${args.uf2} is not a UF2 file (size ${data.length})`);
  let blocks = 0;
  for (let off = 0; off < data.length; off += UF2_BLOCK) {
    // a fresh Uint8Array per block: decodeBlock reads from the start of a Buffer's pooled ArrayBuffer
    const block = new Uint8Array(UF2_BLOCK);
    block.set(data.subarray(off, off + UF2_BLOCK));
    let b;
    try {
      b = decodeBlock(block);
    } catch (e) {
      die(`${args.uf2}: block ${off / UF2_BLOCK} is not a valid UF2 block (${e.message})`);
    }
    const at = b.flashAddress - FLASH_BASE;
    if (at < 0 || at + b.payload.length > FS_OFFSET) die(`${args.uf2}: block ${off / UF2_BLOCK} is outside the firmware area`);
    flash.set(b.payload, at);
    blocks++;
  }
  if (args.fs) {
    const img = readOrDie(args.fs, 'the LittleFS image');
    if (img.length === 0 || FS_OFFSET + img.length > flash.length) die(`${args.fs}: not a LittleFS image for flash offset 0xa0000 (size ${img.length})`);
    flash.set(img, FS_OFFSET);
  }
  return { flash, blocks };
}

const rom = readOrDie(args.bootrom, 'the RP2040 bootrom');
if (rom.length !== BOOTROM_BYTES) die(`${args.bootrom} is not an RP2040 bootrom (${BOOTROM_BYTES} bytes expected, got ${rom.length})`);
const romWords = new Uint32Array(rom.buffer.slice(rom.byteOffset, rom.byteOffset + rom.length));
if (romWords[0] !== 0x20041f00) die(`${args.bootrom} is not an RP2040 B1 bootrom (first word 0x${romWords[0].toString(16)})`);

// Puts `bkpt #imm` at the entry of a bootrom function found through the ROM function table.
function hookRomFunction(words, code, imm) {
  const rd16 = (a) => (words[a >>> 2] >>> ((a & 2) * 8)) & 0xffff;
  const wr16 = (a, v) => {
    const sh = (a & 2) * 8;
    words[a >>> 2] = ((words[a >>> 2] & ~(0xffff << sh)) | (v << sh)) >>> 0;
  };
  for (let p = rd16(0x14); ; p += 4) {
    const c = rd16(p);
    if (c === 0) die(`bootrom: no function '${String.fromCharCode(code & 0xff, code >> 8)}'`);
    if (c === code) { wr16(rd16(p + 2) & ~1, 0xbe00 | imm); return; }
  }
}
hookRomFunction(romWords, 0x52 | (0x45 << 8), BKPT_ERASE);     // 'RE' flash_range_erase
hookRomFunction(romWords, 0x52 | (0x50 << 8), BKPT_PROGRAM);   // 'RP' flash_range_program

// ---- observation log: one JSON line per pin/bus event, stamped with the emulated cycle ---------------
const obsFd = args.obs ? fs.openSync(args.obs, 'a') : -1;
let obsLines = [];
function obs(o) {
  if (obsFd >= 0) obsLines.push(JSON.stringify(o));
}
function obsFlush() {
  if (obsLines.length) {
    fs.writeSync(obsFd, obsLines.join('\n') + '\n');
    obsLines = [];
  }
}

// ---- state that lives across resets ------------------------------------------------------------------
const cfg = JSON.parse(devAsk('H'));     // pins and converter constants from config.py
const PIN = cfg.pins;
let cyc = 0;                             // emulated system-clock cycles since power-on
let cycleNs = 8;                         // ns per cycle (125 MHz until the firmware says otherwise)
const tSec = (c) => c * cycleNs * 1e-9;
const inQueue = [];                      // host -> board bytes not yet taken by the firmware
let inHead = 0;
let outQueue = [];                       // board -> host bytes the pty did not take yet
let tail = Buffer.alloc(0);              // the board's most recent output (last words)
let pulses = 0;
let boots = 0;
let B = null;                            // the running board (replaced by machine.reset())
let stopped = null;

function flushOut() {
  while (outQueue.length) {
    const b = outQueue[0];
    let n;
    try {
      n = fs.writeSync(FD_CDC, b);
    } catch (e) {
      if (e.code === 'EAGAIN') return;   // the host is not reading: keep it for later
      throw e;
    }
    if (n < b.length) { outQueue[0] = b.subarray(n); return; }
    outQueue.shift();
  }
}

function boot(flash) {
  const mcu = new RP2040();         // with its own SimulationClock
  const clock = mcu.clock;
  mcu.logger = {
    debug() {}, info() {}, warn() {},
    error(tag, msg) { process.stderr.write(`rp2040js ${tag}: ${msg}\n`); },
  };
  mcu.loadBootrom(romWords);
  mcu.flash.set(flash);
  const core = mcu.core;
  const b = { mcu, clock, core, machines: [], pendingRead: null, base: cyc };
  boots++;
  cycleNs = 1e9 / mcu.clkSys;
  mcu.addClockListener((hz) => { cycleNs = 1e9 / hz; obs({ e: 'clk_sys', c: cyc, hz }); });

  // ---- flash writes (bootrom hooks) and reset ----
  mcu.onBreak = (code) => {
    const r = core.registers;
    if (code === BKPT_ERASE) {                 // flash_range_erase(addr, count, block_size, cmd)
      mcu.flash.fill(0xff, r[0], r[0] + r[1]);
      obs({ e: 'flash_erase', c: cyc, addr: r[0], n: r[1] });
    } else if (code === BKPT_PROGRAM) {        // flash_range_program(addr, data, count)
      for (let i = 0; i < r[2]; i++) mcu.flash[r[0] + i] = mcu.readUint8(r[1] + i);
      obs({ e: 'flash_program', c: cyc, addr: r[0], n: r[2] });
    } else {
      stopped = `breakpoint/fault (bkpt ${code}) at PC=0x${((core.PC >>> 0) - 2).toString(16)}`;
      return;
    }
    core.PC = core.LR & ~1;                    // return to the caller
  };
  const watchdog = Object.values(mcu.peripherals).find((p) => p.name === 'WATCHDOG_BASE');
  watchdog.onWatchdogTrigger = () => { b.reset = true; };

  // ---- PIO in lock-step with the core ----
  b.pioNow = -1;                 // cycle of the PIO step in progress (pin changes are stamped with it)
  for (const pio of mcu.pio) {
    pio.run = function () {};    // no wall-clock stepping: the execute loop steps it
    for (const sm of pio.machines) b.machines.push({ pio, sm, next: 0 });
  }
  const stampNow = () => (b.pioNow >= 0 ? b.pioNow : cyc);

  // ---- the DAC bus (SPI0): MCP4922 on /CS, DAC8551 on SYNC ----
  const spi = mcu.spi[cfg.dac_spi];
  const dacCode = [0, 0];          // MCP4922 codes latched, A and B (power-on: 0)
  b.dacCode = dacCode;
  const chips = [
    // MCP4922 samples SDI on rising SCK edges (SPI modes 0 and 3); 16 bits, latched on /CS rising
    { name: 'mcp4922', pin: PIN.dac_cs, bits: 16, modes: [0, 3] },
    // DAC8551 samples on falling edges (modes 1 and 2); 24 bits, updated at the 24th bit
    { name: 'dac8551', pin: PIN.ofs_cs, bits: 24, modes: [1, 2] },
  ];
  for (const chip of chips) {
    chip.low = false; chip.word = 0; chip.n = 0; chip.badMode = false; chip.fell = 0;
    mcu.gpio[chip.pin].addListener((state) => {
      const high = state === GPIOPinState.High;
      if (!high && !chip.low) {
        chip.low = true; chip.word = 0; chip.n = 0; chip.badMode = false; chip.fell = cyc;
      } else if (high && chip.low) {
        chip.low = false;
        if (chip.n !== chip.bits || chip.badMode) {
          obs({ e: 'spi_ignored', c: cyc, chip: chip.name, bits: chip.n, bad_mode: chip.badMode });
        } else if (chip.name === 'mcp4922') {
          const w = chip.word & 0xffff;
          const ch = w >> 15;
          const code = (w >> 12) & 1 ? w & 0xfff : 0;    // /SHDN = 0: output off
          dacCode[ch] = code;
          if (ch) devSend(`B ${tSec(cyc).toPrecision(17)} ${code}`);
          obs({ e: 'dac', c: cyc, cs_low: chip.fell, ch: ch ? 'B' : 'A', word: w, code, gain2: ((w >> 13) & 1) === 0 });
        } else {
          const pd = (chip.word >> 16) & 3;              // power-down modes: output off
          const code = pd ? 0 : chip.word & 0xffff;
          devSend(`O ${tSec(cyc).toPrecision(17)} ${code}`);
          obs({ e: 'offset', c: cyc, cs_low: chip.fell, code });
        }
      }
    });
  }
  const dacBusDone = clock.createAlarm(() => spi.completeTransmit(0));
  spi.onTransmit = (value) => {
    const wired = mcu.gpio[PIN.dac_sck].functionSelect === FUNC_SPI &&
      mcu.gpio[PIN.dac_mosi].functionSelect === FUNC_SPI;
    const nb = spi.dataBits;
    for (const chip of chips) {
      if (!chip.low || !wired) continue;
      if (!chip.modes.includes(spi.spiMode)) chip.badMode = true;
      chip.word = chip.word * (1 << nb) + value;         // up to 24 bits: exact in a double
      chip.n += nb;
    }
    dacBusDone.schedule((nb * 1e9) / (spi.clockFrequency || 1e6));  // done after its bit times
  };

  // ---- the gate (PIO side-set) ----
  let gateHigh = false, gateRise = 0, gateCode = 0;
  mcu.gpio[PIN.gate].addListener((state) => {
    const high = state === GPIOPinState.High;
    const now = stampNow();
    if (high && !gateHigh) {
      gateHigh = true; gateRise = now; gateCode = dacCode[0];
    } else if (!high && gateHigh) {
      gateHigh = false;
      const n = now - gateRise;
      pulses++;
      // the device sees W+ for the time the switch is closed, in emulated cycles from the pin
      devSend(`P ${tSec(gateRise).toPrecision(17)} ${gateCode} ${tSec(n).toPrecision(17)}`);
      obs({ e: 'gate', c: gateRise, end: now, cycles: n, code_a: gateCode, dac_a_changed: dacCode[0] !== gateCode });
    }
  });

  // ---- READ_EN, TIA, AD7685 on SPI1 (CNV rising converts; CNV low: 16 bits MSB first on SDO) ----
  let readEn = false;
  mcu.gpio[PIN.read_en].addListener((state) => {
    const on = state === GPIOPinState.High;
    if (on !== readEn) {
      readEn = on;
      devSend(`E ${tSec(cyc).toPrecision(17)} ${on ? 1 : 0}`);
      obs({ e: 'read_en', c: cyc, on: on ? 1 : 0 });
    }
  });
  const adcSpi = mcu.spi[cfg.adc_spi];
  let cnvHigh = false, cnvRise = 0, adcWord = 0, adcBitsLeft = 0;
  mcu.gpio[PIN.adc_cnv].addListener((state) => {
    const high = state === GPIOPinState.High;
    if (high && !cnvHigh) {
      cnvHigh = true; cnvRise = cyc;
      adcWord = parseInt(devAsk(`C ${tSec(cyc).toPrecision(17)}`), 10);   // sampled at CNV rising
      obs({ e: 'adc', c: cyc, code: adcWord, read_en: readEn ? 1 : 0 });
    } else if (!high && cnvHigh) {
      cnvHigh = false;
      adcBitsLeft = cfg.adc_bits;
      if (tSec(cyc - cnvRise) < 2.2e-6) obs({ e: 'adc_early', c: cyc, cycles: cyc - cnvRise });
    }
  });
  let adcRx = 0;
  const adcBusDone = clock.createAlarm(() => adcSpi.completeTransmit(adcRx));
  adcSpi.onTransmit = () => {
    const nb = adcSpi.dataBits;
    const wired = mcu.gpio[PIN.adc_sck].functionSelect === FUNC_SPI &&
      mcu.gpio[PIN.adc_miso].functionSelect === FUNC_SPI;
    let rx = 0;
    for (let i = 0; i < nb; i++) {      // SDO: the result's next bit, then the SDI level (tied high)
      let bit = 1;
      if (!cnvHigh && wired && adcBitsLeft > 0) bit = (adcWord >> (adcBitsLeft - 1)) & 1;
      if (adcBitsLeft > 0) adcBitsLeft--;
      rx = (rx << 1) | bit;
    }
    adcRx = rx;
    adcBusDone.schedule((nb * 1e9) / (adcSpi.clockFrequency || 1e6));
  };

  // ---- USB CDC ----
  const cdc = new USBCDC(mcu.usbCtrl);
  const usb = mcu.usbCtrl;
  b.feedRead = (ep, size) => {
    const n = Math.min(size, inQueue.length - inHead);
    const buf = new Uint8Array(n);
    for (let i = 0; i < n; i++) buf[i] = inQueue[inHead + i];
    inHead += n;
    if (inHead > 4096) { inQueue.splice(0, inHead); inHead = 0; }
    usb.endpointReadDone(ep, buf);
    obs({ e: 'cdc_rx', c: cyc, n });
  };
  usb.onEndpointRead = (ep, size) => {
    if (ep !== cdc.outEndpoint) return;
    if (inQueue.length - inHead > 0) b.feedRead(ep, size);
    else b.pendingRead = { ep, size };
  };
  cdc.onSerialData = (data) => {
    obs({ e: 'cdc_tx', c: cyc, n: data.length });
    obsFlush();                  // the observations reach the file before the reply reaches the host
    const buf = Buffer.from(data);
    outQueue.push(buf);
    tail = Buffer.concat([tail, buf]).subarray(-600);
    flushOut();
  };
  cdc.onDeviceConnected = () => obs({ e: 'usb_connected', c: cyc, boot: boots });

  core.PC = FLASH_BASE;
  obs({ e: 'boot', c: cyc, n: boots, pins: PIN });
  return b;
}

// ---- stepping the PIO in the core's cycles --------------------------------------------------------------
function smDivider(sm) {
  const int = sm.clockDivInt === 0 ? 65536 : sm.clockDivInt;
  return int + sm.clockDivFrac / 256;
}
function stepPio(b, now) {
  const ms = b.machines;
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i];
    const sm = m.sm;
    if (!sm.enabled) { m.next = now; continue; }
    if (m.next > now) continue;
    const div = smDivider(sm);
    let next = m.next;
    while (next <= now) {
      if (sm.waiting && (sm.waitType === WAIT_TX || sm.waitType === WAIT_OUT) && sm.txFIFO.empty) {
        next = now + 1;          // stalled on an empty TX FIFO: nothing happens until the CPU puts
        break;
      }
      const before = sm.cycles;
      b.pioNow = Math.ceil(next);  // a fractional divider enables the SM on whole system cycles
      sm.step();
      m.pio.checkChangedPins();
      const spent = sm.cycles - before;   // 1 + the instruction's [delay]
      next += (spent > 0 ? spent : 1) * div;
    }
    m.next = next;
  }
  b.pioNow = -1;
}
function pioEnabled(b) {
  const ms = b.machines;
  for (let i = 0; i < ms.length; i++) if (ms[i].sm.enabled) return true;
  return false;
}

function lastWords() {
  const pc = B ? (B.core.PC >>> 0).toString(16) : '?';
  return `cycle ${cyc} (${tSec(cyc).toFixed(6)} s emulated), PC=0x${pc}, boots ${boots}, ` +
    `last board output: ${JSON.stringify(tail.toString('latin1').slice(-300))}`;
}
function writeStatus() {
  if (args.status) {
    fs.writeFileSync(args.status, JSON.stringify({ cycles: cyc, seconds: tSec(cyc), pulses, boots,
      pc: B ? B.core.PC >>> 0 : 0, wall: Date.now() / 1000, last: lastWords() }));
  }
}

// ---- the execute loop --------------------------------------------------------------------------------------
const wall0 = Date.now();
let timer = null, timerIsImmediate = false;
let lastStatus = 0;
function schedule(ms) {
  if (timer) (timerIsImmediate ? clearImmediate : clearTimeout)(timer);
  timerIsImmediate = !(ms > 0);
  timer = timerIsImmediate ? setImmediate(run) : setTimeout(run, ms);
}
function run() {
  timer = null;
  const sliceEnd = Date.now() + SLICE_MS;
  const b = B;
  const { core, clock } = b;
  let pio = pioEnabled(b);
  let idle = 0;
  outer: for (;;) {
    for (let i = 0; i < CHECK_EVERY; i++) {
      if (core.waiting) {
        const ns = clock.nanosToNextAlarm;
        // a state machine enabled since the last check must run through this sleep, not be skipped
        if (!pio) pio = pioEnabled(b);
        if (pio) {
          // the core sleeps, the state machines run: cycle by cycle up to the next alarm
          const target = cyc + Math.max(1, Math.ceil(ns / cycleNs));
          while (cyc < target && core.waiting) {
            cyc++;
            clock.tick(cycleNs);
            stepPio(b, cyc);
          }
        } else {
          if (ns <= 0) { idle = 2; break outer; }            // nothing scheduled: wait for the host
          const ahead = tSec(cyc) * 1000 + ns / 1e6 - (Date.now() - wall0);
          if (ahead > 0) { idle = Math.min(ahead, 20); break outer; }   // not ahead of wall time
          const n = Math.max(1, Math.ceil(ns / cycleNs));
          cyc += n;
          clock.tick(n * cycleNs);
        }
      } else {
        const c = core.executeInstruction();
        cyc += c;
        clock.tick(c * cycleNs);
        if (pio) stepPio(b, cyc);
      }
      if (stopped || b.reset) break outer;
    }
    pio = pioEnabled(b);
    if (Date.now() >= sliceEnd) break;
  }
  obsFlush();
  flushOut();
  if (stopped) {
    process.stderr.write(`pico: the emulated Pico stopped: ${stopped}; ${lastWords()}\n`);
    writeStatus();
    process.exit(4);
  }
  if (b.reset) {                         // machine.reset(): a new chip, the same flash (and files)
    obs({ e: 'reset', c: cyc });
    B = boot(b.mcu.flash);
    idle = 0;
  }
  const now = Date.now();
  if (now - lastStatus > 500) { lastStatus = now; writeStatus(); }
  schedule(idle > 0 ? Math.max(1, Math.floor(idle)) : 0);
}

// ---- host side of the CDC ----------------------------------------------------------------------------------
const cdcIn = new tty.ReadStream(FD_CDC);
cdcIn.setRawMode(true);
cdcIn.on('data', (chunk) => {
  for (const byte of chunk) inQueue.push(byte);
  if (B && B.pendingRead) { const p = B.pendingRead; B.pendingRead = null; B.feedRead(p.ep, p.size); }
  if (timer && !timerIsImmediate) schedule(0);   // wake a sleeping loop now
});
cdcIn.on('error', () => {});

// ---- the Pico never outlives the host process that started it ----------------------------------------------
const parent = process.ppid;
setInterval(() => {
  let alive = true;
  try { process.kill(parent, 0); } catch (e) { alive = false; }
  if (!alive || process.ppid !== parent) process.exit(0);
}, 500).unref();
process.on('SIGTERM', () => { obsFlush(); process.exit(0); });

const { flash, blocks } = flashFromImages();
B = boot(flash);
process.stderr.write(`pico: ${blocks} UF2 blocks${args.fs ? ', LittleFS image at 0xa0000' : ''}; pins ${JSON.stringify(PIN)}\n`);
schedule(0);
