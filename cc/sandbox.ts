/**
 * The sandbox around congestion-control modules: validation at load (format, ABI version,
 * exports and their signatures, no imports, bounded memory, per-flow state size, a self-test on
 * a synthetic event stream) and containment at run time (`CcInstance.call`): a trap, an
 * exhausted fuel budget (see meter.ts), memory grown beyond the limit, or an absurd output
 * (NaN, negative, zero, beyond a cap) is reported as a `Violation` code instead of an exception,
 * so the caller can fall back for that flow and quarantine the module.
 *
 * @module
 */

import {
  CC_ABI_VERSION,
  CongestionArg,
  EVENT_EXPORTS,
  EVENT_RECORD_SIZE,
  EventKind,
  EvF,
  EvFlag,
  EvI,
  META_EXPORTS,
  OUTPUT_AREA_SIZE,
  StateArg,
} from "./abi.ts";
import {
  exportedFuncType,
  FUEL_BUDGET_EXPORT,
  FUEL_EXPORT,
  instrumentFuel,
  WasmFormatError,
  type WasmInfo,
} from "./meter.ts";

/** Limits applied to every module a host loads. */
export interface SandboxLimits {
  /** Fuel per event call (function entries + loop iterations). Default 100 000. */
  readonly fuelPerEvent: number;
  /** Largest declared maximum memory accepted at load, in 64 KiB pages. Default 256 (16 MiB). */
  readonly maxDeclaredPages: number;
  /** Memory an instance may reach at run time (slots included), in pages. Default 64 (4 MiB). */
  readonly memoryLimitPages: number;
  /** Largest per-flow state accepted, bytes. Default 4096. */
  readonly maxStateSize: number;
  /** Largest plausible cwnd, bytes. Default 2^31. */
  readonly maxCwndBytes: number;
  /** Largest plausible pacing rate, bytes/s. Default 1.25e11 (1 Tbit/s). */
  readonly maxPacingRate: number;
}

/** The defaults of `SandboxLimits`. */
export const DEFAULT_LIMITS: SandboxLimits = {
  fuelPerEvent: 100_000,
  maxDeclaredPages: 256,
  memoryLimitPages: 64,
  maxStateSize: 4096,
  maxCwndBytes: 2 ** 31,
  maxPacingRate: 1.25e11,
};

/** Why a module was refused at load. */
export type LoadRejectReason =
  | "bad-format"
  | "imports"
  | "missing-export"
  | "bad-signature"
  | "abi-version"
  | "bad-name"
  | "memory-missing"
  | "memory-unbounded"
  | "memory-too-large"
  | "state-size"
  | "bad-layout"
  | "instantiate"
  | "self-test";

/** Thrown by `validateCcModule` / `CcHost.load*`; `reason` says which check failed. */
export class CcLoadError extends Error {
  /** Creates the error; the message says what to fix in the module. */
  constructor(readonly reason: LoadRejectReason, detail: string) {
    super(`congestion-control module rejected (${reason}): ${detail}; see cc/README.md (ABI v1)`);
    this.name = "CcLoadError";
  }
}

/** Run-time violation codes returned by `CcInstance.call` (0 = fine). */
export const Violation = { none: 0, trap: 1, fuel: 2, memory: 3, output: 4 } as const;
/** A value of `Violation`. */
export type ViolationCode = (typeof Violation)[keyof typeof Violation];
/** Names of the violation codes, index = code. */
export const VIOLATION_NAMES = ["none", "trap", "fuel", "memory", "output"] as const;

type EventFn = (slot: number) => void;

/** Static facts about a validated module. */
export interface CcModuleMeta {
  /** `cc_name()`. */
  readonly name: string;
  /** `cc_version()` when exported, else 0. */
  readonly version: number;
  /** `cc_state_size()` in bytes. */
  readonly stateSize: number;
  /** `cc_flags()`. */
  readonly flags: number;
  /** Structure of the original binary. */
  readonly info: WasmInfo;
}

