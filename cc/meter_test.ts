import assert from "node:assert/strict";
import { ensureBuilt, modulePath } from "./build.ts";
import {
  exportedFuncType,
  FUEL_BUDGET_EXPORT,
  FUEL_EXPORT,
  instrumentFuel,
  parseWasm,
  WasmFormatError,
} from "./meter.ts";
import { buildModule, F64, I32, op } from "./wasm_builder.ts";

/** count(n): loops n times; plus a global-reading function to check indexes survive. */
function loopModule(withGlobals: boolean): Uint8Array {
  return buildModule({
    funcs: [
      {
        exportName: "count",
        params: [I32],
        results: [I32],
        locals: [[1, I32]],
        body: [
          0x02,
          0x40, // block
          0x03,
          0x40, // loop
          ...op.localGet(1),
          ...op.localGet(0),
          0x4e,
          0x0d,
          0x01, // i >= n -> br_if 1
          ...op.localGet(1),
          ...op.i32(1),
          0x6a,
          ...op.localSet(1),
          0x0c,
          0x00, // br 0
          0x0b,
          0x0b,
          ...op.localGet(1),
        ],
      },
      {
        exportName: "g",
        params: [],
        results: [I32],
        body: withGlobals ? op.globalGet(1) : op.i32(7),
      },
      {
        exportName: "twice",
        params: [I32],
        results: [I32],
        body: [...op.localGet(0), ...op.call(0), ...op.localGet(0), ...op.call(0), 0x6a],
      },
    ],
    globals: withGlobals
      ? [{ type: I32, mutable: true, init: op.i32(5) }, {
        type: I32,
        mutable: false,
        init: op.i32(7),
      }]
      : [],
    memory: null,
  });
}

function run(
  bytes: Uint8Array,
): { x: Record<string, unknown>; fuel: WebAssembly.Global; budget: WebAssembly.Global } {
  const m = instrumentFuel(bytes);
  const inst = new WebAssembly.Instance(
    new WebAssembly.Module(m.bytes as Uint8Array<ArrayBuffer>),
    {},
  );
  const x = inst.exports as Record<string, unknown>;
  return {
    x,
    fuel: x[FUEL_EXPORT] as WebAssembly.Global,
    budget: x[FUEL_BUDGET_EXPORT] as WebAssembly.Global,
  };
}

for (const withGlobals of [false, true]) {
  Deno.test(`instrumentFuel charges one unit per function entry and loop iteration (globals: ${withGlobals})`, () => {
    const { x, fuel, budget } = run(loopModule(withGlobals));
    const count = x.count as (n: number) => number;
    // count(n) enters the loop n+1 times plus one function entry; each exported call starts
    // with the fuel refilled from the budget.
    budget.value = 1000;
    assert.equal(count(10), 10);
    assert.equal(fuel.value, 1000 - 12);
    assert.equal(count(10), 10);
    assert.equal(fuel.value, 1000 - 12, "refilled per call, not cumulative");
    budget.value = 12;
    assert.equal(count(10), 10);
    assert.equal(fuel.value, 0);
    budget.value = 11;
    assert.throws(() => count(10), WebAssembly.RuntimeError);
    assert.equal(fuel.value, 0);
    budget.value = 100;
    // Internal calls do not refill: twice(n) = entry + 2 x (entry + n+1 loop headers).
    assert.equal((x.twice as (n: number) => number)(3), 6);
    assert.equal(fuel.value, 100 - 1 - 2 * 5);
    budget.value = 10;
    assert.equal((x.g as () => number)(), 7, "global indexes unchanged by the added globals");
  });
}

Deno.test("parseWasm reads exports, signatures and memory limits of the built modules; metering keeps them valid", async () => {
  await ensureBuilt();
  for (const name of ["reno", "cubic", "dctcp", "bbr"]) {
    const bytes = await Deno.readFile(modulePath(name));
    const info = parseWasm(bytes);
    assert.deepEqual(exportedFuncType(info, "cc_on_ack"), { params: [I32], results: [] });
    assert.equal(info.memories.length, 1);
    assert.equal(info.memories[0]!.max, 16);
    const m = instrumentFuel(bytes);
    assert.ok(WebAssembly.validate(m.bytes as Uint8Array<ArrayBuffer>), name);
    assert.ok(m.bytes.length > bytes.length);
    const again = parseWasm(m.bytes);
    assert.ok(
      again.exports.some((e) => e.name === FUEL_EXPORT && e.kind === 3 && e.index === m.fuelGlobal),
    );
  }
});

Deno.test("parseWasm refuses truncated binaries and unsupported opcodes with a named reason", () => {
  const good = loopModule(false);
  assert.throws(
    () => parseWasm(good.subarray(0, good.length - 3)),
    (e: unknown) => e instanceof WasmFormatError && e.reason === "truncated",
  );
  const simd = buildModule({
    funcs: [{
      exportName: "f",
      params: [],
      results: [],
      body: [0xfd, 0x0c, ...new Array(16).fill(0), 0x1a],
    }],
    memory: null,
  });
  assert.throws(
    () => instrumentFuel(simd),
    (e: unknown) => e instanceof WasmFormatError && e.reason === "unsupported-opcode",
  );
  assert.equal(F64, 0x7c);
});
