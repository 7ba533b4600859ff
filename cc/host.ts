/**
 * Runs congestion-control WebAssembly modules as `CongestionControl` instances.
 *
 * `CcHost` loads modules (bytes or files, at any time), validates and meters them
 * (sandbox.ts), registers them in the stack's CC registry (`registerCc`) so `createCc(name)`
 * yields a `WasmCc`, and keeps every loaded version alive while a flow uses it (reference
 * count): loading a new version of "cubic" makes new flows use it while old flows keep the old
 * one, which is released when its last flow is.
 *
 * `WasmCc` is one flow: a slot in a module instance. Each event is written into the module's
 * event record and one export is called; the outputs are read back from the output area. A
 * violation (trap, fuel, memory, absurd output) switches that flow to the built-in Reno with
 * the last good cwnd/ssthresh, quarantines the module (no new flows get it) and is counted.
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";
import {
  type AckSample,
  type CcState,
  type CcSwapState,
  type CongestionControl,
  type CongestionKind,
  registerCc,
  RenoCc,
} from "../stacks/tcpip/tcp/recovery/cc.ts";
import { CongestionArg, EventKind, EvF, EvFlag, EvI, ModuleFlag, StateArg } from "./abi.ts";
import {
  CcInstance,
  CcLoadError,
  type CcModuleMeta,
  DEFAULT_LIMITS,
  type SandboxLimits,
  validateCcModule,
  Violation,
  VIOLATION_NAMES,
  type ViolationCode,
} from "./sandbox.ts";

/** Per-module (and per-host) run-time violation counters. */
export class ViolationCounters {
  /** Traps (unreachable, out-of-bounds access, stack overflow, ...). */
  trap = 0;
  /** Fuel budget exhausted. */
  fuel = 0;
  /** Memory grown beyond the limit. */
  memory = 0;
  /** NaN, non-positive or capped-out outputs. */
  output = 0;

  /** Counts one violation. */
  count(v: ViolationCode): void {
    if (v === Violation.trap) this.trap++;
    else if (v === Violation.fuel) this.fuel++;
    else if (v === Violation.memory) this.memory++;
    else if (v === Violation.output) this.output++;
  }

  /** Sum of all violations. */
  total(): number {
    return this.trap + this.fuel + this.memory + this.output;
  }
}

/** One loaded module version. */
export class CcModule {
  /** Module name (`cc_name()`). */
  readonly name: string;
  /** Module version (`cc_version()`, 0 when absent). */
  readonly version: number;
  /** Host-wide load sequence number, distinguishes two loads of the same version. */
  readonly loadId: number;
  /** Flows currently using this module. */
  refs = 0;
  /** Set after a violation: no new flows get this module. */
  quarantined = false;
  /** Set when another version replaced it under every name it was registered as. */
  retired = false;
  /** Registry names this module currently serves. */
  registrations = 0;
  /** Set once its instance was dropped (no flows and retired or quarantined). */
  released = false;
  /** Violations seen in this module. */
  readonly violations: ViolationCounters = new ViolationCounters();
  /** The last violation's description. */
  lastViolation = "";
  /** @internal the live instance (null once released). */
  instance: CcInstance | null;

  /** @internal use `CcHost.load*`. */
  constructor(readonly meta: CcModuleMeta, instance: CcInstance, loadId: number) {
    this.name = meta.name;
    this.version = meta.version;
    this.loadId = loadId;
    this.instance = instance;
  }

  /** Whether it wants ECN negotiated. */
  get wantsEcn(): boolean {
    return (this.meta.flags & ModuleFlag.wantsEcn) !== 0;
  }

  /** Whether it wants the accurate (per-ACK) CE echo. */
  get wantsAccurateEce(): boolean {
    return (this.meta.flags & ModuleFlag.wantsAccurateEce) !== 0;
  }

  /** Whether new flows can be placed on it. */
  get usable(): boolean {
    return !this.quarantined && !this.released && this.instance !== null &&
      this.instance.freeSlots > 0;
  }
}

/** Host-wide counters. */
export class HostCounters {
  /** Modules loaded. */
  loaded = 0;
  /** Loads refused by validation. */
  rejected = 0;
  /** Module versions released. */
  released = 0;
  /** Flows switched to built-in Reno after a violation. */
  fallbacks = 0;
  /** Flows that got Reno because the module was quarantined, released or full. */
  refusedFlows = 0;
  /** Modules quarantined. */
  quarantined = 0;
  /** All violations of all modules. */
  readonly violations: ViolationCounters = new ViolationCounters();
}