const PAGE = 65536;

/**
 * One instance of a metered module with its per-flow slots and views over its memory. Views are
 * created once and rebuilt only when the memory grows (the old buffer is then detached, which
 * `call` notices as a zero-length view).
 */
export class CcInstance {
  /** f64 view over the whole memory. */
  f64: Float64Array;
  /** i32 view over the whole memory. */
  i32: Int32Array;
  /** Index of the event record in `f64`. */
  readonly evF: number;
  /** Index of the event record in `i32` (add `EvI.*`). */
  readonly evI: number;
  /** Index of the output area in `f64`. */
  readonly outF: number;
  /** Event exports, in the order of `EVENT_EXPORTS`. */
  readonly init: EventFn;
  readonly initFromState: EventFn;
  readonly setMss: EventFn;
  readonly onAck: EventFn;
  readonly onCongestion: EventFn;
  readonly onRecoveryExit: EventFn;
  readonly onUndo: EventFn;
  readonly onIdleRestart: EventFn;
  readonly onStateChange: EventFn;
  /** Last violation's underlying error text, for diagnostics. */
  lastError = "";
  private readonly memory: WebAssembly.Memory;
  private readonly fuel: WebAssembly.Global;
  private readonly budget: WebAssembly.Global;
  private readonly slotBase: number;
  private readonly slotSize: number;
  private readonly free: number[] = [];
  private nextSlot = 0;

  /** Instantiates `module` (already metered) under `limits`. Throws `CcLoadError`. */
  constructor(
    module: WebAssembly.Module,
    readonly meta: CcModuleMeta,
    readonly limits: SandboxLimits,
  ) {
    let inst: WebAssembly.Instance;
    try {
      inst = new WebAssembly.Instance(module, {});
    } catch (e) {
      throw new CcLoadError("instantiate", String(e));
    }
    const x = inst.exports as Record<string, unknown>;
    this.memory = x.memory as WebAssembly.Memory;
    this.fuel = x[FUEL_EXPORT] as WebAssembly.Global;
    this.budget = x[FUEL_BUDGET_EXPORT] as WebAssembly.Global;
    this.budget.value = limits.fuelPerEvent;
    const f = (n: string): EventFn => x[n] as EventFn;
    this.init = f("cc_init");
    this.initFromState = f("cc_init_from_state");
    this.setMss = f("cc_set_mss");
    this.onAck = f("cc_on_ack");
    this.onCongestion = f("cc_on_congestion");
    this.onRecoveryExit = f("cc_on_recovery_exit");
    this.onUndo = f("cc_on_undo");
    this.onIdleRestart = f("cc_on_idle_restart");
    this.onStateChange = f("cc_on_state_change");
    const meta0 = (n: string): number => {
      try {
        return (x[n] as () => number)() >>> 0;
      } catch (e) {
        throw new CcLoadError("self-test", `${n}() failed: ${e}`);
      }
    };
    const ev = meta0("cc_event_ptr");
    const out = meta0("cc_output_ptr");
    this.slotBase = meta0("cc_slot_base");
    const size = this.memory.buffer.byteLength;
    if (ev % 8 !== 0 || out % 8 !== 0 || this.slotBase % 8 !== 0) {
      throw new CcLoadError(
        "bad-layout",
        "event record, output area and slot base must be 8-aligned",
      );
    }
    if (ev + EVENT_RECORD_SIZE > size || out + OUTPUT_AREA_SIZE > size || this.slotBase > size) {
      throw new CcLoadError(
        "bad-layout",
        "event record/output area/slot base outside initial memory",
      );
    }
    if (ev < out + OUTPUT_AREA_SIZE && out < ev + EVENT_RECORD_SIZE) {
      throw new CcLoadError("bad-layout", "event record and output area overlap");
    }
    if (this.slotBase < Math.max(ev + EVENT_RECORD_SIZE, out + OUTPUT_AREA_SIZE)) {
      throw new CcLoadError(
        "bad-layout",
        "slot base must lie above the event record and output area",
      );
    }
    this.slotSize = (meta.stateSize + 15) & ~15;
    this.evF = ev / 8;
    this.evI = ev / 4;
    this.outF = out / 8;
    this.f64 = new Float64Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
  }

