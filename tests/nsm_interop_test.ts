/**
 * The NSM as a program (`nsm/cli.ts` in a subprocess, in its own network namespace on the NSM
 * end of a veth pair, AF_XDP) against the Linux kernel in the peer namespace, which uses only
 * its own tools (ping, python3 sockets, tcpdump, tshark):
 *
 * - ping/ping -6 to our addresses (the peer resolves us by ARP and NDP), ICMP port unreachable
 *   for a closed UDP port (ECONNREFUSED on a connected UDP socket, as traceroute relies on);
 * - UDP echo over IPv4 and IPv6;
 * - TCP: 100 MB streamed through our echo service and read back SHA-256 identical (both
 *   directions of our stack at once), 100 MB into discard, 10 simultaneous echo connections,
 *   with the peer's checksum/segmentation offloads on and off (on: its checksums arrive
 *   partial and are accepted as such on veth); 2000 connections opened at once (v6, v4);
 * - MTU 9000 on AF_XDP (multi-buffer descriptor chains) and through `--link tap:`;
 * - a tcpdump capture of a mixed exchange: tshark with checksum validation finds no malformed
 *   packet and no bad checksum.
 *
 * Every test builds its own lab (unique names) and tears it down in `finally`; every external
 * command runs under `timeout`. Needs root, iproute2, ethtool, python3, ping, tcpdump, tshark.
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";
import { Lab, run } from "../xdp/lab.ts";
import { MANY_PY, NsmProcess, script, STREAM_PY, UDP_PY } from "./support/nsm_peer.ts";

const gate = needsAll(
  needsRoot(),
  needsTool("ip"),
  needsTool("ethtool"),
  needsTool("ping"),
  needsTool("python3"),
  needsTool("timeout"),
  needsTool("tcpdump"),
  needsTool("tshark"),
);

const MB = 1_000_000;

function lossOf(pingOutput: string): number {
  const m = /(\d+(?:\.\d+)?)% packet loss/.exec(pingOutput);
  return m === null ? -1 : Number(m[1]);
}

/** Runs the stream client in the peer namespace; returns its first line (asserted ok). */
async function stream(
  lab: Lab,
  host: string,
  port: number,
  bytes: number,
  conns: number,
  mode: "echo" | "discard",
): Promise<{ mbit: number; secs: number; line: string }> {
  const py = await script("stream.py", STREAM_PY);
  const r = await lab.peer(
    ["timeout", "90", "python3", py, host, String(port), String(bytes), String(conns), mode],
    true,
  );
  const line = r.stdout.split("\n")[0] ?? "";
  assert.equal(r.code, 0, `stream client failed: ${r.stdout}\n${r.stderr}`);
  assert.match(line, /^ok /, `${mode} ${host}: ${r.stdout}`);
  assert.match(line, new RegExp(`bytes=${bytes * conns}\\b`));
  const mbit = Number(/mbit=([\d.]+)/.exec(line)![1]);
  const secs = Number(/secs=([\d.]+)/.exec(line)![1]);
  return { mbit, secs, line };
}

/** What a stopped capture reports: tcpdump's stderr and the packets the kernel dropped. */
interface CaptureResult {
  readonly log: string;
  /** "N packets dropped by kernel": frames that matched the filter but found the ring full. */
  readonly kernelDrops: number;
}

/**
 * Kernel buffer for captures, in KiB (tcpdump `-B`): 64 MiB holds a whole capture phase here
 * (~20k frames at a 2 KiB slot each), so a capture is complete even when tcpdump gets no CPU
 * while a parallel test saturates both cores.
 */
const CAPTURE_BUFFER_KIB = 65536;

/**
 * A two-way tcpdump on the peer interface: only frames matching `filter`, each cut to
 * `snaplen` bytes. `--immediate-mode` makes libpcap use fixed slots of ~snaplen, so a small
 * snaplen means many slots in the buffer; it also delivers every frame before SIGINT ends the
 * capture. `stop()` ends it and returns its stderr and kernel-drop count.
 */
