/**
 * Our interface layer (stacks/tcpip/iface) on `XdpLink` in a veth lab, against the Linux
 * stack in the peer namespace: ARP and NDP both ways, ICMP echo both ways, UDP echo.
 * Needs root, iproute2, ethtool, python3 (and ping from iputils, present with iproute2 images).
 *
 * The peer runs with TX checksum offload off in most tests. With it on, veth never completes
 * partial checksums: the peer's UDP/TCP frames arrive with only the pseudo-header sum. XdpLink
 * flags veth links (`capabilities.rxPartialChecksum`) and the IP layer accepts exactly those;
 * the last tests show both the accepted (veth, auto) and the refused (option off) cases.
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";
import { Lab } from "../xdp/lab.ts";
import { XdpLink } from "../xdp/xdp_link.ts";
import { Interface } from "../stacks/tcpip/iface/interface.ts";
import type { UdpSocket } from "../stacks/tcpip/iface/udp.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { MILLISECOND, monotonicNow } from "../stacks/time.ts";

const gate = needsAll(
  needsRoot(),
  needsTool("ip"),
  needsTool("ethtool"),
  needsTool("ping"),
  needsTool("python3"),
);

/** Our stack on the lab's NSM end, with a driver loop running until `stop()`. */
class Node {
  readonly link: XdpLink;
  readonly iface: Interface;
  readonly #tick: Array<() => void> = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(lab: Lab, partialChecksums: "auto" | boolean = "auto") {
    this.link = XdpLink.open({
      ifname: lab.nsmIf,
      ringSize: 256,
      handleSignals: false,
      partialChecksums,
    });
    this.iface = new Interface(this.link, {
      ipv4: [{ address: lab.nsmV4, prefixLength: 24 }],
      ipv6: [{ address: lab.nsmV6, prefixLength: 64 }],
    });
    this.#done = this.#loop();
  }

  /** Runs `fn` after every poll (application code: sockets). */
  onTick(fn: () => void): void {
    this.#tick.push(fn);
  }

  async #loop(): Promise<void> {
    // Bounded: tests stop the loop; 60 s is a hard ceiling.
    const deadline = monotonicNow() + 60_000 * MILLISECOND;
    while (this.#running && monotonicNow() < deadline) {
      const now = monotonicNow();
      const busy = this.iface.poll(now);
      for (const f of this.#tick) f();
      this.link.flush();
      if (!busy) {
        const at = this.iface.pollAt();
        const waitMs = Math.max(0, Math.min(5, Math.floor((at - monotonicNow()) / MILLISECOND)));
        await this.link.wait(waitMs);
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
    this.link.close();
  }

  /** Waits (driving nothing itself) until `cond()` or `ms` pass. */
  async until(cond: () => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    return cond();
  }
}

function lossOf(pingOutput: string): number {
  const m = /(\d+(?:\.\d+)?)% packet loss/.exec(pingOutput);
  return m === null ? -1 : Number(m[1]);
}

Deno.test({
  name:
    "Interface on XdpLink answers the Linux peer's ping and ping -6 (peer resolves us by ARP/NDP)",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "off" });
    const node = new Node(lab);
    try {
      const v4 = await lab.peer(["ping", "-c", "3", "-i", "0.2", "-W", "2", lab.nsmV4], true);
      assert.equal(lossOf(v4.stdout), 0, v4.stdout + v4.stderr);
      const v6 = await lab.peer(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", lab.nsmV6], true);
      assert.equal(lossOf(v6.stdout), 0, v6.stdout + v6.stderr);
      // The peer learned our MAC through ARP and NDP (no static entries in this lab).
      const neigh = (await lab.peer(["ip", "neigh", "show", "dev", lab.peerIf])).stdout;
      assert.match(neigh, new RegExp(`${lab.nsmV4.replaceAll(".", "\\.")} lladdr ${lab.nsmMac}`));
      assert.match(neigh, new RegExp(`${lab.nsmV6} lladdr ${lab.nsmMac}`));
      assert.ok(node.iface.counters.arp.tx >= 1, "we sent an ARP reply");
      assert.ok(node.iface.counters.ndp.tx >= 1, "we sent a neighbour advertisement");
      assert.equal(node.link.stats().ownershipViolations, 0);
    } finally {
      await node.stop();
    }
  },
});

