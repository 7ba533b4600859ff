import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { Simulator } from "../sim/simulator.ts";
import { tcpPointToPoint } from "../tests/support/tcp_sim_hosts.ts";
import { ensureBuilt, modulePath } from "../cc/build.ts";
import { CcHost } from "../cc/host.ts";
import {
  CcHostLoader,
  classifyHello,
  ControlClient,
  ControlHandler,
  ControlServer,
  CtlClientError,
  type CtlResponse,
} from "./control_proto.ts";
import type {
  CcEntry,
  CcSetData,
  GuestData,
  SlaSetData,
  SlaShowData,
  StatsData,
} from "./control_proto.ts";
import { type ConnRow, StaticGuestTable } from "./ops_view.ts";
import { EgressScheduler } from "./sla.ts";

Deno.test("classifyHello() tells operator requests from guest attaches and rejects anything else", () => {
  assert.equal(classifyHello('{"v":1,"type":"op","id":1,"cmd":"conns"}'), "op");
  assert.equal(classifyHello('{"v":1,"type":"attach","pid":5}'), "attach");
  assert.equal(classifyHello('{"v":1}'), "invalid");
  assert.equal(classifyHello("conns"), "invalid");
  assert.equal(classifyHello("null"), "invalid");
});

Deno.test("ControlHandler answers bad requests with a code and a message saying what to do", async () => {
  const sim = new Simulator({ seed: 5 });
  const { a } = tcpPointToPoint(sim, { rateBps: 1e8, delay: MILLISECOND });
  const h = new ControlHandler({ stacks: [{ name: "tcp", tcp: a.tcp }], clock: () => sim.now });
  const err = async (req: unknown): Promise<{ code: string; message: string }> => {
    const r: CtlResponse = await h.handle(req);
    assert.equal(r.ok, false, JSON.stringify(r));
    return (r as Extract<CtlResponse, { ok: false }>).error;
  };
  const op = (cmd: string, args: Record<string, unknown> = {}): unknown => ({
    v: 1,
    type: "op",
    id: 9,
    cmd,
    args,
  });
  assert.match(
    (await err({ v: 2, type: "op", id: 1, cmd: "conns" })).message,
    /speaks control protocol v1/,
  );
  const u = await err(op("reboot"));
  assert.equal(u.code, "unknown-command");
  assert.match(u.message, /commands are: conns, stats, guests, cc.list/);
  const cc = await err(op("cc.set", { name: "nope", default: true }));
  assert.equal(cc.code, "unknown-cc");
  assert.match(cc.message, /load it with ctl cc load FILE.wasm --name nope, or use one of: .*reno/);
  assert.match((await err(op("cc.set", { name: "reno" }))).message, /exactly one of --conn ID/);
  assert.equal((await err(op("cc.set", { name: "reno", conn: "tcp:99" }))).code, "no-such-conn");
  assert.equal((await err(op("cc.set", { name: "reno", guest: 4 }))).code, "no-such-guest");
  assert.match((await err(op("sla.show"))).message, /start it with --sla-link RATE/);
  assert.match(
    (await err(op("cc.load", { file: "x.wasm" }))).message,
    /no congestion-control host/,
  );
  assert.equal((await err(op("conns", { guest: "one" }))).code, "bad-request");
  const ok = await h.handle(op("conns"));
  assert.deepEqual(ok, { v: 1, type: "result", id: 9, ok: true, data: [] });
});

