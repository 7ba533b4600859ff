import assert from "node:assert/strict";
import { runClient } from "./client.ts";
import { memoryNet, type NetApi, type NetConn } from "./net.ts";
import {
  ControlReader,
  encodeCookie,
  encodeJsonFrame,
  IperfErrno,
  makeCookie,
  ProtocolError,
  ServerRefusedError,
  State,
  writeAll,
} from "./protocol.ts";
import type { Json } from "./report.ts";
import { NkperfServer } from "./server.ts";

// nkperf client against nkperf server over the in-memory network: no root, no sockets.

const PORT = 5201;

function serverOn(net: NetApi, reports: Json[]): NkperfServer {
  return NkperfServer.listen({ port: PORT, oneOff: true, net, onReport: (r) => reports.push(r) });
}

type Sum = { bytes: number; seconds: number; bits_per_second: number; retransmits?: number };
const end = (j: Json): Json => j.end as Json;
const sum = (j: Json, k: "sum_sent" | "sum_received"): Sum => end(j)[k] as Sum;

Deno.test("client -P 2 and server agree on bytes sent and received per stream", async () => {
  const net = memoryNet();
  const reports: Json[] = [];
  const server = serverOn(net, reports);
  const client = await runClient({ host: "198.18.0.1", time: 0.5, parallel: 2, net });
  await server.done;
  assert.equal(reports.length, 1);
  const srv = reports[0]!;
  assert.equal(srv.error, undefined);
  for (const k of ["sum_sent", "sum_received"] as const) {
    assert.ok(sum(client, k).bytes > 0, k);
    assert.equal(sum(client, k).bytes, sum(srv, k).bytes, k);
  }
  assert.ok(sum(client, "sum_received").bytes <= sum(client, "sum_sent").bytes);
  const streams = end(client).streams as { sender: Json; receiver: Json }[];
  assert.deepEqual(streams.map((s) => s.sender.socket), [1, 3]);
  assert.equal(streams[0]!.sender.sender, true);
  assert.equal((end(srv).streams as { sender: Json }[])[0]!.sender.sender, false);
  const ts = (client.start as Json).test_start as Json;
  assert.equal(ts.num_streams, 2);
  // Deno-shaped sockets have no TCP_INFO: no retransmits in the sender's summary.
  assert.equal(sum(client, "sum_sent").retransmits, undefined);
  // Interval reports (-i 1 default, -t 0.5): the tail interval only.
  const ivs = client.intervals as Json[];
  assert.ok(ivs.length >= 1);
  assert.equal((ivs[0]!.streams as Json[]).length, 2);
});

Deno.test("-R: the server sends, the client receives, and the totals match", async () => {
  const net = memoryNet();
  const reports: Json[] = [];
  const server = serverOn(net, reports);
  const client = await runClient({ host: "h", time: 0.5, reverse: true, len: 1000, net });
  await server.done;
  const srv = reports[0]!;
  assert.equal(srv.error, undefined);
  assert.ok(sum(srv, "sum_sent").bytes > 0);
  assert.equal(sum(client, "sum_sent").bytes, sum(srv, "sum_sent").bytes);
  assert.equal(sum(client, "sum_received").bytes, sum(srv, "sum_received").bytes);
  assert.ok(sum(client, "sum_received").bytes <= sum(client, "sum_sent").bytes);
  assert.equal(((client.start as Json).test_start as Json).reverse, 1);
  assert.equal(((end(client).streams as Json[])[0]!.sender as Json).sender, false);
});

Deno.test("a second client during a test gets ACCESS_DENIED", async () => {
  const net = memoryNet();
  const reports: Json[] = [];
  const server = serverOn(net, reports);
  // The second client goes once the first test is running (its interval header is printed at
  // TEST_RUNNING), not after a fixed 200 ms; 2 s leaves the first test running meanwhile even
  // on a loaded machine.
  let running: () => void = () => {};
  const isRunning = new Promise<void>((r) => running = r);
  const first = runClient({
    host: "h",
    time: 2,
    net,
    onText: (l) => {
      if (l.includes("Interval")) running();
    },
  });
  // Bounded: the first client ends by itself after 2 s (plus its own watchdog).
  await Promise.race([
    isRunning,
    first.then(() => Promise.reject(new Error("the first test never reported TEST_RUNNING"))),
  ]);
  await assert.rejects(
    runClient({ host: "h", time: 0.5, net }),
    (e: unknown) => e instanceof ServerRefusedError && e.state === State.ACCESS_DENIED,
  );
  const j = await first;
  assert.ok(sum(j, "sum_sent").bytes > 0);
  await server.done;
});