  /** Slots this instance can still hand out within the memory limit. */
  get freeSlots(): number {
    const limitBytes = Math.min(this.limits.memoryLimitPages, this.declaredMax()) * PAGE;
    const total = Math.floor((limitBytes - this.slotBase) / this.slotSize);
    return Math.max(0, total - this.nextSlot) + this.free.length;
  }

  private declaredMax(): number {
    const m = this.meta.info.memories[0];
    return m === undefined || m.max < 0 ? 0 : m.max;
  }

  /** Hands out a zeroed flow slot (byte offset), growing memory if needed; -1 when full. */
  allocSlot(): number {
    let off: number;
    const reused = this.free.pop();
    if (reused !== undefined) {
      off = reused;
    } else {
      off = this.slotBase + this.nextSlot * this.slotSize;
      const need = off + this.slotSize;
      const limit = Math.min(this.limits.memoryLimitPages, this.declaredMax()) * PAGE;
      if (need > limit) return -1;
      const have = this.memory.buffer.byteLength;
      if (need > have) {
        this.memory.grow(Math.ceil((need - have) / PAGE));
        this.refreshViews();
      }
      this.nextSlot++;
    }
    new Uint8Array(this.memory.buffer, off, this.slotSize).fill(0);
    return off;
  }

  /** Returns a slot to the free list. */
  freeSlot(off: number): void {
    this.free.push(off);
  }

  /** Rebuilds the views after growth; false when the memory is beyond the limit. */
  refreshViews(): boolean {
    const buf = this.memory.buffer;
    this.f64 = new Float64Array(buf);
    this.i32 = new Int32Array(buf);
    return buf.byteLength <= this.limits.memoryLimitPages * PAGE;
  }

  /** Changes the fuel every event call starts with. */
  setFuelBudget(units: number): void {
    this.budget.value = units;
  }

  /**
   * Calls one event export for `slot` (its wrapper refills the fuel from the budget) and checks
   * what it left behind. Never throws: returns a `Violation` code.
   */
  call(fn: EventFn, slot: number): ViolationCode {
    try {
      fn(slot);
    } catch (e) {
      this.lastError = String(e);
      return this.fuel.value === 0 ? Violation.fuel : Violation.trap;
    }
    if (this.f64.length === 0 && !this.refreshViews()) {
      this.lastError = `memory grew to ${this.memory.buffer.byteLength / PAGE} pages`;
      return Violation.memory;
    }
    const f = this.f64;
    const o = this.outF;
    const cwnd = f[o]!;
    const ssthresh = f[o + 1]!;
    const rate = f[o + 2]!;
    // Comparisons written so that NaN fails each of them.
    if (
      !(cwnd > 0 && cwnd <= this.limits.maxCwndBytes) || !(ssthresh > 0) ||
      !(rate >= 0 && rate <= this.limits.maxPacingRate)
    ) {
      this.lastError = `outputs cwnd=${cwnd} ssthresh=${ssthresh} pacing=${rate}`;
      return Violation.output;
    }
    return Violation.none;
  }
}

function readName(bytes: Uint8Array, ptr: number): string | null {
  let s = "";
  for (let i = 0; i < 32; i++) {
    const c = bytes[ptr + i];
    if (c === undefined) return null;
    if (c === 0) return s.length > 0 ? s : null;
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f ||
      c === 0x2e;
    if (!ok) return null;
    s += String.fromCharCode(c);
  }
  return null;
}

