import assert from "node:assert/strict";
import { SECOND } from "../stacks/time.ts";
import { cleanPath, Endpoint, payload, TcpPair } from "../tests/support/tcp_pair.ts";
import { ControlHandler, ControlServer } from "./control_proto.ts";
import { type ConnRow, StaticGuestTable } from "./ops_view.ts";
import { EgressScheduler } from "./sla.ts";
import { CTL_USAGE, fmtRate, parseCtlArgs, runCtl } from "./ctl.ts";

interface Captured {
  code: number;
  out: string;
  err: string;
}

async function ctl(args: string[], path: string): Promise<Captured> {
  let out = "";
  let err = "";
  const code = await runCtl(args, { out: (t) => (out += t), err: (t) => (err += t) }, path);
  return { code, out, err };
}

/** A running "NSM": two stacks with one guest connection mid-transfer, served on a socket. */
async function withNsm(
  fn: (path: string, pair: TcpPair, conn: number) => Promise<void>,
): Promise<void> {
  const pair = new TcpPair(cleanPath(), 21);
  const l = pair.b.listen(null, 7000, 4);
  const c = pair.a.connect(pair.addrB, 7000, 0);
  const data = payload(2_000_000, 3);
  const ea = new Endpoint(pair.a, c, data, 0);
  const eb = new Endpoint(pair.b, -1, new Uint8Array(0), data.length);
  pair.run(
    2 * SECOND,
    () => {
      if (eb.id < 0) eb.id = pair.b.accept(l);
      ea.pump(pair.now);
      eb.pump(pair.now);
    },
    () => eb.got > 200_000,
  );
  const table = new StaticGuestTable();
  table.rows = [{
    id: 4,
    pid: 77,
    device: "/dev/shm/nk-g4",
    sockets: 1,
    bytesFromGuest: ea.written,
  }];
  table.conns = [{ guest: 4, stack: pair.a, id: c }];
  const sla = new EgressScheduler({ linkRate: 125_000_000 }, pair.now);
  const handler = new ControlHandler({
    stacks: [{ name: "tcp", tcp: pair.a }],
    guests: table,
    sla,
    clock: () => pair.now,
  });
  const server = new ControlServer(handler);
  const dir = await Deno.makeTempDir({ prefix: "nsm-ctl-" });
  const path = `${dir}/ctl.sock`;
  server.listen(path);
  try {
    await fn(path, pair, c);
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ctl: every command prints a table and --json gives the NSM's data", async () => {
  await withNsm(async (path, pair, c) => {
    const conns = await ctl(["conns"], path);
    assert.equal(conns.code, 0, conns.err);
    const lines = conns.out.split("\n");
    assert.match(lines[0]!, /^State\s+Guest\s+Conn\s+Local Address:Port\s+Peer Address:Port$/);
    assert.match(
      lines[1]!,
      new RegExp(
        `^${pair.a.state(c)}\\s+4\\s+tcp:${c}\\s+198\\.18\\.0\\.1:\\d+\\s+198\\.18\\.0\\.2:7000$`,
      ),
    );
    assert.match(
      lines[2]!,
      /^\t reno mss:\d+ rtt:\d+\.\d{3}\/\d+\.\d{3} rto:\d+ cwnd:\d+ ssthresh:\S+ bytes_sent:\d+ bytes_acked:\d+ bytes_received:0 retrans:\d+ pacing_rate \S+ delivery_rate \S+$/,
    );
    const j = await ctl(["--json", "conns", "--guest", "4"], path);
    const rows = JSON.parse(j.out) as ConnRow[];
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.cwnd, pair.a.info(c).cwnd);
    assert.deepEqual(JSON.parse((await ctl(["conns", "--guest=5", "--json"], path)).out), []);
    assert.equal((await ctl(["conns", "--guest", "5"], path)).out, "no connections\n");

    const g = await ctl(["guests"], path);
    assert.match(g.out, /^GUEST\s+PID\s+SOCKETS\s+CONNS\s+TX BYTES/);
    assert.match(g.out, /\n4\s+77\s+1\s+1\s+\d+\s+-\s+-\s+-\s+-\s+\/dev\/shm\/nk-g4\n$/);
    const gj = JSON.parse((await ctl(["guests", "--json"], path)).out);
    assert.equal(gj[0].id, 4);

    const st = await ctl(["stats"], path);
    assert.match(st.out, /tcp tcp: 1 connections, \d+ sockets, default cc reno/);
    assert.match(st.out, /segmentsOut\s+\d+/);
    const sj = JSON.parse((await ctl(["--json", "stats"], path)).out);
    assert.equal(sj.tcp[0].counters.segmentsOut, pair.a.counters.segmentsOut);

    const cl = await ctl(["cc", "list"], path);
    assert.match(cl.out, /^NAME\s+DEFAULT\s+CONNS\s+VERSION\s+SOURCE\n/);
    assert.match(cl.out, /\nreno\s+\*\s+1\s+-\s+builtin\n/);

    const set = await ctl(["cc", "set", "reno", "--conn", `tcp:${c}`], path);
    assert.equal(set.out, `reno on 1 connection(s): tcp:${c}\n`);
    const setj = JSON.parse((await ctl(["cc", "set", "reno", "--guest", "4", "--json"], path)).out);
    assert.deepEqual(setj.changed, [`tcp:${c}`]);
    assert.equal(
      (await ctl(["cc", "set", "reno", "--default"], path)).out,
      "default for new connections is now reno\n",
    );

    const ss = await ctl(["sla", "set", "4", "rate=100mbit,min=20mbit"], path);
    assert.equal(ss.code, 0, ss.err);
    assert.equal(
      ss.out,
      "guest 4: limit 100.0Mbps, burst 65536, guarantee 20.0Mbps, weight 2500000\n",
    );
    const link = await ctl(["sla", "set", "--link", "1gbit", "--burst", "128k"], path);
    assert.equal(link.out, "link updated\n");
    const show = await ctl(["sla", "show"], path);
    assert.match(show.out, /^link 1\.0Gbps burst 131072\nGUEST\s+LIMIT\s+BURST\s+GUARANTEE/);
    assert.match(show.out, /\n4\s+100\.0Mbps\s+65536\s+20\.0Mbps\s+2500000\s+0\s+0\s+no\n/);
    const showj = JSON.parse((await ctl(["sla", "show", "--json"], path)).out);
    assert.equal(showj.link.rate, 125_000_000);
  });
});

