/**
 * A small WebAssembly binary reader and the fuel-metering rewriter used by the CC sandbox.
 *
 * `parseWasm` reads the sections the sandbox needs (types, imports, functions, memories,
 * globals, exports, code) and rejects what it does not understand. `instrumentFuel` returns a
 * new binary with one extra mutable i32 global (exported as `__cc_fuel`) and, at every function
 * entry and every loop header, the sequence
 *
 *     global.get $fuel  i32.eqz  if  unreachable  end
 *     global.get $fuel  i32.const 1  i32.sub  global.set $fuel
 *
 * so any run of code that enters functions or iterates loops more than `fuel` times traps.
 * Every exported function is re-exported through a new wrapper that first refills the fuel from
 * a second global, the budget (exported as `__cc_fuel_budget`), so the host sets the budget once
 * instead of writing the fuel before every call; calls inside the module go to the originals and
 * cannot refill. New globals and functions are appended after the module's own, so no existing
 * index shifts and no instruction outside the inserted sequences changes. Custom sections are
 * dropped (byte-offset based ones such as branch hints would be wrong after the rewrite).
 *
 * @module
 */

/** Thrown for a binary the reader cannot accept; `reason` names the problem. */
export class WasmFormatError extends Error {
  /** Creates the error; the message says what to change in the module. */
  constructor(readonly reason: string, detail: string) {
    super(
      `invalid or unsupported wasm module (${reason}): ${detail}; ` +
        `rebuild it for the MVP feature set plus bulk-memory/sign-extension/non-trapping-f2i`,
    );
    this.name = "WasmFormatError";
  }
}

/** A value type byte: 0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64, 0x7b v128, 0x70 funcref, 0x6f externref. */
export type ValType = number;

/** A function signature. */
export interface FuncType {
  /** Parameter types. */
  readonly params: readonly ValType[];
  /** Result types. */
  readonly results: readonly ValType[];
}

/** Memory limits in 64 KiB pages. */
export interface MemoryLimits {
  /** Initial pages. */
  readonly min: number;
  /** Maximum pages, or -1 when the module declares none. */
  readonly max: number;
  /** Shared memory (threads). */
  readonly shared: boolean;
  /** 64-bit memory. */
  readonly memory64: boolean;
}

/** One export entry. kind: 0 func, 1 table, 2 memory, 3 global, 4 tag. */
export interface WasmExport {
  /** Export name. */
  readonly name: string;
  /** External kind. */
  readonly kind: number;
  /** Index in the kind's index space. */
  readonly index: number;
}

/** One import entry. */
export interface WasmImport {
  /** Module name. */
  readonly module: string;
  /** Field name. */
  readonly name: string;
  /** External kind (0 func, 1 table, 2 memory, 3 global, 4 tag). */
  readonly kind: number;
  /** Type index for functions, else -1. */
  readonly typeIndex: number;
}

/** A raw section. */
export interface WasmSection {
  /** Section id. */
  readonly id: number;
  /** Offset of the section payload in the binary. */
  readonly start: number;
  /** End of the payload (exclusive). */
  readonly end: number;
}

/** What `parseWasm` found. */
export interface WasmInfo {
  /** Sections in binary order. */
  readonly sections: readonly WasmSection[];
  /** Type section entries. */
  readonly types: readonly FuncType[];
  /** Imports. */
  readonly imports: readonly WasmImport[];
  /** Type index of every function (imported first, then defined). */
  readonly funcTypes: readonly number[];
  /** Number of imported functions. */
  readonly importedFuncs: number;
  /** Number of imported globals. */
  readonly importedGlobals: number;
  /** Number of globals defined by the module. */
  readonly definedGlobals: number;
  /** Memories defined by the module. */
  readonly memories: readonly MemoryLimits[];
  /** Number of imported memories. */
  readonly importedMemories: number;
  /** Exports. */
  readonly exports: readonly WasmExport[];
}

/** Returns the signature of the exported function `name`, or null. */
export function exportedFuncType(info: WasmInfo, name: string): FuncType | null {
  for (const e of info.exports) {
    if (e.name !== name || e.kind !== 0) continue;
    const t = info.funcTypes[e.index];
    return t === undefined ? null : info.types[t] ?? null;
  }
  return null;
}