/** A validated, metered module ready to instantiate. */
export interface ValidatedCcModule {
  /** Static facts. */
  readonly meta: CcModuleMeta;
  /** The compiled, fuel-metered module. */
  readonly module: WebAssembly.Module;
}

/**
 * Validates `bytes` as an ABI v1 module under `limits`, meters it, and runs the self-test on a
 * throwaway instance. Throws `CcLoadError` naming the failed check.
 */
export function validateCcModule(
  bytes: Uint8Array,
  limits: SandboxLimits = DEFAULT_LIMITS,
): ValidatedCcModule {
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
    throw new CcLoadError("bad-format", "WebAssembly.validate() refused the binary");
  }
  let metered;
  try {
    metered = instrumentFuel(bytes);
  } catch (e) {
    if (e instanceof WasmFormatError) throw new CcLoadError("bad-format", e.message);
    throw e;
  }
  const info = metered.info;
  if (info.imports.length > 0) {
    const i = info.imports[0]!;
    throw new CcLoadError("imports", `modules may import nothing, found ${i.module}.${i.name}`);
  }
  for (const n of META_EXPORTS) {
    const t = exportedFuncType(info, n);
    if (t === null) throw new CcLoadError("missing-export", `function ${n} is not exported`);
    if (t.params.length !== 0 || t.results.length !== 1 || t.results[0] !== 0x7f) {
      throw new CcLoadError("bad-signature", `${n} must be () -> i32`);
    }
  }
  for (const n of EVENT_EXPORTS) {
    const t = exportedFuncType(info, n);
    if (t === null) throw new CcLoadError("missing-export", `function ${n} is not exported`);
    if (t.params.length !== 1 || t.params[0] !== 0x7f || t.results.length !== 0) {
      throw new CcLoadError("bad-signature", `${n} must be (i32) -> ()`);
    }
  }
  const vt = exportedFuncType(info, "cc_version");
  if (
    vt !== null && (vt.params.length !== 0 || vt.results.length !== 1 || vt.results[0] !== 0x7f)
  ) {
    throw new CcLoadError("bad-signature", "cc_version must be () -> i32");
  }
  const memExport = info.exports.find((e) => e.name === "memory" && e.kind === 2);
  if (memExport === undefined || info.importedMemories > 0 || info.memories.length !== 1) {
    throw new CcLoadError("memory-missing", 'export exactly one own memory as "memory"');
  }
  const mem = info.memories[0]!;
  if (mem.max < 0) throw new CcLoadError("memory-unbounded", "declare a maximum memory size");
  if (mem.shared) throw new CcLoadError("memory-unbounded", "shared memory is not allowed");
  if (mem.max > limits.maxDeclaredPages || mem.min > limits.memoryLimitPages) {
    throw new CcLoadError(
      "memory-too-large",
      `declared ${mem.min}..${mem.max} pages, limit ${limits.maxDeclaredPages} (run time ${limits.memoryLimitPages})`,
    );
  }
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(metered.bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new CcLoadError("bad-format", `metered module does not compile: ${e}`);
  }
  // Metadata from a probe instance.
  let probe: WebAssembly.Instance;
  try {
    probe = new WebAssembly.Instance(module, {});
  } catch (e) {
    throw new CcLoadError("instantiate", String(e));
  }
  const x = probe.exports as Record<string, unknown>;
  (x[FUEL_BUDGET_EXPORT] as WebAssembly.Global).value = limits.fuelPerEvent;
  const get = (n: string): number => {
    try {
      return (x[n] as () => number)();
    } catch (e) {
      throw new CcLoadError("self-test", `${n}() trapped: ${e}`);
    }
  };
  const abi = get("cc_abi_version");
  if (abi !== CC_ABI_VERSION) {
    throw new CcLoadError("abi-version", `module speaks ABI ${abi}, host speaks ${CC_ABI_VERSION}`);
  }
  const stateSize = get("cc_state_size");
  if (!(stateSize > 0 && stateSize <= limits.maxStateSize)) {
    throw new CcLoadError("state-size", `state size ${stateSize} not in 1..${limits.maxStateSize}`);
  }
  const name = readName(
    new Uint8Array((x.memory as WebAssembly.Memory).buffer),
    get("cc_name") >>> 0,
  );
  if (name === null) {
    throw new CcLoadError(
      "bad-name",
      "cc_name() must point to 1..31 bytes of [a-z0-9._-] and a NUL",
    );
  }
  const meta: CcModuleMeta = {
    name,
    version: vt === null ? 0 : get("cc_version"),
    stateSize,
    flags: get("cc_flags"),
    info,
  };
  selfTest(new CcInstance(module, meta, limits), new CcInstance(module, meta, limits));
  return { meta, module };
}