async function startCapture(
  lab: Lab,
  file: string,
  filter: string,
  snaplen: number,
): Promise<{ stop: () => Promise<CaptureResult> }> {
  const proc = new Deno.Command("ip", {
    args: [
      ...["netns", "exec", lab.peerNs, "timeout", "180", "tcpdump", "-i", lab.peerIf, "-n"],
      ...["-U", "--immediate-mode", "-B", String(CAPTURE_BUFFER_KIB), "-s", String(snaplen)],
      ...["-w", file, filter],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let err = "";
  const drained = (async () => {
    for await (const chunk of proc.stderr) err += dec.decode(chunk);
  })();
  // Generous: starting a process on a loaded 2-core machine can take seconds.
  const deadline = Date.now() + 30_000;
  while (!err.includes("listening on") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const stop = async (): Promise<CaptureResult> => {
    try {
      proc.kill("SIGINT");
    } catch { /* gone */ }
    await proc.status;
    await drained;
    const m = /(\d+) packets? dropped by kernel/.exec(err);
    if (m === null) throw new Error(`tcpdump printed no drop statistics: ${err}`);
    return { log: err, kernelDrops: Number(m[1]) };
  };
  if (!err.includes("listening on")) {
    await stop().catch(() => {});
    throw new Error(`tcpdump did not start within 30 s: ${err}`);
  }
  return { stop };
}

/**
 * Runs `phase` (which captures into a fresh file) until a capture comes back with no kernel
 * drops, at most `attempts` times; attempt n (0-based) is told n so it can send less. A capture
 * with drops cannot prove "nothing bad was sent" or "the peer never asked", so it is never
 * judged; failing to get a complete one fails the test with tcpdump's own numbers.
 */
async function completeCapture<T>(
  attempts: number,
  phase: (file: string, attempt: number) => Promise<{ capture: CaptureResult; value: T }>,
): Promise<{ file: string; capture: CaptureResult; value: T }> {
  const logs: string[] = [];
  for (let attempt = 0; attempt < attempts; attempt++) {
    const file = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      const r = await phase(file, attempt);
      if (r.capture.kernelDrops === 0) return { file, ...r };
      logs.push(`attempt ${attempt + 1}: ${r.capture.log.trim()}`);
      console.log(`capture incomplete (${r.capture.kernelDrops} kernel drops), running again`);
    } catch (e) {
      await Deno.remove(file).catch(() => {});
      throw e;
    }
    await Deno.remove(file).catch(() => {});
  }
  throw new Error(
    `tcpdump dropped frames in all ${attempts} capture attempts (machine too loaded for a ` +
      `complete capture; nothing was judged):\n${logs.join("\n")}`,
  );
}

/** tshark with checksum validation: number, protocols and expert messages of matching packets. */
async function tsharkMatches(file: string, filter: string): Promise<string[]> {
  const r = await run([
    ...["timeout", "60", "tshark", "-n", "-r", file],
    ...["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"],
    ...["-o", "udp.check_checksum:TRUE", "-Y", filter, "-T", "fields", "-e", "frame.number"],
    ...["-e", "frame.protocols", "-e", "_ws.expert.message"],
  ], true);
  assert.equal(r.code, 0, `tshark failed: ${r.stderr}`);
  return r.stdout.split("\n").filter((l) => l.trim() !== "");
}

const BAD = '(_ws.malformed || _ws.expert.severity == "Error" || ip.checksum.status == "Bad" || ' +
  'tcp.checksum.status == "Bad" || udp.checksum.status == "Bad" || ' +
  'icmp.checksum.status == "Bad" || icmpv6.checksum.status == "Bad")';

/** Builds a lab with the NSM in its namespace, runs `fn`, stops the NSM, checks a clean exit. */
async function withNsm(
  options: { offloads: "on" | "off"; queues?: number; nsmArgs?: string[] },
  fn: (lab: Lab, nsm: NsmProcess) => Promise<void>,
): Promise<Record<string, unknown>> {
  const queues = options.queues ?? 1;
  await using lab = await Lab.up({ offloads: options.offloads, nsmNamespace: true, queues });
  const nsm = await NsmProcess.start(lab.nsmNs, [
    ...["--link", `xdp:${lab.nsmIf}`, "--ip", `${lab.nsmV4}/24`, "--ip6", `${lab.nsmV6}/64`],
    ...["--echo", "7", "--discard", "9", "--queues", String(queues)],
    ...(options.nsmArgs ?? []),
  ]);
  let result;
  try {
    await fn(lab, nsm);
  } finally {
    result = await nsm.stop();
  }
  assert.equal(result.code, 0, `NSM exit status; stderr: ${result.stderr}`);
  assert.ok(result.stopped !== null, "the NSM printed its stopped line");
  assert.equal(result.stopped.tcpInternalErrors, 0);
  // The program is detached when the NSM exits: nothing left on the interface.
  assert.equal(await lab.nsmHasXdp(), false, "XDP program detached after SIGTERM");
  return result.stopped;
}

Deno.test({
  name:
    "nsm (AF_XDP): the Linux peer pings us over IPv4/IPv6 (ARP/NDP), gets UDP echo and ICMP port unreachable for a closed port",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    const stopped = await withNsm({ offloads: "on" }, async (lab, nsm) => {
      assert.match(nsm.ready, /ready link=xdp:\S+ mode=copy attach=native/);
      assert.match(nsm.ready, /addresses=198\.18\.0\.1\/24,fd00::1\/64/);
      const v4 = await lab.peer(["ping", "-c", "3", "-i", "0.2", "-W", "2", lab.nsmV4], true);
      assert.equal(lossOf(v4.stdout), 0, v4.stdout + v4.stderr);
      const v6 = await lab.peer(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", lab.nsmV6], true);
      assert.equal(lossOf(v6.stdout), 0, v6.stdout + v6.stderr);
      const neigh = (await lab.peer(["ip", "neigh", "show", "dev", lab.peerIf])).stdout;
      assert.match(neigh, new RegExp(`${lab.nsmV4.replaceAll(".", "\\.")} lladdr ${lab.nsmMac}`));
      assert.match(neigh, new RegExp(`${lab.nsmV6} lladdr ${lab.nsmMac}`));
      const py = await script("udp.py", UDP_PY);
      for (const host of [lab.nsmV4, lab.nsmV6]) {
        const r = await lab.peer(["timeout", "20", "python3", py, host, "7", "33434"], true);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(
          r.stdout.trim(),
          "echo-0-:7 echo-1-:307 echo-2-:607 echo-3-:907 echo-4-:1207\nrefused",
          host,
        );
      }
    });
    const services = stopped.services as Record<string, number>;
    assert.equal(services.udpIn, 10);
    assert.equal(services.udpOut, 10);
    // Offloads on: the peer's UDP checksums were partial and accepted as such.
    assert.ok((stopped.partialChecksums as number) >= 10);
  },
});

Deno.test({
  name:
    "nsm (AF_XDP) resolves the peer itself: with static entries on the peer (it never asks), our UDP replies follow our own ARP request and neighbour solicitation",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    let mac = "";
    // Only address resolution is judged: ARP and ICMPv6 (NDP), headers only.
    const { file, capture } = await completeCapture(3, async (file) => {
      let capture: CaptureResult | null = null;
      await withNsm({ offloads: "off" }, async (lab) => {
        mac = lab.nsmMac;
        await lab.staticNeighbours();
        const cap = await startCapture(lab, file, "arp or icmp6", 256);
        try {
          const py = await script("udp.py", UDP_PY);
          for (const host of [lab.nsmV4, lab.nsmV6]) {
            const r = await lab.peer(["timeout", "20", "python3", py, host, "7", "33434"], true);
            assert.equal(r.code, 0, r.stderr);
            assert.match(r.stdout, /^echo-0-:7 echo-1-:307/, host);
          }
        } finally {
          capture = await cap.stop();
        }
      });
      return { capture: capture!, value: null };
    });
    try {
      const arp = await tsharkMatches(file, `eth.src == ${mac} && arp.opcode == 1`);
      const ns = await tsharkMatches(file, `eth.src == ${mac} && icmpv6.type == 135`);
      const peerAsked = await tsharkMatches(
        file,
        `eth.src != ${mac} && (arp.opcode == 1 || icmpv6.type == 135)`,
      );
      const all = await tsharkMatches(file, "frame");
      assert.ok(
        arp.length >= 1,
        `we sent an ARP request for the peer: ${all.join("\n")} ${capture.log}`,
      );
      assert.ok(ns.length >= 1, `we sent a neighbour solicitation for the peer: ${all.join("\n")}`);
      assert.equal(
        peerAsked.length,
        0,
        `the peer never had to resolve us: ${peerAsked.join("\n")}`,
      );
    } finally {
      await Deno.remove(file).catch(() => {});
    }
  },
});

for (const offloads of ["on", "off"] as const) {
  Deno.test({
    name: `nsm (AF_XDP, peer offloads ${offloads}, ${
      offloads === "off" ? 2 : 1
    } queue(s)): TCP echo returns the peer's stream SHA-256 identical, discard swallows bulk, 10 connections at once`,
    ignore: gate.ignore,
    async fn(): Promise<void> {
      gate.assert();
      // ~1-2 s per 100 MB here (copy-mode veth): affordable in both configurations.
      const big = 100 * MB;
      const results: string[] = [];
      // Offloads off also runs two queues (RX visited round-robin, flows spread by the peer).
      const queues = offloads === "off" ? 2 : 1;
      const stopped = await withNsm({ offloads, queues }, async (lab, nsm) => {
        assert.match(nsm.ready, new RegExp(`queues=${queues} `));
        const e = await stream(lab, lab.nsmV4, 7, big, 1, "echo");
        results.push(`echo v4 ${big / MB} MB: ${e.mbit} Mbit/s each way (${e.secs} s)`);
        const d = await stream(lab, lab.nsmV6, 9, big, 1, "discard");
        results.push(`discard v6 ${big / MB} MB: ${d.mbit} Mbit/s (${d.secs} s)`);
        const m = await stream(lab, lab.nsmV6, 7, 2 * MB, 10, "echo");
        results.push(`10 x echo v6 2 MB: ${m.mbit} Mbit/s total each way`);
      });
      console.log(`offloads ${offloads}: ${results.join("; ")}`);
      const services = stopped.services as Record<string, number>;
      assert.equal(services.accepted, 12);
      assert.equal(services.closed, 12);
      assert.equal(services.failed, 0);
      assert.equal(services.tcpBytesOut, big + 20 * MB);
      const drops = stopped.drops as Record<string, number>;
      assert.equal(drops["bad-checksum"] ?? 0, 0);
      if (offloads === "on") assert.ok((stopped.partialChecksums as number) > 0);
      else {
        // A complete checksum equals the pseudo-header sum once in 65536 packets by chance
        // (it is then counted as partial, harmlessly): allow that, nothing systematic.
        const rx = (stopped.link as { rx: number }).rx;
        assert.ok((stopped.partialChecksums as number) <= rx / 5000, `${stopped.partialChecksums}`);
      }
    },
  });
}

Deno.test({
  name:
    "nsm (AF_XDP): 2000 TCP echo connections opened at once over IPv6 (neighbour still unresolved) and IPv4 all get their bytes back",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    const lines: string[] = [];
    const stopped = await withNsm({ offloads: "on" }, async (lab) => {
      const py = await script("many.py", MANY_PY);
      for (const host of [lab.nsmV6, lab.nsmV4]) {
        const r = await lab.peer(["timeout", "90", "python3", py, host, "7", "2000", "4096"], true);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^ok conns=2000 ok=2000 /, `${host}: ${r.stdout}`);
        lines.push(`${host}: ${r.stdout.trim()}`);
      }
    });
    console.log(lines.join("; "));
    const services = stopped.services as Record<string, number>;
    assert.equal(services.accepted, 4000);
    assert.equal(services.closed, 4000);
    assert.equal(services.failed, 0);
  },
});