class Reader {
  pos: number;
  constructor(readonly b: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }
  byte(): number {
    if (this.pos >= this.end) throw new WasmFormatError("truncated", `at byte ${this.pos}`);
    return this.b[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const x = this.byte();
      result += (x & 0x7f) * 2 ** shift;
      if ((x & 0x80) === 0) {
        if (result > 0xffffffff) {
          throw new WasmFormatError("bad-leb", `u32 overflow at ${this.pos}`);
        }
        return result;
      }
      shift += 7;
    }
    throw new WasmFormatError("bad-leb", `u32 too long at ${this.pos}`);
  }
  /** Skips a signed LEB128 of at most `maxBytes` bytes. */
  skipSleb(maxBytes: number): void {
    for (let i = 0; i < maxBytes; i++) {
      if ((this.byte() & 0x80) === 0) return;
    }
    throw new WasmFormatError("bad-leb", `signed LEB too long at ${this.pos}`);
  }
  skip(n: number): void {
    if (this.pos + n > this.end) throw new WasmFormatError("truncated", `at byte ${this.pos}`);
    this.pos += n;
  }
  name(): string {
    const n = this.u32();
    const s = this.b.subarray(this.pos, this.pos + n);
    this.skip(n);
    return new TextDecoder("utf-8", { fatal: true }).decode(s);
  }
}

function readLimits(r: Reader): MemoryLimits {
  const flags = r.byte();
  if (flags > 7) throw new WasmFormatError("bad-limits", `flags ${flags}`);
  const memory64 = (flags & 4) !== 0;
  if (memory64) throw new WasmFormatError("memory64", "64-bit memories are not supported");
  const min = r.u32();
  const max = (flags & 1) !== 0 ? r.u32() : -1;
  return { min, max, shared: (flags & 2) !== 0, memory64 };
}

function skipConstExpr(r: Reader): void {
  // Constant expressions: a few instructions ending with 0x0b.
  for (;;) {
    const op = r.byte();
    if (op === 0x0b) return;
    skipInstructionImmediates(r, op);
  }
}

/** Parses the module structure. Throws `WasmFormatError` for anything malformed or unsupported. */
export function parseWasm(bytes: Uint8Array): WasmInfo {
  if (
    bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 ||
    bytes[3] !== 0x6d || bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0
  ) {
    throw new WasmFormatError("bad-magic", "not a version-1 wasm binary");
  }
  const r = new Reader(bytes, 8, bytes.length);
  const sections: WasmSection[] = [];
  const types: FuncType[] = [];
  const imports: WasmImport[] = [];
  const funcTypes: number[] = [];
  let importedFuncs = 0;
  let importedGlobals = 0;
  let importedMemories = 0;
  let definedGlobals = 0;
  const memories: MemoryLimits[] = [];
  const exports: WasmExport[] = [];
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    if (end > bytes.length) throw new WasmFormatError("truncated", `section ${id} overruns`);
    sections.push({ id, start, end });
    const s = new Reader(bytes, start, end);
    switch (id) {
      case 1: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          if (s.byte() !== 0x60) throw new WasmFormatError("bad-type", "only function types");
          const np = s.u32();
          const params: number[] = [];
          for (let j = 0; j < np; j++) params.push(s.byte());
          const nr = s.u32();
          const results: number[] = [];
          for (let j = 0; j < nr; j++) results.push(s.byte());
          types.push({ params, results });
        }
        break;
      }
      case 2: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const module = s.name();
          const name = s.name();
          const kind = s.byte();
          let typeIndex = -1;
          if (kind === 0) {
            typeIndex = s.u32();
            funcTypes.push(typeIndex);
            importedFuncs++;
          } else if (kind === 1) {
            s.byte();
            readLimits(s);
          } else if (kind === 2) {
            readLimits(s);
            importedMemories++;
          } else if (kind === 3) {
            s.byte();
            s.byte();
            importedGlobals++;
          } else {
            throw new WasmFormatError("bad-import", `import kind ${kind}`);
          }
          imports.push({ module, name, kind, typeIndex });
        }
        break;
      }
      case 3: {
        const n = s.u32();
        for (let i = 0; i < n; i++) funcTypes.push(s.u32());
        break;
      }
      case 5: {
        const n = s.u32();
        for (let i = 0; i < n; i++) memories.push(readLimits(s));
        break;
      }
      case 6: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          s.byte();
          s.byte();
          skipConstExpr(s);
        }
        definedGlobals = n;
        break;
      }
      case 7: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const name = s.name();
          const kind = s.byte();
          const index = s.u32();
          exports.push({ name, kind, index });
        }
        break;
      }
      case 10: {
        const n = s.u32();
        if (n !== funcTypes.length - importedFuncs) {
          throw new WasmFormatError("bad-code", "code and function section counts differ");
        }
        break;
      }
      default:
        break;
    }
    r.pos = end;
  }
  return {
    sections,
    types,
    imports,
    funcTypes,
    importedFuncs,
    importedGlobals,
    definedGlobals,
    memories,
    importedMemories,
    exports,
  };
}