/** One synthetic connection driven through an instance's event record (used by `selfTest`). */
class SyntheticFlow {
  now = 1000;
  delivered = 0;
  cwnd = 0;
  /** Outputs after each event: cwnd, ssthresh, pacing rate. */
  readonly outputs: number[] = [];

  constructor(readonly inst: CcInstance, readonly slot: number, readonly mss: number) {}

  private call(fn: (s: number) => void, kind: number, arg: number, flags: number): void {
    const inst = this.inst;
    const f = inst.f64;
    f[inst.evF + EvF.nowUs] = this.now;
    f[inst.evF + EvF.mss] = this.mss;
    inst.i32[inst.evI + EvI.kind] = kind;
    inst.i32[inst.evI + EvI.flags] = flags;
    inst.i32[inst.evI + EvI.arg] = arg;
    const v = inst.call(fn, this.slot);
    if (v !== Violation.none) {
      throw new CcLoadError(
        "self-test",
        `event kind ${kind} gave violation "${VIOLATION_NAMES[v]}" (${inst.lastError})`,
      );
    }
    const g = inst.f64;
    this.cwnd = g[inst.outF]!;
    this.outputs.push(this.cwnd, g[inst.outF + 1]!, g[inst.outF + 2]!);
  }

  event(fn: (s: number) => void, kind: number, arg = 0, flags: number = EvFlag.ecnOk): void {
    this.call(fn, kind, arg, flags);
  }

  ack(flags: number): void {
    this.now += 1000;
    const g = this.inst.f64;
    const e = this.inst.evF;
    const cwnd = this.cwnd;
    this.delivered += 2 * this.mss;
    g[e + EvF.ackedBytes] = 2 * this.mss;
    g[e + EvF.ackedPackets] = 2;
    g[e + EvF.delivered] = Math.min(cwnd, this.delivered);
    g[e + EvF.deliveredCe] = 0;
    g[e + EvF.intervalUs] = 20_000;
    g[e + EvF.rttUs] = 20_000 + (this.now % 3000);
    g[e + EvF.minRttUs] = 20_000;
    g[e + EvF.srttUs] = 21_000;
    g[e + EvF.inFlight] = cwnd;
    g[e + EvF.priorInFlight] = cwnd;
    g[e + EvF.losses] = 0;
    g[e + EvF.totalDelivered] = this.delivered;
    g[e + EvF.priorDelivered] = this.delivered - Math.min(cwnd, this.delivered);
    this.call(this.inst.onAck, EventKind.ack, 0, flags);
  }

  swapIn(): void {
    const g = this.inst.f64;
    const e = this.inst.evF;
    g[e + EvF.cwnd] = 50 * this.mss;
    g[e + EvF.ssthresh] = 40 * this.mss;
    g[e + EvF.pacingRate] = 0;
    g[e + EvF.srttUs] = 21_000;
    g[e + EvF.minRttUs] = 20_000;
    g[e + EvF.inFlight] = 45 * this.mss;
    g[e + EvF.totalDelivered] = this.delivered;
    this.call(this.inst.initFromState, EventKind.initFromState, 0, EvFlag.ecnOk);
  }
}

