import assert from "node:assert/strict";
import { createCc, RenoCc } from "../stacks/tcpip/tcp/recovery/cc.ts";
import { modulePath } from "./build.ts";
import { CcHost, WasmCc } from "./host.ts";
import { CcLoadError, type LoadRejectReason } from "./sandbox.ts";
import { loadBuilt, MutableAckSample } from "./testing.ts";
import { handCc, type HandCcOptions, type Misbehaviour, TRIGGER_ACKED } from "./wasm_builder.ts";

function rejects(
  o: HandCcOptions | Uint8Array,
  reason: LoadRejectReason,
  host = new CcHost(),
): void {
  const bytes = o instanceof Uint8Array ? o : handCc(o);
  assert.throws(
    () => host.loadBytes(bytes),
    (e: unknown) => e instanceof CcLoadError && e.reason === reason,
    `expected rejection "${reason}"`,
  );
}

Deno.test("load rejects garbage, wrong ABI version, missing exports and wrong signatures", () => {
  const host = new CcHost();
  rejects(new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]), "bad-format", host);
  rejects(new TextEncoder().encode("not wasm at all"), "bad-format", host);
  rejects({ abiVersion: 2 }, "abi-version", host);
  rejects({ omit: "cc_on_undo" }, "missing-export", host);
  rejects({ omit: "cc_slot_base" }, "missing-export", host);
  rejects({ badAckSignature: true }, "bad-signature", host);
  assert.equal(host.counters.rejected, 6);
  assert.equal(host.counters.loaded, 0);
});

Deno.test("load rejects imports, unbounded or oversized memory, and bad names", () => {
  rejects({ withImport: true }, "imports");
  rejects({ memory: { min: 1 } }, "memory-unbounded");
  rejects({ memory: { min: 1, max: 1000 } }, "memory-too-large");
  rejects({ name: "Has Spaces" }, "bad-name");
  rejects({ name: "" }, "bad-name");
  rejects({ memory: { min: 1, max: 300 } }, "memory-too-large");
  // The same module passes with a host that allows more.
  new CcHost({ maxDeclaredPages: 400 }).loadBytes(handCc({ memory: { min: 1, max: 300 } }));
});

Deno.test("load runs a self-test: a module that traps or spins on ordinary ACKs is refused", () => {
  rejects({ misbehave: { kind: "trap" }, always: true }, "self-test");
  rejects({ misbehave: { kind: "loop" }, always: true }, "self-test");
  rejects({ misbehave: { kind: "cwnd", value: NaN }, always: true }, "self-test");
  rejects({ misbehave: { kind: "cwnd", value: 0 }, always: true }, "self-test");
});

Deno.test("the self-test refuses a module that keeps per-flow state in a global (flows would interfere)", () => {
  const host = new CcHost();
  assert.throws(
    () => host.loadBytes(handCc({ globalState: true })),
    (e: unknown) =>
      e instanceof CcLoadError && e.reason === "self-test" && /leaks between slots/.test(e.message),
  );
});

Deno.test("a start function runs metered at instantiation: a bounded one loads, an endless one is refused", () => {
  const host = new CcHost();
  assert.equal(host.loadBytes(handCc({ startLoops: 1000 })).name, "hand");
  rejects({ startLoops: -1 }, "instantiate");
});

/**
 * Runs three flows: A and C on the bad module, B on reno.wasm; arms A's bomb; checks A falls
 * back to Reno with its cwnd, the module is quarantined and counted, and B and C keep running.
 */
async function containment(
  m: Misbehaviour,
  counter: "trap" | "fuel" | "memory" | "output",
  limits = {},
): Promise<void> {
  const host = new CcHost(limits);
  const bad = host.loadBytes(handCc({ misbehave: m }));
  host.register(bad, `bad-${m.kind}-${counter}`);
  await loadBuilt([], host);
  const reno = await host.loadFile(modulePath("reno"));
  const a = host.createFlow(bad) as WasmCc;
  const b = host.createFlow(reno) as WasmCc;
  const c = host.createFlow(bad) as WasmCc;
  for (const f of [a, b, c]) f.init(1448, 0);
  const s = new MutableAckSample();
  s.ackedBytes = 1448;
  s.ackedPackets = 1;
  for (const f of [a, b, c]) f.onAck(s);
  assert.equal(a.cwnd, 14480);
  const bBefore = b.cwnd;
  s.ackedBytes = TRIGGER_ACKED;
  a.onAck(s);
  assert.ok(a.fallback instanceof RenoCc, "A now runs the built-in Reno");
  assert.equal(a.fallbackReason, counter);
  assert.equal(a.cwnd, 14480, "cwnd kept across the fallback");
  assert.equal(a.name, "reno");
  assert.equal(a.module, null);
  assert.equal(bad.quarantined, true);
  assert.equal(bad.violations[counter], 1);
  assert.equal(host.counters.violations[counter], 1);
  assert.equal(host.counters.fallbacks, 1);
  assert.ok(bad.lastViolation.startsWith(counter));
  // A continues as Reno: slow start adds min(acked, 2 MSS).
  s.ackedBytes = 1448;
  a.onAck(s);
  assert.equal(a.cwnd, 14480 + 1448);
  // Other flows keep running.
  b.onAck(s);
  assert.equal(b.cwnd, bBefore + 1448);
  c.onAck(s);
  assert.equal(c.fallback, null);
  assert.equal(c.cwnd, 14480);
  // No new flows on a quarantined module, through the host or the registry.
  assert.ok(host.createFlow(bad) instanceof RenoCc);
  assert.ok(createCc(`bad-${m.kind}-${counter}`).cc instanceof RenoCc);
  assert.equal(host.counters.refusedFlows, 2);
  // Released with its last flow.
  c.release();
  assert.equal(bad.released, true);
  a.release();
  b.release();
}

Deno.test("a trap at run time falls back that flow to Reno, quarantines the module, others keep running", async () => {
  await containment({ kind: "trap" }, "trap");
});

Deno.test("an exhausted fuel budget (endless loop) is contained the same way", async () => {
  await containment({ kind: "loop" }, "fuel");
});

Deno.test("memory growth beyond the run-time limit is contained the same way", async () => {
  await containment({ kind: "grow", pages: 8 }, "memory", { memoryLimitPages: 4 });
});

for (const value of [NaN, -1448, 0, 2 ** 40, Infinity]) {
  Deno.test(`an absurd cwnd output (${value}) is contained the same way`, async () => {
    await containment({ kind: "cwnd", value }, "output");
  });
}

Deno.test("a quarantined module's failing flow keeps its last good ssthresh in the fallback", async () => {
  const { host, modules } = await loadBuilt(["reno"]);
  const reno = modules.get("reno")!;
  const w = host.createFlow(reno) as WasmCc;
  w.init(1448, 0);
  const s = new MutableAckSample();
  s.ackedBytes = 1448;
  for (let i = 0; i < 30; i++) w.onAck(s);
  w.onCongestion("loss", 0);
  w.onRecoveryExit(0);
  const cwnd = w.cwnd, ssthresh = w.ssthresh;
  // Force a violation by shrinking the fuel budget to nothing.
  reno.instance!.setFuelBudget(0);
  w.onAck(s);
  assert.equal(w.fallbackReason, "fuel");
  assert.equal(w.cwnd, cwnd);
  assert.equal(w.ssthresh, ssthresh);
  assert.ok(w instanceof WasmCc);
});