Deno.test("ctl: errors say what to do and exit 1 (refused), 2 (usage) or 3 (no NSM)", async () => {
  await withNsm(async (path) => {
    const unknown = await ctl(["cc", "set", "vegas", "--default"], path);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /congestion control "vegas" is not loaded; load it with ctl cc load/);
    const uj = await ctl(["cc", "set", "vegas", "--default", "--json"], path);
    assert.equal(JSON.parse(uj.out).error.code, "unknown-cc");
    const conn = await ctl(["cc", "set", "reno", "--conn", "tcp:999"], path);
    assert.equal(conn.code, 1);
    assert.match(conn.err, /see ctl conns/);
    const load = await ctl(["cc", "load", "/nonexistent.wasm"], path);
    assert.equal(load.code, 1);
    assert.match(load.err, /no congestion-control host/);
    const bad = await ctl(["sla", "set", "4", "rate=quick"], path);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /write it like 100mbit/);
  });
  const usage = await ctl(["cc", "set", "reno"], "/nonexistent/ctl.sock");
  assert.equal(usage.code, 2);
  assert.match(
    usage.err,
    /^error: cc set needs exactly one of --conn ID, --guest G, --default\n\nusage:/,
  );
  assert.equal((await ctl(["frobnicate"], "/x")).code, 2);
  assert.equal((await ctl(["conns", "--guest", "x"], "/x")).code, 2);
  assert.equal((await ctl(["sla", "set", "--link", "fast"], "/x")).code, 2);
  const none = await ctl(["conns"], "/nonexistent/ctl.sock");
  assert.equal(none.code, 3);
  assert.match(
    none.err,
    /cannot reach the NSM at \/nonexistent\/ctl.sock: no such socket; start it with deno task nsm, or pass --ctl PATH/,
  );
  const help = await ctl(["--help"], "/x");
  assert.equal(help.code, 0);
  assert.equal(help.out, CTL_USAGE);
});

Deno.test("parseCtlArgs maps the command line onto protocol requests", () => {
  assert.deepEqual(parseCtlArgs(["--ctl", "/s", "cc", "load", "a.wasm", "--name", "x"], "/d"), {
    ctl: "/s",
    json: false,
    cmd: "cc.load",
    args: { file: "a.wasm", name: "x" },
  });
  assert.deepEqual(parseCtlArgs(["sla", "set", "3", "rate=1mbit"], "/d")!.args, {
    guest: 3,
    spec: "rate=1mbit",
  });
  assert.deepEqual(parseCtlArgs(["sla", "set", "--link", "8mbit"], "/d")!.args, {
    link: { rate: 1_000_000 },
  });
  assert.equal(parseCtlArgs(["-h"], "/d"), null);
  assert.equal(fmtRate(12_500_000), "100.0Mbps");
});