Deno.test("the server answers UDP parameters with SERVER_ERROR and its error numbers", async () => {
  const net = memoryNet();
  const reports: Json[] = [];
  const server = serverOn(net, reports);
  const c: NetConn = await net.connect({ hostname: "h", port: PORT });
  const r = new ControlReader(c);
  await writeAll(c, encodeCookie(makeCookie()));
  assert.equal(await r.readState(), State.PARAM_EXCHANGE);
  await writeAll(c, encodeJsonFrame({ udp: true, time: 1, parallel: 1, len: 1400 }));
  assert.equal(await r.readState(), State.SERVER_ERROR);
  const nums = await r.readExact(8);
  assert.equal(new DataView(nums.buffer).getInt32(0), IperfErrno.UNIMPLEMENTED);
  c.close();
  await server.done;
  assert.match(String(reports[0]!.error), /TCP tests only/);
});

Deno.test("with tcpInfo from the stack, the sender reports cwnd and retransmits", async () => {
  const base = memoryNet();
  let calls = 0;
  const net: NetApi = {
    ...base,
    tcpInfo: () => ({
      sndCwnd: 14600 + 1460 * calls,
      retransmits: calls++,
      rttUs: 120,
      rttVarUs: 30,
      pmtu: 1500,
      sndWnd: 65535,
    }),
    congestion: () => "reno",
  };
  const reports: Json[] = [];
  const server = serverOn(base, reports);
  const client = await runClient({ host: "h", time: 0.5, intervalSec: 0.2, net });
  await server.done;
  const iv = (client.intervals as Json[])[0]!;
  const s0 = (iv.streams as Json[])[0]!;
  assert.equal(typeof s0.snd_cwnd, "number");
  assert.ok((s0.snd_cwnd as number) >= 14600);
  assert.equal(s0.rtt, 120);
  assert.equal(typeof (iv.sum as Json).retransmits, "number");
  const snd = (end(client).streams as Json[])[0]!.sender as Json;
  assert.ok((snd.max_snd_cwnd as number) > 14600);
  assert.equal(snd.mean_rtt, 120);
  assert.ok((sum(client, "sum_sent").retransmits ?? -1) > 0);
  assert.equal(end(client).sender_tcp_congestion, "reno");
  // The server (receiver) learnt them through the results exchange.
  assert.equal(sum(reports[0]!, "sum_sent").retransmits, sum(client, "sum_sent").retransmits);
});

// Key lists (in order) of iperf 3.12's -J output, recorded from real runs in a namespace.
const IPERF3_KEYS = {
  top: ["start", "intervals", "end"],
  clientStart: [
    "connected",
    "version",
    "system_info",
    "timestamp",
    "connecting_to",
    "cookie",
    "tcp_mss_default",
    "target_bitrate",
    "sock_bufsize",
    "sndbuf_actual",
    "rcvbuf_actual",
    "test_start",
  ],
  serverStart: [
    "connected",
    "version",
    "system_info",
    "sock_bufsize",
    "sndbuf_actual",
    "rcvbuf_actual",
    "timestamp",
    "accepted_connection",
    "cookie",
    "tcp_mss_default",
    "target_bitrate",
    "test_start",
  ],
  intervalStreamInfo: [
    "socket",
    "start",
    "end",
    "seconds",
    "bytes",
    "bits_per_second",
    "retransmits",
    "snd_cwnd",
    "snd_wnd",
    "rtt",
    "rttvar",
    "pmtu",
    "omitted",
    "sender",
  ],
  intervalStream: [
    "socket",
    "start",
    "end",
    "seconds",
    "bytes",
    "bits_per_second",
    "omitted",
    "sender",
  ],
  senderInfo: [
    "socket",
    "start",
    "end",
    "seconds",
    "bytes",
    "bits_per_second",
    "retransmits",
    "max_snd_cwnd",
    "max_snd_wnd",
    "max_rtt",
    "min_rtt",
    "mean_rtt",
    "sender",
  ],
  summary: ["socket", "start", "end", "seconds", "bytes", "bits_per_second", "sender"],
  sumSentInfo: ["start", "end", "seconds", "bytes", "bits_per_second", "retransmits", "sender"],
  sum: ["start", "end", "seconds", "bytes", "bits_per_second", "sender"],
  end: ["streams", "sum_sent", "sum_received", "cpu_utilization_percent"],
  cpu: ["host_total", "host_user", "host_system", "remote_total", "remote_user", "remote_system"],
}; // deno-fmt-ignore

