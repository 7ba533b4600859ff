/**
 * A tiny WebAssembly binary assembler for tests: enough to hand-assemble well-formed and
 * deliberately misbehaving congestion-control modules without a toolchain.
 *
 * @module
 */

/** Unsigned LEB128. */
export function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** Little-endian bytes of an f64. */
export function f64Bytes(x: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, x, true);
  return [...b];
}

/** Value types. */
export const I32 = 0x7f, I64 = 0x7e, F32 = 0x7d, F64 = 0x7c;

/** Instruction helpers returning bytes. */
export const op = {
  i32: (v: number): number[] => [0x41, ...sleb(v)],
  f64: (v: number): number[] => [0x44, ...f64Bytes(v)],
  f64Store: (offset = 0): number[] => [0x39, 0x03, ...uleb(offset)],
  f64Load: (offset = 0): number[] => [0x2b, 0x03, ...uleb(offset)],
  localGet: (i: number): number[] => [0x20, ...uleb(i)],
  localSet: (i: number): number[] => [0x21, ...uleb(i)],
  globalGet: (i: number): number[] => [0x23, ...uleb(i)],
  call: (i: number): number[] => [0x10, ...uleb(i)],
};

/** A function to assemble. */
export interface FuncDef {
  /** Export name, if exported. */
  readonly exportName?: string;
  /** Parameter types. */
  readonly params: readonly number[];
  /** Result types. */
  readonly results: readonly number[];
  /** Extra locals: [count, type] pairs. */
  readonly locals?: readonly (readonly [number, number])[];
  /** Body instructions without the final `end`. */
  readonly body: readonly number[];
}