/** Re-exported from the stack: what a swapped-in algorithm continues from. */
export type { CcSwapState };

/** Loads, validates, registers and tracks congestion-control modules. */
export class CcHost {
  /** Limits applied to every module. */
  readonly limits: SandboxLimits;
  /** Host-wide counters. */
  readonly counters: HostCounters = new HostCounters();
  private readonly current = new Map<string, CcModule>();
  private readonly live = new Set<CcModule>();
  private loadSeq = 0;

  /** Creates a host; `limits` override `DEFAULT_LIMITS` field by field. */
  constructor(limits: Partial<SandboxLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Validates and instantiates a module from bytes. Throws `CcLoadError`. */
  loadBytes(bytes: Uint8Array): CcModule {
    let v;
    try {
      v = validateCcModule(bytes, this.limits);
    } catch (e) {
      if (e instanceof CcLoadError) this.counters.rejected++;
      throw e;
    }
    const m = new CcModule(v.meta, new CcInstance(v.module, v.meta, this.limits), ++this.loadSeq);
    this.live.add(m);
    this.counters.loaded++;
    return m;
  }

  /** Reads and loads a module file. Throws `CcLoadError` or a file-system error. */
  async loadFile(path: string | URL): Promise<CcModule> {
    return this.loadBytes(await Deno.readFile(path));
  }

  /**
   * Makes `module` the one `createCc(name)` and `createFlow(name)` use (default name: the
   * module's own). A previously registered version is retired: it keeps serving its flows and
   * is released when the last one is.
   */
  register(module: CcModule, name: string = module.name): void {
    const old = this.current.get(name);
    if (old === module) return;
    this.current.set(name, module);
    module.registrations++;
    module.retired = false;
    if (old !== undefined) {
      old.registrations--;
      if (old.registrations === 0) old.retired = true;
      this.maybeRelease(old);
    }
    registerCc(name, () => this.createFlow(name));
  }

  /** Loads a file and registers it; returns the module. */
  async loadAndRegister(path: string | URL, name?: string): Promise<CcModule> {
    const m = await this.loadFile(path);
    this.register(m, name ?? m.name);
    return m;
  }

  /** The module currently registered under `name`, or undefined. */
  module(name: string): CcModule | undefined {
    return this.current.get(name);
  }

  /** Module versions still holding an instance. */
  liveModules(): CcModule[] {
    return [...this.live];
  }

  /**
   * A new flow on `target` (a module or a registered name). When the module is quarantined,
   * released, full or unknown, the flow is a built-in `RenoCc` (counted in `refusedFlows`).
   * Call `init()` on the result as on any `CongestionControl`.
   */
  createFlow(target: CcModule | string): CongestionControl {
    const m = typeof target === "string" ? this.current.get(target) : target;
    if (m === undefined || !m.usable) {
      this.counters.refusedFlows++;
      return new RenoCc();
    }
    return new WasmCc(this, m);
  }

  /** @internal a flow acquires a slot on `m`; -1 when none is left. */
  acquire(m: CcModule): number {
    if (m.instance === null) return -1;
    const slot = m.instance.allocSlot();
    if (slot >= 0) m.refs++;
    return slot;
  }

  /** @internal a flow gives its slot back. */
  releaseSlot(m: CcModule, slot: number): void {
    if (m.instance !== null) m.instance.freeSlot(slot);
    m.refs--;
    this.maybeRelease(m);
  }

  /** @internal records a violation of `m`. */
  violation(m: CcModule, v: ViolationCode): void {
    m.violations.count(v);
    this.counters.violations.count(v);
    this.counters.fallbacks++;
    m.lastViolation = `${VIOLATION_NAMES[v]}: ${m.instance?.lastError ?? ""}`;
    if (!m.quarantined) {
      m.quarantined = true;
      this.counters.quarantined++;
    }
  }

  private maybeRelease(m: CcModule): void {
    if (m.refs > 0 || m.released) return;
    // A module nobody registered stays with whoever loaded it; a registered one goes when it
    // was replaced everywhere; a quarantined one goes with its last flow.
    if (!m.retired && !m.quarantined) return;
    m.released = true;
    m.instance = null;
    this.live.delete(m);
    this.counters.released++;
  }
}

const STATE_ARG: Record<CcState, number> = StateArg;
const CONG_ARG: Record<CongestionKind, number> = CongestionArg;

/**
 * One flow's congestion control running in a WebAssembly module. Implements the stack's
 * `CongestionControl`; call `release()` when the connection is gone (see cc/README.md).
 */
export class WasmCc implements CongestionControl {
  /** Congestion window, bytes. */
  cwnd = 0;
  /** Slow-start threshold, bytes. */
  ssthresh = Infinity;
  /** Pacing rate, bytes/s (0 = engine decides). */
  pacingRate = 0;
  /** Built-in Reno this flow runs on after a violation, else null. */
  fallback: RenoCc | null = null;
  /** The violation that caused the fallback ("trap", "fuel", "memory", "output"), else null. */
  fallbackReason: string | null = null;
  private mod: CcModule | null;
  private inst: CcInstance | null;
  private slot = -1;
  private mss = 1460;
  private ecnOk = true;
  private totalDelivered = 0;
  private srtt = -1;
  private minRtt = -1;
  private inFlight = 0;
  private lastNow = 0;