Deno.test("ctl protocol over a UNIX socket: conns/stats/guests, cc load and a live cc set mid-transfer keep the bytes intact", async () => {
  await ensureBuilt();
  const sim = new Simulator({ seed: 7 });
  const { a, b, b4 } = tcpPointToPoint(sim, {
    rateBps: 100_000_000,
    delay: 5 * MILLISECOND,
    queuePackets: 200,
  });
  // Guest 1: a 6 MB bulk transfer a -> b with verified bytes; guest 2: an idle connection.
  const total = 6_000_000;
  const pattern = (i: number): number => (i * 2654435761 + (i >>> 13)) & 0xff;
  const data = new Uint8Array(total);
  for (let i = 0; i < total; i++) data[i] = pattern(i);
  const l1 = b.tcp.listen(null, 5001, 4);
  const l2 = b.tcp.listen(null, 5002, 4);
  const c1 = a.tcp.connect(b4, 5001, 0);
  const c2 = a.tcp.connect(b4, 5002, 0);
  let sent = 0;
  let shut = false;
  let s1 = -1;
  let s2 = -1;
  let got = 0;
  let eof = false;
  let mismatch = -1;
  const buf = new Uint8Array(65536);
  a.app = (now) => {
    if (a.tcp.state(c1) !== "ESTABLISHED") return;
    if (sent < total) sent += a.tcp.send(c1, data.subarray(sent), now);
    if (sent === total && !shut) {
      shut = true;
      a.tcp.shutdown(c1, now);
    }
  };
  b.app = (now) => {
    if (s1 < 0) s1 = b.tcp.accept(l1);
    if (s2 < 0) s2 = b.tcp.accept(l2);
    if (s1 < 0 || eof) return;
    for (;;) {
      const n = b.tcp.recv(s1, buf, now);
      if (n === 0) eof = true;
      if (n <= 0) break;
      for (let i = 0; i < n; i++) {
        if (mismatch < 0 && buf[i] !== pattern(got + i)) mismatch = got + i;
      }
      got += n;
    }
  };
  const runUntil = (cond: () => boolean, limit: number): void => {
    while (!cond() && sim.now < limit) sim.runUntil(sim.now + 5 * MILLISECOND);
  };
  runUntil(() => got >= 1_500_000, 10 * SECOND);
  assert.ok(got >= 1_500_000 && got < total, `mid-transfer: ${got}`);

  const table = new StaticGuestTable();
  table.rows = [
    { id: 1, pid: 101, device: "/dev/shm/nk-g1", sockets: 1, bytesFromGuest: sent },
    { id: 2, pid: 102, device: "/dev/shm/nk-g2", sockets: 1 },
  ];
  table.conns = [{ guest: 1, stack: a.tcp, id: c1 }, { guest: 2, stack: a.tcp, id: c2 }];
  const sla = new EgressScheduler({ linkRate: 12_500_000 }, sim.now);
  const ccHost = new CcHost();
  await ccHost.loadAndRegister(modulePath("dctcp"), "dctcp-at-start"); // as an NSM's --cc does
  const handler = new ControlHandler({
    stacks: [{ name: "tcp", tcp: a.tcp }],
    ifaces: [{ name: "sim0", iface: a.iface }],
    guests: table,
    nqe: () => ({
      attached: 2,
      attachFailed: 0,
      detached: {},
      requests: 40,
      completions: 40,
      notifications: 12,
      bytesToGuests: 0,
      bytesFromGuests: sent,
      rejected: {},
    }),
    sla,
    cc: new CcHostLoader(ccHost),
    clock: () => sim.now,
  });
  const server = new ControlServer(handler);
  const path = await Deno.makeTempFile({ prefix: "nsm-ctl-test-", suffix: ".sock" });
  server.listen(path);
  const client = await ControlClient.connect(path);
  try {
    const conns = await client.request<ConnRow[]>("conns");
    assert.equal(conns.length, 2);
    const row = conns.find((r) => r.conn === `tcp:${c1}`)!;
    assert.equal(row.guest, 1);
    assert.equal(row.state, "ESTABLISHED");
    assert.equal(row.cc, "reno");
    assert.equal(row.local.split(":")[0], "198.18.0.1");
    assert.equal(row.remote, "198.18.0.2:5001");
    assert.ok(row.cwnd > 0 && row.srttUs !== null && row.srttUs >= 10_000, JSON.stringify(row));
    assert.ok(row.bytesAcked > 1_000_000);
    assert.deepEqual((await client.request<ConnRow[]>("conns", { guest: 2 })).map((r) => r.conn), [
      `tcp:${c2}`,
    ]);

    const loaded = await client.request<CcEntry>("cc.load", {
      file: modulePath("cubic").pathname,
      name: "cubic",
    });
    assert.equal(loaded.name, "cubic");
    assert.equal(loaded.source, modulePath("cubic").pathname);
    const list = await client.request<CcEntry[]>("cc.list");
    assert.deepEqual(list.find((c) => c.name === "reno"), {
      name: "reno",
      source: "builtin",
      version: null,
      default: true,
      connections: 2,
    });
    assert.ok(list.some((c) => c.name === "cubic" && c.connections === 0));
    const atStart = list.find((c) => c.name === "dctcp-at-start")!;
    assert.equal(atStart.source, "wasm");
    assert.equal(typeof atStart.version, "number");

    // The live swap, mid-transfer.
    const cwndBefore = a.tcp.info(c1).cwnd;
    const set = await client.request<CcSetData>("cc.set", { name: "cubic", conn: `tcp:${c1}` });
    assert.deepEqual(set, { name: "cubic", changed: [`tcp:${c1}`], failed: [], scope: "conn" });
    const cwndAfter = a.tcp.info(c1).cwnd;
    assert.ok(
      cwndAfter >= cwndBefore / 2 && cwndAfter <= cwndBefore * 2,
      `cubic continues from the window: ${cwndBefore} -> ${cwndAfter}`,
    );
    assert.equal(a.tcp.tcbOf(c1)!.rec.cc.constructor.name, "WasmCc", "the engine runs the module");
    const after = await client.request<ConnRow[]>("conns", { guest: 1 });
    assert.equal(after[0]!.cc, "cubic");

    const byGuest = await client.request<CcSetData>("cc.set", { name: "cubic", guest: 2 });
    assert.deepEqual(byGuest.changed, [`tcp:${c2}`]);
    assert.equal(handler.guestCc(2), "cubic");
    const dflt = await client.request<CcSetData>("cc.set", { name: "cubic", default: true });
    assert.equal(dflt.scope, "default");
    assert.equal(a.tcp.config.socket.congestionControl, "cubic");

    const slaSet = await client.request<SlaSetData>("sla.set", {
      guest: 1,
      spec: "rate=80mbit,min=40mbit",
    });
    assert.equal(slaSet.sla!.rate, 10_000_000);
    assert.equal(slaSet.sla!.minRate, 5_000_000);
    assert.deepEqual(slaSet.warnings, []);
    const over = await client.request<SlaSetData>("sla.set", { guest: 2, minRate: 9_000_000 });
    assert.match(over.warnings.join(), /more than the link's 12500000 B\/s/);
    await assert.rejects(
      () => client.request("sla.set", { guest: 2, spec: "rate=fast" }),
      (e) =>
        e instanceof CtlClientError && e.code === "bad-sla" &&
        /write it like 100mbit/.test(e.message),
    );
    const show = await client.request<SlaShowData>("sla.show");
    assert.deepEqual(show.guests.map((g) => g.guest), [1, 2]);

    const guests = await client.request<GuestData[]>("guests");
    assert.deepEqual(guests.map((g) => [g.id, g.connections, g.cc, g.sla?.rate]), [
      [1, 1, null, 10_000_000],
      [2, 1, "cubic", 0],
    ]);
    const stats = await client.request<StatsData>("stats");
    assert.equal(stats.ifaces[0]!.name, "sim0");
    assert.ok((stats.ifaces[0]!.counters.ipv4 as { tx: number }).tx > 1000);
    assert.equal(stats.tcp[0]!.connections, a.tcp.connectionCount);
    assert.equal(stats.tcp[0]!.defaultCc, "cubic");
    assert.equal(stats.tcp[0]!.counters.segmentsOut, a.tcp.counters.segmentsOut);
    assert.equal(stats.nqe!.requests, 40);
    assert.equal(stats.sla!.link.rate, 12_500_000);
    assert.equal(stats.guests.length, 2);
  } finally {
    client.close();
    server.close();
    await Deno.remove(path).catch(() => {});
  }

  // The transfer finishes on cubic with every byte right.
  runUntil(() => eof, 30 * SECOND);
  assert.equal(mismatch, -1, `first wrong byte at ${mismatch}`);
  assert.equal(got, total);
  assert.ok(eof);
  assert.equal(a.tcp.getOptions(c1).congestionControl, "cubic");
  assert.equal(a.tcp.counters.internalErrors, 0);
  a.tcp.config.socket.congestionControl = "reno";
});