function skipBlockType(r: Reader): void {
  const b = r.b[r.pos];
  if (b === undefined) throw new WasmFormatError("truncated", "block type");
  if (b === 0x40 || (b >= 0x6f && b <= 0x7f)) {
    r.pos++;
    return;
  }
  r.skipSleb(5); // s33 type index
}

/**
 * Skips the immediates of opcode `op` (already read). Throws for opcodes outside the accepted
 * feature set (SIMD, threads, exceptions, GC, tail calls).
 */
function skipInstructionImmediates(r: Reader, op: number): void {
  if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b) {
    return; // unreachable, nop, else, end, return, drop, select
  }
  if (op >= 0x02 && op <= 0x04) return skipBlockType(r);
  if (op === 0x0c || op === 0x0d) return void r.u32(); // br, br_if
  if (op === 0x0e) {
    const n = r.u32();
    for (let i = 0; i <= n; i++) r.u32();
    return;
  }
  if (op === 0x10) return void r.u32(); // call
  if (op === 0x11) {
    r.u32();
    r.u32();
    return;
  }
  if (op === 0x1c) {
    const n = r.u32();
    r.skip(n);
    return;
  }
  if (op >= 0x20 && op <= 0x26) return void r.u32(); // local/global/table get/set
  if (op >= 0x28 && op <= 0x3e) {
    const align = r.u32();
    if ((align & 0x40) !== 0) r.u32(); // multi-memory index
    r.u32();
    return;
  }
  if (op === 0x3f || op === 0x40) return void r.u32(); // memory.size/grow
  if (op === 0x41) return r.skipSleb(5);
  if (op === 0x42) return r.skipSleb(10);
  if (op === 0x43) return r.skip(4);
  if (op === 0x44) return r.skip(8);
  if (op >= 0x45 && op <= 0xc4) return; // numeric, conversions, sign extension
  if (op === 0xd0) return void r.byte(); // ref.null t
  if (op === 0xd1) return; // ref.is_null
  if (op === 0xd2) return void r.u32(); // ref.func
  if (op === 0xfc) {
    const sub = r.u32();
    if (sub <= 7) return;
    switch (sub) {
      case 8:
        r.u32();
        r.u32();
        return;
      case 9:
        return void r.u32();
      case 10:
        r.u32();
        r.u32();
        return;
      case 11:
        return void r.u32();
      case 12:
      case 14:
        r.u32();
        r.u32();
        return;
      case 13:
      case 15:
      case 16:
      case 17:
        return void r.u32();
    }
    throw new WasmFormatError("unsupported-opcode", `0xfc ${sub}`);
  }
  throw new WasmFormatError("unsupported-opcode", `0x${op.toString(16)} at byte ${r.pos - 1}`);
}

function uleb(out: number[], v: number): void {
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
}

function pushName(out: number[], s: string): void {
  const b = new TextEncoder().encode(s);
  uleb(out, b.length);
  for (const x of b) out.push(x);
}

/** Name of the exported fuel counter of an instrumented module (0 after exhaustion). */
export const FUEL_EXPORT = "__cc_fuel";
/** Name of the exported fuel budget every exported function starts with. */
export const FUEL_BUDGET_EXPORT = "__cc_fuel_budget";

function fuelCheck(out: number[], g: number): void {
  out.push(0x23);
  uleb(out, g);
  out.push(0x45, 0x04, 0x40, 0x00, 0x0b, 0x23);
  uleb(out, g);
  out.push(0x41, 0x01, 0x6b, 0x24);
  uleb(out, g);
}

function instrumentBody(
  bytes: Uint8Array,
  start: number,
  end: number,
  g: number,
  out: number[],
): void {
  const r = new Reader(bytes, start, end);
  const nDecl = r.u32();
  for (let i = 0; i < nDecl; i++) {
    r.u32();
    r.byte();
  }
  for (let i = start; i < r.pos; i++) out.push(bytes[i]!);
  fuelCheck(out, g);
  while (r.pos < end) {
    const at = r.pos;
    const op = r.byte();
    skipInstructionImmediates(r, op);
    for (let i = at; i < r.pos; i++) out.push(bytes[i]!);
    if (op === 0x03) fuelCheck(out, g);
  }
}

/** The rewritten binary and where its fuel lives. */
export interface MeteredModule {
  /** Instrumented binary. */
  readonly bytes: Uint8Array;
  /** Global index of the fuel counter. */
  readonly fuelGlobal: number;
  /** Global index of the fuel budget. */
  readonly budgetGlobal: number;
  /** Structure of the original module. */
  readonly info: WasmInfo;
}