/** A module to assemble. */
export interface ModuleDef {
  /** Function imports (come first in the function index space). */
  readonly imports?: readonly {
    module: string;
    name: string;
    params: number[];
    results: number[];
  }[];
  /** Defined functions. */
  readonly funcs: readonly FuncDef[];
  /** Memory limits; null for none. */
  readonly memory?: { min: number; max?: number } | null;
  /** Export the memory as "memory" (default true). */
  readonly exportMemory?: boolean;
  /** Globals: type, mutability and an init expression (without end). */
  readonly globals?: readonly { type: number; mutable: boolean; init: number[] }[];
  /** Index of the start function. */
  readonly start?: number;
  /** Active data segments in memory 0. */
  readonly data?: readonly { offset: number; bytes: readonly number[] }[];
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** Assembles `def` into a wasm binary. */
export function buildModule(def: ModuleDef): Uint8Array {
  const imports = def.imports ?? [];
  const types: number[][] = [];
  for (const i of imports) {
    types.push([0x60, ...vec(i.params.map((p) => [p])), ...vec(i.results.map((r) => [r]))]);
  }
  for (const f of def.funcs) {
    types.push([0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))]);
  }
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  out.push(...section(1, vec(types)));
  if (imports.length > 0) {
    out.push(
      ...section(
        2,
        vec(imports.map((imp, i) => [...name(imp.module), ...name(imp.name), 0x00, ...uleb(i)])),
      ),
    );
  }
  out.push(...section(3, vec(def.funcs.map((_, i) => uleb(imports.length + i)))));
  const mem = def.memory === undefined ? { min: 1, max: 2 } : def.memory;
  if (mem !== null) {
    const lim = mem.max === undefined
      ? [0x00, ...uleb(mem.min)]
      : [0x01, ...uleb(mem.min), ...uleb(mem.max)];
    out.push(...section(5, [1, ...lim]));
  }
  if (def.globals !== undefined && def.globals.length > 0) {
    out.push(
      ...section(6, vec(def.globals.map((g) => [g.type, g.mutable ? 1 : 0, ...g.init, 0x0b]))),
    );
  }
  const exports: number[][] = [];
  def.funcs.forEach((f, i) => {
    if (f.exportName !== undefined) {
      exports.push([...name(f.exportName), 0x00, ...uleb(imports.length + i)]);
    }
  });
  if (mem !== null && def.exportMemory !== false) exports.push([...name("memory"), 0x02, 0x00]);
  out.push(...section(7, vec(exports)));
  if (def.start !== undefined) out.push(...section(8, uleb(def.start)));
  const bodies = def.funcs.map((f) => {
    const locals = vec((f.locals ?? []).map(([n, t]) => [...uleb(n), t]));
    const body = [...locals, ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  out.push(...section(10, vec(bodies)));
  if (def.data !== undefined && def.data.length > 0) {
    out.push(
      ...section(
        11,
        vec(
          def.data.map((
            d,
          ) => [0x00, ...op.i32(d.offset), 0x0b, ...uleb(d.bytes.length), ...d.bytes]),
        ),
      ),
    );
  }
  return new Uint8Array(out);
}

/** Event-record, output and slot addresses of the hand-assembled CC modules. */
export const HAND = { event: 16, output: 256, slotBase: 512, name: 1024 } as const;

/** What a hand-assembled CC does on the trigger ACK (acked_bytes == `TRIGGER_ACKED`). */
export type Misbehaviour =
  | { kind: "none" }
  | { kind: "trap" }
  | { kind: "loop" }
  | { kind: "grow"; pages: number }
  | { kind: "cwnd"; value: number };

/** acked_bytes value that arms a hand-assembled module's misbehaviour (never in the self-test). */
export const TRIGGER_ACKED = 12345;

/** Options of `handCc` (each breaks one load-time rule when set). */
export interface HandCcOptions {
  /** Behaviour on the trigger ACK. */
  readonly misbehave?: Misbehaviour;
  /** Misbehave on every ACK (fails the self-test). */
  readonly always?: boolean;
  /** Misbehave on ACKs once total_delivered exceeds this (instead of the trigger ACK). */
  readonly afterDelivered?: number;
  /** Value returned by cc_abi_version. */
  readonly abiVersion?: number;
  /** Leave this export out. */
  readonly omit?: string;
  /** Give cc_on_ack the wrong signature `() -> ()`. */
  readonly badAckSignature?: boolean;
  /** Memory limits. */
  readonly memory?: { min: number; max?: number };
  /** Add an import. */
  readonly withImport?: boolean;
  /** Name bytes (NUL added). */
  readonly name?: string;
  /** Keep a per-flow counter in a global instead of the slot (leaks between flows). */
  readonly globalState?: boolean;
  /** Add a start function that loops this many times (-1: forever). */
  readonly startLoops?: number;
}

/**
 * A fixed-window congestion control (cwnd 10 * 1448, ssthresh +Inf, no pacing) assembled by
 * hand, with an optional time bomb on one ACK.
 */
export function handCc(o: HandCcOptions = {}): Uint8Array {
  const writeOut = [
    ...op.i32(HAND.output),
    ...op.f64(14480),
    ...op.f64Store(0),
    ...op.i32(HAND.output),
    ...op.f64(Infinity),
    ...op.f64Store(8),
    ...op.i32(HAND.output),
    ...op.f64(0),
    ...op.f64Store(16),
  ];
  const m = o.misbehave ?? { kind: "none" };
  let payload: number[] = [];
  if (m.kind === "trap") payload = [0x00];
  else if (m.kind === "loop") payload = [0x03, 0x40, 0x0c, 0x00, 0x0b];
  else if (m.kind === "grow") payload = [...op.i32(m.pages), 0x40, 0x00, 0x1a];
  else if (m.kind === "cwnd") {
    payload = [...op.i32(HAND.output), ...op.f64(m.value), ...op.f64Store(0)];
  }
  const cond = o.afterDelivered !== undefined
    ? [...op.i32(HAND.event), ...op.f64Load(104), ...op.f64(o.afterDelivered), 0x64] // f64.gt
    : [...op.i32(HAND.event), ...op.f64Load(16), ...op.f64(TRIGGER_ACKED), 0x61]; // f64.eq
  const bomb = o.always === true ? payload : [...cond, 0x04, 0x40, ...payload, 0x0b];
  const ackBody = o.globalState === true
    ? [
      ...writeOut,
      ...op.globalGet(0),
      ...op.f64(1448),
      0xa0, // f64.add
      0x24,
      0x00, // global.set 0
      ...op.i32(HAND.output),
      ...op.globalGet(0),
      ...op.f64Store(0),
    ]
    : [...writeOut, ...bomb];
  const meta = (exportName: string, v: number): FuncDef => ({
    exportName,
    params: [],
    results: [I32],
    body: op.i32(v),
  });
  const ev = (exportName: string, body: number[]): FuncDef => ({
    exportName,
    params: [I32],
    results: [],
    body,
  });
  const funcs: FuncDef[] = [
    meta("cc_abi_version", o.abiVersion ?? 1),
    meta("cc_name", HAND.name),
    meta("cc_state_size", 8),
    meta("cc_flags", 0),
    meta("cc_event_ptr", HAND.event),
    meta("cc_output_ptr", HAND.output),
    meta("cc_slot_base", HAND.slotBase),
    ev("cc_init", writeOut),
    ev("cc_init_from_state", writeOut),
    ev("cc_set_mss", writeOut),
    o.badAckSignature === true
      ? { exportName: "cc_on_ack", params: [], results: [], body: writeOut }
      : ev("cc_on_ack", ackBody),
    ev("cc_on_congestion", writeOut),
    ev("cc_on_recovery_exit", writeOut),
    ev("cc_on_undo", writeOut),
    ev("cc_on_idle_restart", writeOut),
    ev("cc_on_state_change", writeOut),
  ].filter((f) => f.exportName !== o.omit);
  let start: number | undefined;
  if (o.startLoops !== undefined) {
    // local0 counts up to startLoops (or forever when -1).
    const n = o.startLoops;
    const cond = n < 0 ? [0x0c, 0x00] : [
      ...op.localGet(0),
      ...op.i32(1),
      0x6a,
      0x22,
      0x00, // local.tee 0
      ...op.i32(n),
      0x48, // i32.lt_s
      0x0d,
      0x00, // br_if 0
    ];
    funcs.push({ params: [], results: [], locals: [[1, I32]], body: [0x03, 0x40, ...cond, 0x0b] });
    start = (o.withImport === true ? 1 : 0) + funcs.length - 1;
  }
  const nameBytes = [...new TextEncoder().encode(o.name ?? "hand"), 0];
  return buildModule({
    imports: o.withImport === true
      ? [{ module: "env", name: "now", params: [], results: [F64] }]
      : [],
    funcs,
    memory: o.memory ?? { min: 1, max: 16 },
    globals: o.globalState === true ? [{ type: F64, mutable: true, init: op.f64(14480) }] : [],
    data: [{ offset: HAND.name, bytes: nameBytes }],
    ...(start === undefined ? {} : { start }),
  });
}