Deno.test({
  name: "Interface on XdpLink pings the Linux peer over IPv4 and IPv6 (we resolve it by ARP/NDP)",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "off" });
    const node = new Node(lab);
    try {
      const replies: string[] = [];
      node.onTick(() => {
        for (let r = node.iface.takeEchoReply(); r !== null; r = node.iface.takeEchoReply()) {
          replies.push(`${r.from}#${r.seq}`);
        }
      });
      const payload = new TextEncoder().encode("nsm-xdp-ping");
      for (let seq = 1; seq <= 2; seq++) {
        const now = monotonicNow();
        // The first request waits in the neighbour queue while ARP/NDP resolves the peer.
        assert.ok(node.iface.ping(IpAddress.parse(lab.peerV4), 0x4e53, seq, payload, now));
        assert.ok(node.iface.ping(IpAddress.parse(lab.peerV6), 0x4e53, seq, payload, now));
        await node.until(() => replies.length >= seq * 2, 30_000); // generous: a loaded machine
      }
      assert.deepEqual(
        replies.sort(),
        [`${lab.peerV4}#1`, `${lab.peerV4}#2`, `${lab.peerV6}#1`, `${lab.peerV6}#2`].sort(),
      );
      const neigh = (await lab.peer(["ip", "neigh", "show", "dev", lab.peerIf])).stdout;
      assert.match(neigh, new RegExp(lab.nsmMac), "the peer learned us from our solicitations");
    } finally {
      await node.stop();
    }
  },
});

Deno.test({
  name:
    "a UDP echo socket of our stack on XdpLink answers the peer's python3 client over IPv4 and IPv6",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up({ offloads: "off" });
    const node = new Node(lab);
    try {
      const udp = node.iface.createUdp();
      const sock: UdpSocket = udp.bind(null, 7);
      const buf = new Uint8Array(2048);
      node.onTick(() => {
        for (let r = sock.recvFrom(buf); r !== null; r = sock.recvFrom(buf)) {
          sock.sendTo(buf.subarray(0, r.length), r.address, r.port);
        }
      });
      for (const [family, dst] of [["AF_INET", lab.nsmV4], ["AF_INET6", lab.nsmV6]] as const) {
        const script = "import socket\n" +
          `s = socket.socket(socket.${family}, socket.SOCK_DGRAM)\n` +
          "s.settimeout(3)\n" +
          "out = []\n" +
          "for i in range(5):\n" +
          `    s.sendto(b'echo-%d-' % i + b'x' * (100 * i), ('${dst}', 7))\n` +
          "    data, addr = s.recvfrom(2048)\n" +
          "    out.append('%s:%d' % (data[:7].decode(), len(data)))\n" +
          "print(' '.join(out))\n";
        const r = await lab.peer(["python3", "-c", script], true);
        assert.equal(r.code, 0, `${family}: ${r.stderr}`);
        assert.equal(
          r.stdout.trim(),
          "echo-0-:7 echo-1-:107 echo-2-:207 echo-3-:307 echo-4-:407",
          family,
        );
      }
      assert.equal(sock.stats.rxDatagrams, 10);
      assert.equal(sock.stats.txDatagrams, 10);
      assert.equal(node.iface.drops.get("bad-checksum"), 0);
    } finally {
      await node.stop();
    }
  },
});

for (const partial of [true, false]) {
  Deno.test({
    name: partial
      ? "with peer TX checksum offload on, its UDP datagrams (partial checksums) are accepted on veth and counted as partial"
      : "with partialChecksums false, the peer's partial-checksum UDP datagrams are dropped as bad-checksum, not accepted",
    ignore: gate.ignore,
    async fn(): Promise<void> {
      gate.assert();
      await using lab = await Lab.up({ offloads: "on" });
      const node = new Node(lab, partial ? "auto" : false);
      try {
        assert.equal(node.link.capabilities.rxPartialChecksum, partial, "veth detected");
        const udp = node.iface.createUdp();
        const sock = udp.bind(null, 7);
        // ICMP echo works either way: ping computes its checksum in full in user space.
        const v4 = await lab.peer(["ping", "-c", "2", "-i", "0.2", "-W", "2", lab.nsmV4], true);
        assert.equal(lossOf(v4.stdout), 0, v4.stdout + v4.stderr);
        const script = "import socket\n" +
          "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
          `for i in range(3): s.sendto(b'partial-%d' % i, ('${lab.nsmV4}', 7))\n`;
        await lab.peer(["python3", "-c", script]);
        if (partial) {
          await node.until(() => sock.stats.rxDatagrams >= 3, 30_000);
          assert.equal(sock.stats.rxDatagrams, 3);
          assert.equal(node.iface.counters.partialChecksums, 3);
          assert.equal(node.iface.drops.get("bad-checksum"), 0);
        } else {
          await node.until(() => node.iface.drops.get("bad-checksum") >= 3, 30_000);
          assert.equal(node.iface.drops.get("bad-checksum"), 3);
          assert.equal(sock.stats.rxDatagrams, 0);
        }
      } finally {
        await node.stop();
      }
    },
  });
}
