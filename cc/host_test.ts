import { needsAll, needsTool } from "../tests/support/require.ts";
import assert from "node:assert/strict";
import { createCc, RenoCc } from "../stacks/tcpip/tcp/recovery/cc.ts";
import { MILLISECOND } from "../stacks/time.ts";
import { modulePath } from "./build.ts";
import { CcHost, WasmCc } from "./host.ts";
import { loadBuilt, MutableAckSample, SyntheticPath } from "./testing.ts";

Deno.test("reno.wasm follows the built-in RenoCc event for event (slow start, CA, loss, RTO, undo, idle)", async () => {
  const { host } = await loadBuilt([]);
  const m = await host.loadFile(modulePath("reno"));
  const w = host.createFlow(m);
  assert.ok(w instanceof WasmCc);
  const r = new RenoCc();
  const now = 0;
  w.init(1448, now);
  r.init(1448, now);
  const s = new MutableAckSample();
  const step = (ackedBytes: number, flags: Partial<MutableAckSample> = {}): void => {
    Object.assign(s, {
      ackedBytes,
      ackedPackets: Math.ceil(ackedBytes / 1448),
      priorInFlight: r.cwnd,
    }, flags);
    w.onAck(s);
    r.onAck(s);
    assert.equal(w.cwnd, r.cwnd);
    assert.equal(w.ssthresh, r.ssthresh);
  };
  for (let i = 0; i < 100; i++) step(1448 * (1 + (i % 3)));
  w.onCongestion("loss", now);
  r.onCongestion("loss", now);
  for (let i = 0; i < 10; i++) step(1448, { inRecovery: true });
  w.onRecoveryExit(now);
  r.onRecoveryExit(now);
  for (let i = 0; i < 300; i++) step(2896, { inRecovery: false });
  w.onCongestion("ecn", now);
  r.onCongestion("ecn", now);
  assert.equal(w.cwnd, r.cwnd);
  w.onCongestion("rto", now);
  r.onCongestion("rto", now);
  assert.equal(w.cwnd, 1448);
  w.onUndo(now);
  r.onUndo(now);
  assert.equal(w.cwnd, r.cwnd);
  for (let i = 0; i < 50; i++) step(1448, { isAppLimited: true, priorInFlight: 0 });
  w.onIdleRestart(now);
  r.onIdleRestart(now);
  assert.equal(w.cwnd, r.cwnd);
  w.setMss(9000);
  r.setMss(9000);
  assert.equal(w.cwnd, r.cwnd);
  assert.equal(w.name, "reno");
  assert.equal(w.fallback, null);
});

Deno.test("createCc(name) gives the registered Wasm module; unknown names still give Reno with a warning", async () => {
  const { host, modules } = await loadBuilt(["reno"]);
  host.register(modules.get("reno")!, "wasm-reno-test");
  const { cc, warning } = createCc("wasm-reno-test");
  assert.equal(warning, null);
  assert.ok(cc instanceof WasmCc);
  cc.init(1448, 0);
  assert.equal(cc.cwnd, 14480);
  assert.equal(modules.get("reno")!.refs, 1);
  (cc as WasmCc).release();
  assert.equal(modules.get("reno")!.refs, 0);
  const u = createCc("no-such-cc-xyz");
  assert.ok(u.cc instanceof RenoCc);
  assert.ok(u.warning !== null);
});

Deno.test("a new module version serves new flows while old flows keep the old one, which is released with its last flow", async () => {
  const { host } = await loadBuilt([]);
  const v1 = await host.loadFile(modulePath("reno"));
  host.register(v1, "reno-versioned");
  const a = host.createFlow("reno-versioned") as WasmCc;
  a.init(1448, 0);
  const v2 = await host.loadFile(modulePath("reno"));
  host.register(v2, "reno-versioned");
  assert.equal(v1.retired, true);
  assert.equal(v1.released, false, "still used by flow a");
  const b = host.createFlow("reno-versioned") as WasmCc;
  b.init(1448, 0);
  assert.equal(a.module, v1);
  assert.equal(b.module, v2);
  assert.notEqual(v1.loadId, v2.loadId);
  assert.equal(host.liveModules().length, 2);
  const s = new MutableAckSample();
  s.ackedBytes = 1448;
  s.ackedPackets = 1;
  a.onAck(s);
  assert.equal(
    a.cwnd,
    14480 + 1448,
    "the old version keeps working after the swap of the registry",
  );
  a.release();
  assert.equal(v1.released, true);
  assert.equal(v1.instance, null);
  assert.equal(host.counters.released, 1);
  assert.equal(v2.released, false);
  b.release();
  assert.equal(v2.released, false, "the current version stays loaded without flows");
  assert.deepEqual(host.liveModules(), [v2]);
});

Deno.test("flows get separate state slots in one instance and do not disturb each other", async () => {
  const { host, modules } = await loadBuilt(["reno"]);
  const m = modules.get("reno")!;
  const flows = Array.from({ length: 50 }, () => host.createFlow(m) as WasmCc);
  flows.forEach((f) => f.init(1448, 0));
  const s = new MutableAckSample();
  s.ackedBytes = 1448;
  flows.forEach((f, i) => {
    for (let k = 0; k < i; k++) f.onAck(s);
  });
  flows.forEach((f, i) => assert.equal(f.cwnd, 14480 + i * 1448));
  assert.equal(m.refs, 50);
  flows.forEach((f) => f.release());
  assert.equal(m.refs, 0);
});