Deno.test({
  name:
    "nsm (AF_XDP multi-buffer, MTU 9000): jumbo ping with DF, TCP echo SHA-256 identical and discard",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "on", nsmNamespace: true, mtu: 9000 });
    const nsm = await NsmProcess.start(lab.nsmNs, [
      ...["--link", `xdp:${lab.nsmIf}`, "--ip", `${lab.nsmV4}/24`, "--ip6", `${lab.nsmV6}/64`],
      ...["--echo", "7", "--discard", "9"],
    ]);
    let result;
    try {
      assert.match(nsm.ready, /multi-buffer=on .*mtu=9000/);
      const ping = await lab.peer(
        ["ping", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", "8972", lab.nsmV4],
        true,
      );
      assert.equal(lossOf(ping.stdout), 0, ping.stdout + ping.stderr);
      const ping6 = await lab.peer(
        ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", "8952", lab.nsmV6],
        true,
      );
      assert.equal(lossOf(ping6.stdout), 0, ping6.stdout + ping6.stderr);
      const e = await stream(lab, lab.nsmV4, 7, 50 * MB, 1, "echo");
      const d = await stream(lab, lab.nsmV6, 9, 50 * MB, 1, "discard");
      console.log(`XDP MTU 9000: echo ${e.mbit} Mbit/s each way, discard ${d.mbit} Mbit/s`);
    } finally {
      result = await nsm.stop();
    }
    assert.equal(result.code, 0, result.stderr);
    const link = result.stopped!.link as Record<string, number>;
    // Jumbo frames went both ways as descriptor chains, none too long, none invalid.
    assert.ok(link.rxMultiBuffer! > 1000 && link.txMultiBuffer! > 1000, JSON.stringify(link));
    assert.equal(link.rxTooLong, 0);
    const kernel = (result.stopped!.link as { kernel: Record<string, number> }).kernel;
    assert.equal(kernel.txInvalidDescs, 0);
    assert.equal(kernel.rxDropped, 0);
  },
});