  /** Use `CcHost.createFlow` or `createCc(name)` rather than this constructor. */
  constructor(private readonly host: CcHost, module: CcModule) {
    this.mod = module;
    this.inst = module.instance;
    this.slot = host.acquire(module);
    if (this.slot < 0) {
      this.mod = null;
      this.inst = null;
      this.fallback = new RenoCc();
      this.fallbackReason = "no-slot";
      host.counters.refusedFlows++;
    }
  }

  /** Registry name: the module's name (or "reno" after a fallback). */
  get name(): string {
    return this.fallback !== null ? this.fallback.name : this.mod!.name;
  }

  /** The module in use, or null after a fallback or release. */
  get module(): CcModule | null {
    return this.mod;
  }

  /** Whether ECN should be negotiated. */
  get wantsEcn(): boolean {
    return this.mod !== null ? this.mod.wantsEcn : true;
  }

  /** Whether the accurate CE echo is wanted. */
  get wantsAccurateEce(): boolean {
    return this.mod !== null && this.mod.wantsAccurateEce;
  }

  /**
   * Tells the module whether ECN was negotiated (flag `ECN_OK` of every event; default true).
   * DCTCP uses it to fall back to Reno behaviour.
   */
  setEcnNegotiated(on: boolean): void {
    this.ecnOk = on;
  }

  private head(kind: number, now: Instant, arg: number, flags: number): void {
    const inst = this.inst!;
    const f = inst.f64;
    const e = inst.evF;
    this.lastNow = now;
    f[e + EvF.nowUs] = now / 1000;
    f[e + EvF.mss] = this.mss;
    // Every event carries this flow's delivered count: modules read it at init (round
    // bookkeeping) and on state changes, and the record is shared by all flows of the
    // instance, so leaving it unwritten would hand them another flow's value.
    f[e + EvF.totalDelivered] = this.totalDelivered;
    f[e + EvF.priorDelivered] = this.totalDelivered;
    const i = inst.i32;
    const ei = inst.evI;
    i[ei + EvI.kind] = kind;
    i[ei + EvI.flags] = flags | (this.ecnOk ? EvFlag.ecnOk : 0);
    i[ei + EvI.arg] = arg;
  }

  private finish(v: ViolationCode): void {
    if (v === Violation.none) {
      const inst = this.inst!;
      const f = inst.f64;
      const o = inst.outF;
      this.cwnd = f[o]!;
      this.ssthresh = f[o + 1]!;
      this.pacingRate = f[o + 2]!;
      return;
    }
    this.fail(v);
  }

  private fail(v: ViolationCode): void {
    const m = this.mod!;
    this.host.violation(m, v);
    this.fallbackReason = VIOLATION_NAMES[v];
    const reno = new RenoCc();
    reno.init(this.mss, 0);
    // Keep the last good window so the flow neither stalls nor bursts.
    if (this.cwnd > 0) reno.cwnd = this.cwnd;
    reno.ssthresh = this.ssthresh > 0 ? this.ssthresh : Infinity;
    this.fallback = reno;
    this.pacingRate = 0;
    this.detach();
  }

  private detach(): void {
    if (this.mod !== null && this.slot >= 0) this.host.releaseSlot(this.mod, this.slot);
    this.mod = null;
    this.inst = null;
    this.slot = -1;
  }

  private syncFromFallback(): void {
    const r = this.fallback!;
    this.cwnd = r.cwnd;
    this.ssthresh = r.ssthresh;
  }