/** The self-test connection: start-up, ECE marks, recovery, ECN, RTO, undo, idle, MSS, swap. */
function selfTestSteps(): ((f: SyntheticFlow) => void)[] {
  const steps: ((f: SyntheticFlow) => void)[] = [];
  const acks = (n: number, flags: (k: number) => number): void => {
    for (let k = 0; k < n; k++) steps.push((f) => f.ack(flags(k)));
  };
  const ev = (name: keyof CcInstance, kind: number, arg = 0): void => {
    steps.push((f) => f.event(f.inst[name] as (s: number) => void, kind, arg));
  };
  ev("init", EventKind.init);
  const CL = EvFlag.cwndLimited;
  acks(200, (k) => EvFlag.ecnOk | CL | (k % 50 === 7 ? EvFlag.ece : 0));
  ev("onCongestion", EventKind.congestion, CongestionArg.loss);
  ev("onStateChange", EventKind.stateChange, StateArg.recovery);
  acks(20, () => EvFlag.ecnOk | EvFlag.inRecovery);
  ev("onRecoveryExit", EventKind.recoveryExit);
  ev("onStateChange", EventKind.stateChange, StateArg.open);
  acks(50, () => EvFlag.ecnOk | CL | EvFlag.ece);
  ev("onCongestion", EventKind.congestion, CongestionArg.ecn);
  ev("onCongestion", EventKind.congestion, CongestionArg.rto);
  ev("onStateChange", EventKind.stateChange, StateArg.loss);
  acks(20, () => EvFlag.ecnOk | EvFlag.inRecovery);
  ev("onUndo", EventKind.undo);
  ev("onStateChange", EventKind.stateChange, StateArg.open);
  steps.push((f) => {
    f.now += 15_000_000;
    f.event(f.inst.onIdleRestart, EventKind.idleRestart);
  });
  acks(20, () => EvFlag.appLimited);
  ev("setMss", EventKind.setMss);
  steps.push((f) => f.swapIn());
  acks(20, () => EvFlag.ecnOk | CL);
  acks(10, () => EvFlag.ecnOk); // receiver-window-limited ACKs
  return steps;
}

/**
 * Drives fresh instances through a synthetic connection: start-up ACKs with ECE marks, fast
 * recovery, an ECN echo, an RTO, an undo, an idle restart, an MSS change and a live-swap init.
 * Every call must stay within the sandbox rules. Then the same connection runs again on a
 * second instance interleaved, event by event, with a different connection in another slot;
 * its outputs must be identical, which catches per-flow state kept outside the slot (globals,
 * shared scratch memory). Throws `CcLoadError("self-test")`.
 */
export function selfTest(solo: CcInstance, shared: CcInstance): void {
  const steps = selfTestSteps();
  const a0 = solo.allocSlot();
  const a1 = shared.allocSlot();
  const b1 = shared.allocSlot();
  if (a0 < 0 || a1 < 0 || b1 < 0) throw new CcLoadError("self-test", "no room for two flow slots");
  const ref = new SyntheticFlow(solo, a0, 1448);
  for (const step of steps) step(ref);
  const a = new SyntheticFlow(shared, a1, 1448);
  const b = new SyntheticFlow(shared, b1, 1200);
  b.now = 7000;
  for (const step of steps) {
    step(a);
    step(b);
  }
  for (let k = 0; k < ref.outputs.length; k++) {
    if (!Object.is(ref.outputs[k], a.outputs[k])) {
      throw new CcLoadError(
        "self-test",
        `flow state leaks between slots: event ${Math.floor(k / 3)} gave ${a.outputs[k]} with ` +
          `another flow interleaved but ${ref.outputs[k]} alone (keep per-flow state in the slot)`,
      );
    }
  }
  solo.freeSlot(a0);
  shared.freeSlot(a1);
  shared.freeSlot(b1);
}