Deno.test({
  name: "nsm (TAP, MTU 9000): jumbo-frame TCP echo and discard against the Linux peer",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ veth: false, mtu: 9000 });
    const tap = `${lab.name}t`;
    const nsm = await NsmProcess.start(null, [
      ...["--link", `tap:${tap}`, "--ip", `${lab.nsmV4}/24`, "--ip6", `${lab.nsmV6}/64`],
      ...["--mtu", "9000", "--echo", "7", "--discard", "9"],
    ]);
    let result;
    try {
      assert.match(nsm.ready, /ready link=tap:\S+ mtu=9000/);
      await lab.adoptPeer(tap);
      const ping = await lab.peer(
        ["ping", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", "8972", lab.nsmV4],
        true,
      );
      assert.equal(lossOf(ping.stdout), 0, ping.stdout + ping.stderr);
      const e = await stream(lab, lab.nsmV4, 7, 20 * MB, 1, "echo");
      const d = await stream(lab, lab.nsmV6, 9, 20 * MB, 1, "discard");
      console.log(`TAP MTU 9000: echo ${e.mbit} Mbit/s each way, discard ${d.mbit} Mbit/s`);
    } finally {
      result = await nsm.stop();
    }
    assert.equal(result.code, 0, result.stderr);
    const link = result.stopped!.link as { rxBytes: number; rxPackets: number };
    assert.ok(link.rxBytes / link.rxPackets > 4000, `jumbo frames: ${JSON.stringify(link)}`);
  },
});