  private quarantineCheck(): boolean {
    // A flow on a module that was released elsewhere (cannot happen while refs > 0) or that
    // lost its instance falls back quietly.
    return this.inst === null && this.fallback === null;
  }

  /** (Re)initializes for a new connection. */
  init(mss: number, now: Instant): void {
    this.mss = mss;
    this.totalDelivered = 0;
    this.srtt = -1;
    this.minRtt = -1;
    this.inFlight = 0;
    if (this.fallback !== null || this.quarantineCheck()) {
      this.fallback ??= new RenoCc();
      this.fallback.init(mss, now);
      return this.syncFromFallback();
    }
    this.head(EventKind.init, now, 0, 0);
    this.finish(this.inst!.call(this.inst!.init, this.slot));
    const fb = this.fallback as RenoCc | null;
    if (fb !== null) {
      fb.init(mss, now);
      this.syncFromFallback();
    }
  }

  /**
   * Continues a flow from another algorithm's state (live swap) instead of starting from the
   * initial window.
   */
  initFromState(s: CcSwapState, now: Instant): void {
    this.mss = s.mss;
    this.srtt = s.srtt;
    this.minRtt = s.minRtt;
    this.inFlight = s.inFlight;
    if (s.totalDelivered !== undefined) this.totalDelivered = s.totalDelivered;
    if (this.fallback !== null || this.quarantineCheck()) {
      this.fallback ??= new RenoCc();
      this.fallback.initFromState(s, now);
      return this.syncFromFallback();
    }
    this.head(EventKind.initFromState, now, 0, 0);
    const f = this.inst!.f64;
    const e = this.inst!.evF;
    f[e + EvF.cwnd] = s.cwnd;
    f[e + EvF.ssthresh] = s.ssthresh;
    f[e + EvF.pacingRate] = s.pacingRate;
    f[e + EvF.srttUs] = s.srtt < 0 ? -1 : s.srtt / 1000;
    f[e + EvF.minRttUs] = s.minRtt < 0 ? -1 : s.minRtt / 1000;
    f[e + EvF.inFlight] = s.inFlight;
    f[e + EvF.totalDelivered] = this.totalDelivered;
    this.cwnd = s.cwnd;
    this.ssthresh = s.ssthresh;
    this.finish(this.inst!.call(this.inst!.initFromState, this.slot));
  }

  /** The state a successor needs (see `swapTo`). */
  swapState(): CcSwapState {
    return {
      cwnd: this.cwnd,
      ssthresh: this.ssthresh,
      pacingRate: this.pacingRate,
      srtt: this.srtt,
      minRtt: this.minRtt,
      inFlight: this.inFlight,
      mss: this.mss,
      totalDelivered: this.totalDelivered,
    };
  }

  /**
   * Live swap: moves this flow to `module` (another algorithm or version), continuing from the
   * current cwnd/ssthresh/srtt/min RTT/in-flight. The old slot is released. Returns false (and
   * keeps the current algorithm) when the target cannot take a flow.
   */
  swapTo(module: CcModule, now: Instant): boolean {
    if (!module.usable) return false;
    const state = this.swapState();
    const slot = this.host.acquire(module);
    if (slot < 0) return false;
    this.detach();
    this.fallback = null;
    this.fallbackReason = null;
    this.mod = module;
    this.inst = module.instance;
    this.slot = slot;
    this.initFromState(state, now);
    return true;
  }

  /**
   * A copy of this flow's state slot as f64 words (layouts are documented in each module's
   * source), or null when not on a module. For tests and diagnostics; allocates.
   */
  stateView(): Float64Array | null {
    if (this.inst === null || this.mod === null) return null;
    const start = this.slot / 8;
    return this.inst.f64.slice(start, start + Math.ceil(this.mod.meta.stateSize / 8));
  }

  /** Gives the flow slot back; the module may be released. Idempotent. */
  release(): void {
    this.detach();
  }

  /** Informs the module of a new MSS. */
  setMss(mss: number): void {
    this.mss = mss;
    if (this.fallback !== null) {
      this.fallback.setMss(mss);
      return this.syncFromFallback();
    }
    if (this.inst === null) return;
    // setMss carries no time: repeat the last event's.
    this.head(EventKind.setMss, this.lastNow, 0, 0);
    this.finish(this.inst.call(this.inst.setMss, this.slot));
  }

