import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { Simulator } from "../sim/simulator.ts";
import { tcpPointToPoint } from "../tests/support/tcp_sim_hosts.ts";
import { NsmDevice } from "./device.ts";
import {
  collectConnections,
  collectDevices,
  collectGuests,
  collectInterface,
  collectNqe,
  collectSla,
  collectTcp,
  escapeLabelValue,
  ExpositionParseError,
  isLoopback,
  MetricsError,
  MetricsRegistry,
  parseListenAddress,
  parsePrometheusText,
  PROMETHEUS_CONTENT_TYPE,
  serveMetrics,
} from "./metrics.ts";
import { StaticGuestTable } from "./ops_view.ts";
import { EgressScheduler } from "./sla.ts";

Deno.test("MetricsRegistry.render() writes HELP/TYPE, escaped labels, families by name and series by labels", () => {
  const reg = new MetricsRegistry();
  const g = reg.gauge("zz_temp", "A gauge\nwith a \\ in help.", ["host"]);
  const c = reg.counter("aa_requests_total", "Requests.", ["path", "code"]);
  c.inc({ path: "/b", code: 200 }, 2);
  c.inc({ path: '/a"q\\\n', code: 500 });
  c.inc({ path: "/b", code: 200 });
  g.set({ host: "x" }, Infinity);
  reg.counter("mm_empty", "Never set.");
  const text = reg.render(0);
  assert.equal(
    text,
    [
      "# HELP aa_requests_total Requests.",
      "# TYPE aa_requests_total counter",
      'aa_requests_total{path="/a\\"q\\\\\\n",code="500"} 1',
      'aa_requests_total{path="/b",code="200"} 3',
      "# HELP zz_temp A gauge\\nwith a \\\\ in help.",
      "# TYPE zz_temp gauge",
      'zz_temp{host="x"} +Inf',
      "",
    ].join("\n"),
  );
  const parsed = parsePrometheusText(text);
  assert.deepEqual([...parsed.keys()], ["aa_requests_total", "zz_temp"]);
  const a = parsed.get("aa_requests_total")!;
  assert.equal(a.type, "counter");
  assert.deepEqual(a.samples[0]!.labels, { path: '/a"q\\\n', code: "500" });
  assert.equal(parsed.get("zz_temp")!.help, "A gauge\nwith a \\ in help.");
  assert.equal(parsed.get("zz_temp")!.samples[0]!.value, Infinity);
  assert.equal(reg.render(0), text, "stable output");
});

Deno.test("MetricsRegistry rejects bad names, unknown or missing labels and falling counters", () => {
  const reg = new MetricsRegistry();
  assert.throws(() => reg.counter("1bad", "x"), /metric name "1bad" is invalid/);
  assert.throws(() => reg.gauge("ok", "x", ["__x"]), /label name "__x" is invalid/);
  const c = reg.counter("c_total", "x", ["a"]);
  assert.throws(() => c.inc({}), /needs label "a"/);
  assert.throws(() => c.inc({ a: "1", b: "2" }), /has no label "b"; its labels are: a/);
  assert.throws(() => c.inc({ a: "1" }, -1), /cannot go down; use a gauge/);
  assert.throws(() => reg.gauge("c_total", "x", ["a"]), /exists as a counter/);
  assert.equal(reg.counter("c_total", "again", ["a"]), c);
  assert.equal(escapeLabelValue('a"b'), 'a\\"b');
});

Deno.test("parsePrometheusText() names the line of malformed input", () => {
  assert.throws(() => parsePrometheusText("ok 1\nbad{x=1} 2\n"), (e) => {
    assert.ok(e instanceof ExpositionParseError);
    assert.equal(e.line, 2);
    return true;
  });
  assert.throws(() => parsePrometheusText("m abc\n"), /line 1: bad value "abc"/);
  assert.throws(() => parsePrometheusText("m 1\n# TYPE m gauge\n"), /TYPE after samples/);
  const p = parsePrometheusText('# a comment\nm{a="1"} -Inf 123\n');
  assert.equal(p.get("m")!.samples[0]!.value, -Infinity);
});