const keys = (o: unknown): string[] => Object.keys(o as Json);

Deno.test("-J output has iperf 3.12's keys in iperf 3.12's order (client and server)", async () => {
  const net = memoryNet();
  const reports: Json[] = [];
  const server = serverOn(net, reports);
  const c = await runClient({ host: "h", time: 0.3, intervalSec: 0.1, net });
  await server.done;
  const s = reports[0]!;
  assert.deepEqual(keys(c), IPERF3_KEYS.top);
  assert.deepEqual(keys(s), IPERF3_KEYS.top);
  assert.deepEqual(keys(c.start), IPERF3_KEYS.clientStart);
  assert.deepEqual(keys(s.start), IPERF3_KEYS.serverStart);
  for (const j of [c, s]) {
    const iv = (j.intervals as Json[])[0]!;
    assert.deepEqual(keys((iv.streams as Json[])[0]), IPERF3_KEYS.intervalStream);
    const st = (end(j).streams as Json[])[0]!;
    assert.deepEqual(keys(st.sender), IPERF3_KEYS.summary);
    assert.deepEqual(keys(st.receiver), IPERF3_KEYS.summary);
    assert.deepEqual(keys(end(j).sum_sent), IPERF3_KEYS.sum);
    assert.deepEqual(keys(end(j).sum_received), IPERF3_KEYS.sum);
    assert.deepEqual(keys(end(j)), IPERF3_KEYS.end);
    assert.deepEqual(keys(end(j).cpu_utilization_percent), IPERF3_KEYS.cpu);
  }
});

Deno.test("-J output with TCP_INFO carries iperf 3.12's cwnd/RTT keys in order", async () => {
  const base = memoryNet();
  const net: NetApi = {
    ...base,
    tcpInfo: () => ({ sndCwnd: 1, retransmits: 0, rttUs: 1, rttVarUs: 1, pmtu: 1500, sndWnd: 1 }),
  };
  const reports: Json[] = [];
  const server = serverOn(base, reports);
  const c = await runClient({ host: "h", time: 0.3, intervalSec: 0.1, net });
  await server.done;
  const iv = (c.intervals as Json[])[0]!;
  assert.deepEqual(keys((iv.streams as Json[])[0]), IPERF3_KEYS.intervalStreamInfo);
  assert.deepEqual(keys(((end(c).streams as Json[])[0]!).sender), IPERF3_KEYS.senderInfo);
  assert.deepEqual(keys(end(c).sum_sent), IPERF3_KEYS.sumSentInfo);
});

Deno.test("a server without -1 serves tests one after another until close()", async () => {
  const net = memoryNet();
  const reports: Json[] = [];
  const server = NkperfServer.listen({ port: PORT, net, onReport: (r) => reports.push(r) });
  const a = await runClient({ host: "h", time: 0.2, net });
  const b = await runClient({ host: "h", time: 0.2, reverse: true, net });
  server.close();
  await server.done;
  assert.equal(reports.length, 2);
  assert.equal(sum(reports[0]!, "sum_received").bytes, sum(a, "sum_received").bytes);
  assert.equal(sum(reports[1]!, "sum_sent").bytes, sum(b, "sum_sent").bytes);
  assert.ok(sum(b, "sum_sent").bytes > 0);
});