  /** One ACK: writes the rate sample into the event record and calls `cc_on_ack`. */
  onAck(s: AckSample): void {
    // The engine's counters are exact; a hand-made sample may leave them at -1 (tests).
    const exact = s.totalDelivered >= 0;
    this.totalDelivered = exact ? s.totalDelivered : this.totalDelivered + s.ackedBytes;
    this.srtt = s.srtt;
    this.minRtt = s.minRtt;
    this.inFlight = s.inFlight;
    if (this.fallback !== null) {
      this.fallback.onAck(s);
      return this.syncFromFallback();
    }
    const inst = this.inst;
    if (inst === null) return;
    const f = inst.f64;
    const e = inst.evF;
    this.mss = s.mss;
    this.lastNow = s.now;
    f[e + EvF.nowUs] = s.now / 1000;
    f[e + EvF.mss] = s.mss;
    f[e + EvF.ackedBytes] = s.ackedBytes;
    f[e + EvF.ackedPackets] = s.ackedPackets;
    f[e + EvF.delivered] = s.delivered;
    f[e + EvF.deliveredCe] = s.deliveredCe;
    f[e + EvF.intervalUs] = s.interval < 0 ? -1 : s.interval / 1000;
    f[e + EvF.rttUs] = s.rtt < 0 ? -1 : s.rtt / 1000;
    f[e + EvF.minRttUs] = s.minRtt < 0 ? -1 : s.minRtt / 1000;
    f[e + EvF.srttUs] = s.srtt < 0 ? -1 : s.srtt / 1000;
    f[e + EvF.inFlight] = s.inFlight;
    f[e + EvF.priorInFlight] = s.priorInFlight;
    f[e + EvF.losses] = s.losses;
    f[e + EvF.totalDelivered] = this.totalDelivered;
    f[e + EvF.priorDelivered] = exact ? s.priorDelivered : this.totalDelivered - s.delivered;
    const i = inst.i32;
    const ei = inst.evI;
    i[ei + EvI.kind] = EventKind.ack;
    i[ei + EvI.flags] = (s.isAppLimited ? EvFlag.appLimited : 0) | (s.ece ? EvFlag.ece : 0) |
      (s.inRecovery ? EvFlag.inRecovery : 0) | (this.ecnOk ? EvFlag.ecnOk : 0) |
      (s.isCwndLimited ? EvFlag.cwndLimited : 0);
    this.finish(inst.call(inst.onAck, this.slot));
  }

  /** A congestion signal. */
  onCongestion(kind: CongestionKind, now: Instant): void {
    if (this.fallback !== null) {
      this.fallback.onCongestion(kind, now);
      return this.syncFromFallback();
    }
    if (this.inst === null) return;
    this.head(EventKind.congestion, now, CONG_ARG[kind], 0);
    this.finish(this.inst.call(this.inst.onCongestion, this.slot));
  }

  /** Recovery finished. */
  onRecoveryExit(now: Instant): void {
    if (this.fallback !== null) {
      this.fallback.onRecoveryExit(now);
      return this.syncFromFallback();
    }
    if (this.inst === null) return;
    this.head(EventKind.recoveryExit, now, 0, 0);
    this.finish(this.inst.call(this.inst.onRecoveryExit, this.slot));
  }

  /** The last reduction was spurious. */
  onUndo(now: Instant): void {
    if (this.fallback !== null) {
      this.fallback.onUndo(now);
      return this.syncFromFallback();
    }
    if (this.inst === null) return;
    this.head(EventKind.undo, now, 0, 0);
    this.finish(this.inst.call(this.inst.onUndo, this.slot));
  }

  /** Sending restarts after idle. */
  onIdleRestart(now: Instant): void {
    if (this.fallback !== null) {
      this.fallback.onIdleRestart(now);
      return this.syncFromFallback();
    }
    if (this.inst === null) return;
    this.head(EventKind.idleRestart, now, 0, 0);
    this.finish(this.inst.call(this.inst.onIdleRestart, this.slot));
  }

  /** The engine's congestion state changed. */
  onStateChange(state: CcState, now: Instant): void {
    if (this.fallback !== null) {
      this.fallback.onStateChange(state, now);
      return this.syncFromFallback();
    }
    if (this.inst === null) return;
    this.head(EventKind.stateChange, now, STATE_ARG[state], 0);
    this.finish(this.inst.call(this.inst.onStateChange, this.slot));
  }
}
