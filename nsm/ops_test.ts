import assert from "node:assert/strict";
import { MILLISECOND } from "../stacks/time.ts";
import { Simulator } from "../sim/simulator.ts";
import { tcpPointToPoint } from "../tests/support/tcp_sim_hosts.ts";
import { ControlClient, LineReader } from "./control_proto.ts";
import { MetricsError, parsePrometheusText } from "./metrics.ts";
import { StaticGuestTable } from "./ops_view.ts";
import { dispatchShared, NsmOps, OpsFlagError, parseOpsFlags } from "./ops.ts";

Deno.test("parseOpsFlags() takes the operator flags out of argv and leaves the rest in order", () => {
  const { flags, rest } = parseOpsFlags([
    "--link",
    "xdp:eth0",
    "--metrics=127.0.0.1:9464",
    "--sla-link",
    "1gbit",
    "--sla",
    "1:rate=100mbit,min=50mbit",
    "--sla=2:weight=3",
    "--sla-default",
    "rate=10mbit",
    "--metrics-allow-remote",
    "--echo",
    "7",
  ]);
  assert.deepEqual(rest, ["--link", "xdp:eth0", "--echo", "7"]);
  assert.equal(flags.metrics, "127.0.0.1:9464");
  assert.equal(flags.metricsAllowRemote, true);
  assert.equal(flags.slaLink, 125_000_000);
  assert.deepEqual(flags.slas.get(1), { rate: 12_500_000, minRate: 6_250_000 });
  assert.deepEqual(flags.slas.get(2), { weight: 3 });
  assert.deepEqual(flags.slaDefault, { rate: 1_250_000 });
  assert.throws(
    () => parseOpsFlags(["--sla", "rate=1mbit"]),
    /is not GUEST:SPEC; write e.g. --sla 1:rate=100mbit/,
  );
  assert.throws(() => parseOpsFlags(["--sla-link", "fast"]), OpsFlagError);
  assert.throws(() => parseOpsFlags(["--metrics"]), /--metrics needs a value/);
});

Deno.test("NsmOps.start() mounts SLAs, ctl on its own socket and metrics on 127.0.0.1 from the flags", async () => {
  const sim = new Simulator({ seed: 2 });
  const { a } = tcpPointToPoint(sim, { rateBps: 1e8, delay: MILLISECOND });
  const dir = await Deno.makeTempDir({ prefix: "nsm-ops-" });
  const { flags } = parseOpsFlags([
    "--metrics",
    "127.0.0.1:0",
    "--sla-link",
    "80mbit",
    "--sla",
    "1:rate=8mbit",
    "--sla-default",
    "weight=2",
  ]);
  const table = new StaticGuestTable();
  table.rows = [{ id: 1, pid: 1, device: "d1", sockets: 0 }, {
    id: 5,
    pid: 5,
    device: "d5",
    sockets: 0,
  }];
  const ops = NsmOps.start({
    flags,
    stacks: [{ name: "tcp", tcp: a.tcp }],
    ifaces: [{ name: "sim0", iface: a.iface }],
    guests: table,
    clock: () => sim.now,
    ctlPath: `${dir}/ctl.sock`,
  });
  try {
    assert.ok(ops.sla !== null);
    assert.deepEqual(ops.guestAttached(1, 0), []);
    ops.guestAttached(5, 0);
    assert.equal(ops.sla.sla(1)!.rate, 1_000_000);
    assert.equal(ops.sla.sla(5)!.weight, 2);
    const client = await ControlClient.connect(`${dir}/ctl.sock`);
    const show = await client.request<{ link: { rate: number }; guests: unknown[] }>("sla.show");
    client.close();
    assert.equal(show.link.rate, 10_000_000);
    assert.equal(show.guests.length, 2);
    const text = await (await fetch(ops.metrics!.url)).text();
    const m = parsePrometheusText(text);
    assert.equal(m.get("nsm_sla_link_bytes")!.samples[0]!.value, 10_000_000);
    assert.equal(m.get("nsm_guests")!.samples[0]!.value, 2);
    assert.ok(m.has("nsm_iface_packets_total") && m.has("nsm_tcp_events_total"));
    ops.guestDetached(5);
    assert.equal(ops.sla.has(5), false);
  } finally {
    await ops.close();
    await Deno.remove(dir, { recursive: true });
  }
  const { flags: remote } = parseOpsFlags(["--metrics", "198.18.0.1:9464"]);
  assert.throws(
    () => NsmOps.start({ flags: remote, stacks: [], clock: () => 0 }),
    (e) => e instanceof MetricsError && /--metrics-allow-remote/.test(e.message),
  );
  const none = NsmOps.start({ stacks: [], clock: () => 0 });
  assert.equal(none.sla, null);
  assert.equal(none.metrics, null);
  await none.close();
});

Deno.test("dispatchShared() sends operators to the control server and attach lines to the guest path on one socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nsm-shared-" });
  const path = `${dir}/ctl.sock`;
  const ops = NsmOps.start({ stacks: [], clock: () => 0 });
  const attached: { pid: number | undefined; extra: string | null }[] = [];
  const kinds: string[] = [];
  const listener = Deno.listen({ transport: "unix", path });
  const loop = (async () => {
    for (let i = 0; i < 3; i++) {
      const conn = await listener.accept();
      kinds.push(
        await dispatchShared(conn, ops.server, async (c, hello, reader: LineReader) => {
          // A ServiceLib would create the device here and answer with its path.
          await c.write(
            new TextEncoder().encode(`{"guest":1,"device":"/dev/shm/x","version":1}\n`),
          );
          attached.push({ pid: hello.pid, extra: await reader.next() });
          c.close();
        }),
      );
    }
  })();
  try {
    // An operator.
    const op = await ControlClient.connect(path);
    assert.deepEqual(await op.request("conns"), []);
    assert.deepEqual(await op.request("guests"), []);
    // A guest: hello then one more line it pipelined.
    const g = await Deno.connect({ transport: "unix", path });
    await g.write(new TextEncoder().encode('{"v":1,"type":"attach","pid":42}\n{"x":1}\n'));
    const gr = new LineReader(g);
    assert.deepEqual(JSON.parse((await gr.next())!), {
      guest: 1,
      device: "/dev/shm/x",
      version: 1,
    });
    g.close();
    // Something else.
    const bad = await Deno.connect({ transport: "unix", path });
    await bad.write(new TextEncoder().encode("hello\n"));
    const br = new LineReader(bad);
    const err = JSON.parse((await br.next())!);
    assert.match(err.error.message, /start with \{"v":1,"type":"attach"\}/);
    assert.equal(await br.next(), null, "closed after the error");
    bad.close();
    await loop;
    op.close();
    assert.deepEqual(kinds.sort(), ["attach", "invalid", "op"]);
    assert.deepEqual(attached, [{ pid: 42, extra: '{"x":1}' }]);
  } finally {
    listener.close();
    await ops.close();
    await Deno.remove(dir, { recursive: true });
  }
});