Deno.test("-O: the warm-up is one omitted interval and the results count only after it", async () => {
  const net = memoryNet();
  const reports: Json[] = [];
  const server = serverOn(net, reports);
  // 1 s measured after a 1 s warm-up: the two totals (1 s vs 2 s) stay apart even when timers
  // fire late on a loaded machine (0.4 s after 0.3 s left 0.25 s of slack).
  const c = await runClient({ host: "h", time: 1, omit: 1, intervalSec: 0.5, net });
  await server.done;
  const ivs = c.intervals as Json[];
  assert.equal((ivs[0]!.sum as Json).omitted, true);
  const measured = ivs.slice(1);
  assert.ok(measured.length >= 2 && measured.every((iv) => (iv.sum as Json).omitted === false));
  // Counting restarted after the warm-up: measured intervals run from 0 and the sender's
  // total covers about 1 s, not 2 s (bounds allow for late timers on a busy machine).
  assert.equal((measured[0]!.sum as Json).start, 0);
  const sent = sum(c, "sum_sent");
  assert.ok(sent.seconds > 0.5 && sent.seconds < 1.9, `seconds ${sent.seconds}`);
  const inIntervals = measured.reduce((a, iv) => a + ((iv.sum as Json).bytes as number), 0);
  assert.ok(inIntervals <= sent.bytes && inIntervals > 0.8 * sent.bytes);
  assert.equal(sum(reports[0]!, "sum_received").bytes, sum(c, "sum_received").bytes);
  assert.equal(((reports[0]!.intervals as Json[])[0]!.sum as Json).omitted, true);
});

Deno.test("the client fails with 'unexpected-eof' when the server vanishes mid-test", async () => {
  const net = memoryNet();
  const l = net.listen({ port: PORT });
  const fake = (async (): Promise<void> => {
    const ctrl = await l.accept();
    const r = new ControlReader(ctrl);
    await r.readCookie();
    await writeAll(ctrl, Uint8Array.of(State.PARAM_EXCHANGE));
    await r.readJson();
    await writeAll(ctrl, Uint8Array.of(State.CREATE_STREAMS));
    const data = await l.accept();
    await writeAll(ctrl, Uint8Array.of(State.TEST_START, State.TEST_RUNNING));
    await new Promise((res) => setTimeout(res, 100));
    ctrl.close();
    data.close();
  })();
  const started = performance.now();
  await assert.rejects(
    runClient({ host: "h", time: 5, net }),
    (e: unknown) => e instanceof ProtocolError && e.reason === "unexpected-eof",
  );
  assert.ok(performance.now() - started < 2000, "gave up long before -t 5 ended");
  await fake;
  l.close();
});

Deno.test("the server reports a client that vanishes mid-test and serves the next one", async () => {
  const net = memoryNet();
  const reports: Json[] = [];
  const server = NkperfServer.listen({ port: PORT, net, onReport: (r) => reports.push(r) });
  const ctrl = await net.connect({ hostname: "h", port: PORT });
  const r = new ControlReader(ctrl);
  const cookie = makeCookie();
  await writeAll(ctrl, encodeCookie(cookie));
  assert.equal(await r.readState(), State.PARAM_EXCHANGE);
  await writeAll(ctrl, encodeJsonFrame({ tcp: true, time: 5, parallel: 1, len: 1000 }));
  assert.equal(await r.readState(), State.CREATE_STREAMS);
  const data = await net.connect({ hostname: "h", port: PORT });
  await writeAll(data, encodeCookie(cookie));
  assert.equal(await r.readState(), State.TEST_START);
  assert.equal(await r.readState(), State.TEST_RUNNING);
  ctrl.close();
  data.close();
  for (let i = 0; i < 100 && reports.length === 0; i++) {
    await new Promise((res) => setTimeout(res, 10));
  }
  assert.match(String(reports[0]?.error), /closed the control connection/);
  const next = await runClient({ host: "h", time: 0.2, net });
  assert.ok(sum(next, "sum_sent").bytes > 0);
  server.close();
  await server.done;
  assert.equal(reports.length, 2);
});

Deno.test("the server says 'Server listening' only once its listener is ready (GuestLib's LISTEN reaches the NSM after listen() returns)", async () => {
  const base = memoryNet();
  let markReady: () => void = () => {};
  const ready = new Promise<void>((r) => markReady = r);
  const net: NetApi = {
    ...base,
    listen: (o) => Object.assign(base.listen(o), { ready }),
  };
  const lines: string[] = [];
  const server = NkperfServer.listen({
    port: PORT,
    net,
    oneOff: true,
    onText: (l) => lines.push(l),
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(!lines.some((l) => /Server listening/.test(l)), lines.join("\n"));
  markReady();
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(lines.some((l) => /Server listening on 5201/.test(l)), lines.join("\n"));
  await runClient({ host: "h", time: 0.1, net: base });
  await server.done;
});