Deno.test({
  name:
    "nsm traffic captured on the peer: tshark with checksum validation finds no malformed packet and no bad checksum",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    for (const offloads of ["off", "on"] as const) {
      let macOfUs = "";
      let stats: Record<string, unknown> = {};
      // Attempt 0 streams 2 MB per connection; a re-run after kernel drops sends half (still
      // ~2800 of our data frames, well above the minimum judged below).
      const { file, capture } = await completeCapture(3, async (file, attempt) => {
        let capture: CaptureResult | null = null;
        // What reaches the wire must be judged: with offloads off our stack sums every TCP
        // segment itself (`--tx-checksum off`); with offloads on the kernel completes the
        // pseudo-header seeds we leave (`software`: on veth, plain offload would hand the
        // peer CHECKSUM_PARTIAL frames whose field tshark rightly calls bad).
        const txChecksum = offloads === "off" ? "off" : "software";
        stats = await withNsm({ offloads, nsmArgs: ["--tx-checksum", txChecksum] }, async (lab) => {
          macOfUs = lab.nsmMac;
          // Every frame to or from our MAC (the peer's multicast chatter is not the test's),
          // whole up to the MTU so tshark can validate TCP/UDP checksums. The peer's own GSO
          // super-frames (offloads on) are cut, but those are not judged.
          const cap = await startCapture(lab, file, `ether host ${macOfUs}`, lab.mtu + 64);
          try {
            await lab.peer(["ping", "-c", "2", "-i", "0.2", "-W", "2", lab.nsmV4], true);
            await lab.peer(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", lab.nsmV6], true);
            const py = await script("udp.py", UDP_PY);
            await lab.peer(["timeout", "20", "python3", py, lab.nsmV4, "7", "33434"]);
            await lab.peer(["timeout", "20", "python3", py, lab.nsmV6, "7", "33434"]);
            const perConn = attempt === 0 ? 2 * MB : MB;
            await stream(lab, lab.nsmV4, 7, perConn, 2, "echo");
            await stream(lab, lab.nsmV6, 7, perConn, 2, "echo");
          } finally {
            capture = await cap.stop();
          }
        });
        return { capture: capture!, value: null };
      });
      const capLog = capture.log;
      try {
        // With offloads on, the peer's own frames carry partial checksums by design (tshark
        // rightly calls them bad): judge only what we sent. With offloads off, judge everything.
        const scope = offloads === "on" ? `eth.src == ${macOfUs} && ` : "";
        const ours = (await tsharkMatches(file, `eth.src == ${macOfUs}`)).length;
        const good = (await tsharkMatches(
          file,
          `eth.src == ${macOfUs} && tcp.checksum.status == "Good"`,
        )).length;
        const size = (await Deno.stat(file)).size;
        assert.ok(
          ours > 1000 && good > 1000,
          `offloads ${offloads}: capture holds our traffic (${ours}, ${good}, ${size} bytes): ${capLog}`,
        );
        // Nothing judged was cut by the snaplen (a cut frame's checksum cannot be validated).
        const cut = await tsharkMatches(file, `${scope}frame.cap_len < frame.len`);
        assert.deepEqual(cut, [], `offloads ${offloads}: judged frames truncated by the capture`);
        // Our ICMP errors quote the peer's datagram, partial checksum included: there only the
        // outer headers' checksums are ours to judge.
        // The kernel completes a sum of 0 as 0xffff (CSUM_MANGLED_0, the same number in one's
        // complement; RFC 1624 section 3): tshark flags that as an error, TCP accepts it.
        // tshark marks such a frame Bad (it compares with its 0x0000), so match it exactly.
        // With offloads off the peer's kernel still completes its own TCP sums that way
        // (skb_checksum_help), about one frame in 65536: only our frames, summed by our stack,
        // must never carry it.
        const mangled0 = "!(tcp.checksum == 0xffff && tcp.checksum_calculated == 0x0000)";
        const filter = offloads === "off"
          ? `(eth.src == ${macOfUs} || ${mangled0}) && ${BAD}`
          : `${scope}${mangled0} && ((!(icmp.type == 3) && ` +
            `!(icmpv6.type == 1) && ${BAD}) || ((icmp.type == 3 || icmpv6.type == 1) && ` +
            `(_ws.malformed || ip.checksum.status == "Bad" || icmp.checksum.status == "Bad" || ` +
            `icmpv6.checksum.status == "Bad")))`;
        const unreach = await tsharkMatches(
          file,
          `eth.src == ${macOfUs} && (icmp.type == 3 || icmpv6.type == 1)`,
        );
        assert.equal(unreach.length, 2, "our port unreachable (v4 and v6) was captured");
        const bad = await tsharkMatches(file, filter);
        if (bad.length > 0) {
          // Kept for a post-mortem: such a failure has only been seen under a loaded CI run.
          const kept = `${Deno.env.get("TMPDIR") ?? "/tmp"}/nsm_interop_bad_${offloads}.pcap`;
          await Deno.copyFile(file, kept);
          const first = bad[0]!.split("\t")[0];
          const verbose = await run([
            ...["timeout", "60", "tshark", "-n", "-r", file, "-V", "-o", "tcp.check_checksum:TRUE"],
            ...["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"],
            ...["-Y", `frame.number == ${first}`],
          ], true);
          const detail = verbose.stdout.split("\n").map((l) => l.trim())
            .filter((l) =>
              /Expert|Bad|bad|Malformed|[Cc]hecksum|Length|Flags|Sequence|\[Len/.test(l)
            );
          assert.fail(
            `offloads ${offloads}: ${bad.length} bad frames (capture kept at ${kept}); ` +
              `first: ${bad.slice(0, 3).join(" | ")}; ${detail.join(" ")}`,
          );
        }
        // The "on" round judged segments whose sums the kernel completed from our seeds.
        const offloaded = stats.txPartialChecksums as number;
        if (offloads === "on") assert.ok(offloaded > 1000, `offloaded ${offloaded}`);
        else assert.equal(offloaded, 0);
      } finally {
        await Deno.remove(file).catch(() => {});
      }
    }
  },
});
