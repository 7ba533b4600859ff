import assert from "node:assert/strict";
import { main, nsmTcpConfig, NsmUsageError, parseNsmArgs } from "./cli.ts";
import { defaultTcpConfig } from "../stacks/tcpip/tcp/config.ts";
import { receiveShiftFor } from "../stacks/tcpip/tcp/tcb.ts";

Deno.test("parseNsmArgs() reads link, addresses, gateways, MTU, services and XDP options", () => {
  const o = parseNsmArgs([
    ...["--link", "xdp:veth0", "--ip", "198.18.0.1/24", "--ip6=fd00::1/64"],
    ...["--gw", "198.18.0.254", "--gw", "fd00::fe", "--mtu", "1400", "--echo", "7"],
    ...["--discard", "9", "--xdp-mode", "copy", "--queues", "2", "--partial-checksums", "off"],
  ]);
  assert.equal(o.linkKind, "xdp");
  assert.equal(o.ifname, "veth0");
  assert.equal(o.ipv4[0]!.address.toString(), "198.18.0.1");
  assert.equal(o.ipv4[0]!.prefixLength, 24);
  assert.equal(o.ipv6[0]!.address.toString(), "fd00::1");
  assert.equal(o.gateway4?.toString(), "198.18.0.254");
  assert.equal(o.gateway6?.toString(), "fd00::fe");
  assert.equal(o.mtu, 1400);
  assert.deepEqual(o.services, [{ kind: "echo", port: 7 }, { kind: "discard", port: 9 }]);
  assert.equal(o.xdpMode, "copy");
  assert.equal(o.queues, 2);
  assert.equal(o.partialChecksums, "off");
  assert.equal(o.spinUs, 200, "busy-poll 200 µs by default");
  assert.equal(o.spinYield, true, "yield while spinning by default");
  assert.equal(o.txChecksum, "auto", "TX checksum offload when the kernel has it");
  assert.equal(o.txKick, "inline", "the loop kicks by default");
  assert.equal(o.ring, 8192);
  assert.equal(o.rxFill, 1024, "1024 RX frames posted in the steady state");
  assert.equal(
    parseNsmArgs(["--link", "xdp:v", "--ip", "198.18.0.1/24", "--ring", "512"]).rxFill,
    512,
  );
  assert.equal(
    parseNsmArgs(["--link", "xdp:v", "--ip", "198.18.0.1/24", "--rx-fill", "64"]).rxFill,
    64,
  );
  const p = parseNsmArgs([
    ...["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--spin-us", "0", "--spin-yield", "off"],
    ...["--tx-checksum", "software", "--tx-kick", "thread"],
  ]);
  assert.equal(p.txChecksum, "software");
  assert.equal(p.txKick, "thread");
  assert.equal(p.spinUs, 0);
  assert.equal(p.spinYield, false);
});

const cases: [string[], RegExp][] = [
  [["--ip", "198.18.0.1/24"], /--link is required/],
  [["--link", "eth0", "--ip", "198.18.0.1/24"], /give xdp:IF .* or tap:NAME/],
  [["--link", "xdp:averyveryverylongname", "--ip", "198.18.0.1/24"], /1-15 characters/],
  [["--link", "xdp:v0"], /at least one address/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1"], /give ADDR\/LEN/],
  [["--link", "xdp:v0", "--ip", "fd00::1/64"], /IPv6 address; use --ip6/],
  [["--link", "xdp:v0", "--ip", "198.18.0.300/24"], /not an IP address/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/33"], /prefix length must be 0..32/],
  [["--link", "xdp:v0", "--ip6", "fd00::1/129"], /prefix length must be 0..128/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--gw", "198.19.0.1"], /not inside any --ip/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--mtu", "100"], /--mtu 100: .*1280..65000/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--echo", "0"], /--echo 0: .*1..65535/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--echo", "7", "--discard", "7"], /already has/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--xdp-mode", "fast"], /auto, copy, zerocopy/],
  [["--link", "tap:t0", "--ip", "198.18.0.1/24", "--queues", "2"], /xdp:IF only/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--mtu"], /--mtu needs a value/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--bogus"], /unknown flag --bogus/],
  [["--link", "xdp:a", "--link", "xdp:b"], /--link given twice/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--ring", "1000"], /--ring 1000: .*power of two/],
  [["--link", "tap:t0", "--ip", "198.18.0.1/24", "--ring", "1024"], /xdp:IF only/],
  [["--link", "tap:t0", "--ip", "198.18.0.1/24", "--rx-fill", "64"], /xdp:IF only/],
  [
    ["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--ring", "512", "--rx-fill", "1024"],
    /at most --ring \(512\)/,
  ],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--cc", "nosuchcc"], /--cc nosuchcc: .*reno/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--spin-us", "-1"], /--spin-us -1: .*0..1000000/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--spin-us", "2s"], /--spin-us 2s: .*0..1000000/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--spin-yield", "yes"], /on, off/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--tx-checksum", "hw"], /auto, on, off, software/],
  [["--link", "xdp:v0", "--ip", "198.18.0.1/24", "--tx-kick", "nic"], /inline, thread, auto/],
];

for (const [args, message] of cases) {
  Deno.test(`parseNsmArgs(${args.join(" ")}) fails with ${message}`, () => {
    assert.throws(() => parseNsmArgs(args), (e: unknown) => {
      assert.ok(e instanceof NsmUsageError);
      assert.match(e.message, message);
      return true;
    });
  });
}

Deno.test("main() exits 2 with the message on a usage error and 1 when the interface is missing", async () => {
  const errors: string[] = [];
  const orig = console.error;
  console.error = (m: string) => errors.push(m);
  try {
    assert.equal(await main(["--link", "xdp:v0"]), 2);
    assert.match(errors.join("\n"), /nsm: give at least one address/);
    errors.length = 0;
    assert.equal(await main(["--link", "xdp:nsmnosuchif0", "--ip", "198.18.0.1/24"]), 1);
    assert.match(errors.join("\n"), /nsmnosuchif0/);
  } finally {
    console.error = orig;
  }
});

Deno.test("nsmTcpConfig() auto-tunes receive buffers within window scale 3 and keeps send buffers fixed", () => {
  const c = nsmTcpConfig();
  const tcp = { ...defaultTcpConfig(), ...c };
  assert.equal(tcp.sendBufferMax, 0, "no send tuning until the TX ring's queue is bounded");
  assert.equal(c.bufferTuningBudget, 1024 * 1024 * 1024);
  assert.ok(c.receiveBufferMax! > tcp.socket.receiveBufferSize, "receive buffers grow");
  // A larger scale's granularity would not divide 1448-byte segments (window edges inside
  // segments: the receive ring's reads make views again).
  assert.equal(receiveShiftFor(tcp.socket, tcp), 3);
  assert.equal(nsmTcpConfig("cubic").socket?.congestionControl, "cubic");
  assert.equal(c.ackCoalescing, true);
});