function sleb32(out: number[], v: number): void {
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

/** Fuel a module's start function may use at instantiation (before the host sets a budget). */
export const START_FUEL = 1_000_000;

/**
 * Returns `bytes` with fuel metering at every function entry and loop header. The fuel starts
 * at `startFuel` so a start function runs bounded at instantiation.
 */
export function instrumentFuel(bytes: Uint8Array, startFuel: number = START_FUEL): MeteredModule {
  const info = parseWasm(bytes);
  if (!info.sections.some((s) => s.id === 7)) {
    throw new WasmFormatError("no-exports", "module has no export section");
  }
  if (!info.sections.some((s) => s.id === 3) || !info.sections.some((s) => s.id === 10)) {
    throw new WasmFormatError("no-code", "module defines no functions");
  }
  const g = info.importedGlobals + info.definedGlobals;
  const budget = g + 1;
  const nFuncs = info.funcTypes.length;
  // One wrapper per exported function, appended to the function index space.
  const wrapped = info.exports.filter((e) => e.kind === 0);
  const wrapperOf = new Map<number, number>();
  for (const e of wrapped) {
    if (!wrapperOf.has(e.index)) wrapperOf.set(e.index, nFuncs + wrapperOf.size);
  }
  const out: number[] = [...bytes.subarray(0, 8)];
  const section = (id: number, payload: number[]): void => {
    out.push(id);
    uleb(out, payload.length);
    for (const x of payload) out.push(x);
  };
  const newGlobals = [0x7f, 0x01, 0x41];
  sleb32(newGlobals, startFuel | 0);
  newGlobals.push(0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b);
  let globalDone = false;
  const addGlobalSection = (): void => {
    section(6, [2, ...newGlobals]);
    globalDone = true;
  };
  const copyVecTail = (sec: WasmSection, extra: number, p: number[]): Reader => {
    const r = new Reader(bytes, sec.start, sec.end);
    const n = r.u32();
    uleb(p, n + extra);
    return r;
  };
  for (const sec of info.sections) {
    if (sec.id === 0) continue;
    // The global section sits between memory (5) / tag (13) and export (7).
    if (!globalDone && sec.id === 7) addGlobalSection();
    if (sec.id === 3) {
      const p: number[] = [];
      const r = copyVecTail(sec, wrapperOf.size, p);
      for (let i = r.pos; i < sec.end; i++) p.push(bytes[i]!);
      for (const orig of wrapperOf.keys()) uleb(p, info.funcTypes[orig]!);
      section(3, p);
    } else if (sec.id === 6) {
      const p: number[] = [];
      const r = copyVecTail(sec, 2, p);
      for (let i = r.pos; i < sec.end; i++) p.push(bytes[i]!);
      p.push(...newGlobals);
      section(6, p);
      globalDone = true;
    } else if (sec.id === 7) {
      const p: number[] = [];
      uleb(p, info.exports.length + 2);
      for (const e of info.exports) {
        pushName(p, e.name);
        p.push(e.kind);
        uleb(p, e.kind === 0 ? wrapperOf.get(e.index)! : e.index);
      }
      pushName(p, FUEL_EXPORT);
      p.push(3);
      uleb(p, g);
      pushName(p, FUEL_BUDGET_EXPORT);
      p.push(3);
      uleb(p, budget);
      section(7, p);
    } else if (sec.id === 10) {
      const p: number[] = [];
      const r = copyVecTail(sec, wrapperOf.size, p);
      const n = info.funcTypes.length - info.importedFuncs;
      const body: number[] = [];
      for (let i = 0; i < n; i++) {
        const size = r.u32();
        body.length = 0;
        instrumentBody(bytes, r.pos, r.pos + size, g, body);
        r.pos += size;
        uleb(p, body.length);
        for (const x of body) p.push(x);
      }
      for (const orig of wrapperOf.keys()) {
        const t = info.types[info.funcTypes[orig]!]!;
        body.length = 0;
        body.push(0x00, 0x23);
        uleb(body, budget);
        body.push(0x24);
        uleb(body, g);
        for (let k = 0; k < t.params.length; k++) {
          body.push(0x20);
          uleb(body, k);
        }
        body.push(0x10);
        uleb(body, orig);
        body.push(0x0b);
        uleb(p, body.length);
        for (const x of body) p.push(x);
      }
      section(10, p);
    } else {
      if (!globalDone && sec.id > 7 && sec.id !== 13) addGlobalSection();
      out.push(sec.id);
      uleb(out, sec.end - sec.start);
      for (let i = sec.start; i < sec.end; i++) out.push(bytes[i]!);
    }
  }
  return { bytes: new Uint8Array(out), fuelGlobal: g, budgetGlobal: budget, info };
}