Deno.test("parseListenAddress/isLoopback accept loopback forms and serveMetrics refuses others with advice", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:9464"), { hostname: "127.0.0.1", port: 9464 });
  assert.deepEqual(parseListenAddress("[::1]:9"), { hostname: "::1", port: 9 });
  assert.deepEqual(parseListenAddress("9464"), { hostname: "127.0.0.1", port: 9464 });
  assert.deepEqual(parseListenAddress(":0"), { hostname: "127.0.0.1", port: 0 });
  assert.throws(() => parseListenAddress("::1:9"), /write 127.0.0.1:9464 or \[::1\]:9464/);
  assert.throws(() => parseListenAddress("h:70000"), /not in 0..65535/);
  assert.ok(isLoopback("127.3.2.1") && isLoopback("::1") && isLoopback("localhost"));
  assert.ok(!isLoopback("198.18.0.1") && !isLoopback("0.0.0.0") && !isLoopback("127.0.0.256"));
  const reg = new MetricsRegistry();
  assert.throws(
    () => serveMetrics(reg, "0.0.0.0:9464"),
    (e) =>
      e instanceof MetricsError && /not a loopback address.*--metrics-allow-remote/.test(e.message),
  );
});

Deno.test("metrics endpoint on 127.0.0.1 serves interface, TCP, per-connection, guest, NQE and SLA metrics that parse back to the live values", async () => {
  const sim = new Simulator({ seed: 3 });
  const { a, b, b4 } = tcpPointToPoint(sim, { rateBps: 100_000_000, delay: MILLISECOND });
  const l = b.tcp.listen(null, 5001, 4);
  const c = a.tcp.connect(b4, 5001, 0);
  const data = new Uint8Array(200_000).fill(7);
  let sent = 0;
  let srv = -1;
  let got = 0;
  const buf = new Uint8Array(65536);
  a.app = (now) => {
    if (a.tcp.state(c) !== "ESTABLISHED" || sent === data.length) return;
    sent += a.tcp.send(c, data.subarray(sent), now);
  };
  b.app = (now) => {
    if (srv < 0) srv = b.tcp.accept(l);
    if (srv < 0) return;
    for (let n; (n = b.tcp.recv(srv, buf, now)) > 0;) got += n;
  };
  sim.runUntil(SECOND);
  assert.equal(got, data.length);

  const table = new StaticGuestTable();
  table.conns = [{ guest: 1, stack: a.tcp, id: c }];
  let fromGuest = 1000;
  table.rows = [{ id: 1, pid: 42, device: "/dev/shm/x", sockets: 1, bytesFromGuest: fromGuest }];
  const sched = new EgressScheduler({ linkRate: 1_000_000 }, 0);
  sched.setGuest(1, { rate: 500_000, minRate: 100_000 }, 0);
  const reg = new MetricsRegistry();
  collectInterface(reg, a.iface, "sim0");
  collectTcp(reg, a.tcp, "tcp");
  collectConnections(reg, table);
  collectGuests(reg, table);
  collectNqe(reg, () => ({
    attached: 1,
    attachFailed: 0,
    detached: { eof: 2 },
    requests: 10,
    completions: 9,
    notifications: 3,
    bytesToGuests: 5,
    bytesFromGuests: 6,
    rejected: { "bad-op": 1 },
  }));
  collectSla(reg, sched);
  let clock = 0;
  const server = serveMetrics(reg, "127.0.0.1:0", { clock: () => clock });
  try {
    assert.equal(server.hostname, "127.0.0.1");
    const scrape = async (): Promise<ReturnType<typeof parsePrometheusText>> => {
      const res = await fetch(server.url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
      return parsePrometheusText(await res.text());
    };
    const m = await scrape();
    const one = (name: string, labels: Record<string, string>): number => {
      const f = m.get(name);
      assert.ok(f !== undefined, `${name} missing`);
      const s = f.samples.filter((x) =>
        Object.entries(labels).every(([k, v]) => x.labels[k] === v)
      );
      assert.equal(s.length, 1, `${name} ${JSON.stringify(labels)}: ${s.length} series`);
      return s[0]!.value;
    };
    const ic = a.iface.counters;
    assert.equal(m.get("nsm_iface_packets_total")!.type, "counter");
    assert.equal(
      one("nsm_iface_packets_total", { iface: "sim0", layer: "ipv4", dir: "tx" }),
      ic.ipv4.tx,
    );
    assert.ok(ic.ipv4.tx > 100);
    assert.equal(
      one("nsm_tcp_events_total", { event: "segments_out" }),
      a.tcp.counters.segmentsOut,
    );
    assert.equal(one("nsm_tcp_connections", { stack: "tcp" }), a.tcp.connectionCount);
    const info = a.tcp.info(c);
    assert.equal(one("nsm_conn_cwnd_bytes", { guest: "1", cc: "reno" }), info.cwnd);
    assert.equal(one("nsm_conn_bytes_acked", { conn: `tcp:${c}` }), info.bytesAcked);
    assert.ok(info.bytesAcked >= 200_000);
    assert.equal(
      one("nsm_conn_srtt_seconds", { remote: "198.18.0.2:5001" }),
      Math.round(info.srtt / 1000) / 1e6,
    );
    assert.equal(one("nsm_guest_bytes_total", { guest: "1", dir: "tx" }), 1000);
    assert.equal(one("nsm_nqe_total", { event: "requests" }), 10);
    assert.equal(one("nsm_nqe_rejected_total", { reason: "bad-op" }), 1);
    assert.equal(one("nsm_sla_limit_bytes", { guest: "1" }), 500_000);
    assert.equal(one("nsm_sla_guarantee_bytes", { guest: "1" }), 100_000);
    assert.equal(one("nsm_sla_link_bytes", {}), 1_000_000);
    assert.equal(m.get("nsm_guest_throughput_bytes"), undefined, "no rate before two scrapes");

    // Two seconds later the guest sent 3 MB more: throughput 1.5 MB/s.
    clock = 2 * SECOND;
    fromGuest += 3_000_000;
    table.rows = [{ id: 1, pid: 42, device: "/dev/shm/x", sockets: 1, bytesFromGuest: fromGuest }];
    const m2 = await scrape();
    const tp = m2.get("nsm_guest_throughput_bytes")!.samples;
    assert.deepEqual(tp, [{
      name: "nsm_guest_throughput_bytes",
      labels: { guest: "1", dir: "tx" },
      value: 1_500_000,
    }]);
    assert.equal((await fetch(server.url.replace("/metrics", "/x"))).status, 404);
    assert.equal(server.scrapes(), 2);
  } finally {
    await server.shutdown();
  }
});

Deno.test("collectDevices() exports ring indices, full counts, faults and data-region state per guest", () => {
  const dev = NsmDevice.create({
    name: `nk-metrics-test-${Deno.pid}`,
    ringCapacity: 16,
    chunkSize: 2048,
    chunksPerHalf: 4,
    hugePages: "never",
    replaceStale: true,
  });
  try {
    const rx = dev.queueSets[0]!.receive;
    rx.publish(rx.claim(16)); // fill the ring the NSM writes
    assert.equal(rx.claim(1), 0, "full");
    assert.equal(dev.data.borrow(1e9, 10), "offset-out-of-region");
    const reg = new MetricsRegistry();
    collectDevices(reg, () => [{ guest: 3, device: dev }]);
    const m = parsePrometheusText(reg.render(0));
    const val = (name: string, labels: Record<string, string>): number | undefined =>
      m.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        ?.value;
    assert.equal(val("nsm_ring_index_total", { guest: "3", qs: "0", ring: "receive" }), 16);
    assert.equal(val("nsm_ring_full_total", { guest: "3", ring: "receive" }), 1);
    assert.equal(val("nsm_ring_faulted", { guest: "3", ring: "job" }), 0);
    assert.equal(val("nsm_data_free_chunks", { guest: "3" }), 4);
    const faults = Object.entries(dev.data.faults).filter(([, n]) => n > 0);
    assert.equal(faults.length, 1);
    assert.equal(val("nsm_data_faults_total", { guest: "3", reason: faults[0]![0] }), 1);
  } finally {
    dev.close();
  }
});