Deno.test("live swap to another module continues from the current cwnd (no stall, no burst)", async () => {
  const { host, modules } = await loadBuilt(
    ["reno", "aimd"].filter((n) => n !== "aimd" || clangBuilt()),
  );
  const m1 = modules.get("reno")!;
  const target = modules.get("aimd") ?? (await host.loadFile(modulePath("reno")));
  const w = host.createFlow(m1) as WasmCc;
  w.init(1448, 0);
  const p = new SyntheticPath(12.5e6, 20 * MILLISECOND);
  for (let i = 0; i < 200; i++) p.ack(w);
  w.onCongestion("loss", p.now);
  w.onRecoveryExit(p.now);
  const before = w.cwnd;
  const ssBefore = w.ssthresh;
  assert.ok(before > 14480);
  assert.ok(w.swapTo(target, p.now));
  assert.equal(w.module, target);
  assert.equal(m1.refs, 0);
  assert.equal(w.cwnd, before);
  assert.equal(w.ssthresh, ssBefore);
  p.ack(w);
  assert.ok(Math.abs(w.cwnd - before) <= 1448, `cwnd ${before} -> ${w.cwnd} after one ACK`);
  w.release();
});

function clangBuilt(): boolean {
  try {
    return Deno.statSync(modulePath("aimd")).isFile;
  } catch {
    return false;
  }
}

const clang = needsAll(needsTool("clang"), needsTool("wasm-ld"));
Deno.test({
  name: "the C module (clang wasm32) loads through the same ABI and does AIMD",
  ignore: clang.ignore,
  fn: async () => {
    clang.assert();
    const { host, modules } = await loadBuilt(["aimd"]);
    const m = modules.get("aimd")!;
    assert.equal(m.name, "aimd-c");
    assert.equal(m.version, 1);
    const w = host.createFlow(m);
    w.init(1000, 0);
    assert.equal(w.cwnd, 10_000);
    const s = new MutableAckSample();
    s.mss = 1000;
    s.ackedBytes = 3000;
    w.onAck(s);
    assert.equal(w.cwnd, 11_000, "slow start: at most one MSS per ACK");
    w.onCongestion("loss", 0);
    assert.equal(w.cwnd, 5_500);
    assert.equal(w.ssthresh, 5_500);
    for (let i = 0; i < 2; i++) w.onAck(s);
    assert.equal(w.cwnd, 6_500, "one MSS per window of acked bytes");
    w.onCongestion("rto", 0);
    assert.equal(w.cwnd, 1000);
  },
});

Deno.test("live swap along reno -> cubic -> dctcp -> bbr -> reno keeps cwnd continuous at every step", async () => {
  const { host, modules } = await loadBuilt(["reno", "cubic", "dctcp", "bbr"]);
  const w = host.createFlow(modules.get("reno")!) as WasmCc;
  w.init(1448, 0);
  const p = new SyntheticPath(12.5e6, 20 * MILLISECOND);
  for (let i = 0; i < 150; i++) p.ack(w);
  w.onCongestion("loss", p.now);
  w.onRecoveryExit(p.now);
  for (let i = 0; i < 50; i++) p.ack(w);
  for (const next of ["cubic", "dctcp", "bbr", "reno"]) {
    const before = w.cwnd;
    assert.ok(w.swapTo(modules.get(next)!, p.now));
    assert.equal(w.name, next);
    assert.ok(Math.abs(w.cwnd - before) < 1448, `${next}: cwnd ${before} -> ${w.cwnd} at the swap`);
    for (let i = 0; i < 20; i++) {
      const prev = w.cwnd;
      p.ack(w);
      assert.ok(w.cwnd >= prev * 0.5, `${next}: no stall (${prev} -> ${w.cwnd})`);
      assert.ok(w.cwnd <= prev + 4 * 1448, `${next}: no burst (${prev} -> ${w.cwnd})`);
    }
  }
  for (const m of modules.values()) assert.equal(m.refs, m.name === "reno" ? 1 : 0);
  w.release();
});

Deno.test("thousands of flows grow the module memory; views are rebuilt and every flow keeps its state", async () => {
  const { host, modules } = await loadBuilt(["reno"]);
  const m = modules.get("reno")!;
  const inst = m.instance!;
  const pagesBefore = inst.f64.byteLength / 65536;
  const flows = Array.from({ length: 3000 }, () => host.createFlow(m) as WasmCc);
  assert.ok(flows.every((f) => f instanceof WasmCc && f.fallback === null));
  assert.ok(inst.f64.byteLength / 65536 > pagesBefore, "host grew the memory for slots");
  flows.forEach((f) => f.init(1448, 0));
  const s = new MutableAckSample();
  s.ackedBytes = 1448;
  flows.forEach((f, i) => {
    for (let k = 0; k < i % 7; k++) f.onAck(s);
  });
  flows.forEach((f, i) => assert.equal(f.cwnd, 14480 + (i % 7) * 1448));
  flows.forEach((f) => f.release());
  assert.equal(m.refs, 0);
});

Deno.test("a module whose slots are exhausted gives further flows the built-in Reno and counts them", async () => {
  const host = new CcHost({ memoryLimitPages: 1 });
  await loadBuilt([], host);
  const m = await host.loadFile(modulePath("bbr"));
  const capacity = m.instance!.freeSlots;
  assert.ok(capacity > 10 && capacity < 300, `capacity ${capacity}`);
  const flows = Array.from({ length: capacity }, () => host.createFlow(m));
  assert.ok(flows.every((f) => f instanceof WasmCc));
  const extra = host.createFlow(m);
  assert.ok(extra instanceof RenoCc);
  assert.equal(host.counters.refusedFlows, 1);
  (flows[0] as WasmCc).release();
  assert.ok(host.createFlow(m) instanceof WasmCc, "a released slot is reused");
});
