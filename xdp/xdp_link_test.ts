/**
 * XdpLink's transmit kicks (budget, re-kicks, the kick thread) and its allocation-free receive,
 * against the Linux peer of a veth lab answering ARP requests (needs root and iproute2). Each
 * test builds its own lab with unique names and removes it in all cases.
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "../tests/support/require.ts";
import { Lab, LAB_NSM_V4, LAB_PEER_V4 } from "./lab.ts";
import { XdpLink } from "./xdp_link.ts";
import { XskOptionError, XskSocket } from "./socket.ts";
import { netdevInfo } from "./netdev.ts";

const gate = needsAll(needsRoot(), needsTool("ip"));

const ETH_ARP = 0x0806;
const ARP_FRAME = 42;

function ipv4Bytes(a: string): number[] {
  return a.split(".").map(Number);
}

/** Writes "who has <peer> tell <us>" (broadcast) into `f`. */
function writeArpRequest(f: Uint8Array, mac: Uint8Array): void {
  f.fill(0xff, 0, 6);
  f.set(mac, 6);
  f.set([ETH_ARP >> 8, ETH_ARP & 0xff, 0, 1, 0x08, 0x00, 6, 4, 0, 1], 12);
  f.set(mac, 22);
  f.set(ipv4Bytes(LAB_NSM_V4), 28);
  f.fill(0, 32, 38);
  f.set(ipv4Bytes(LAB_PEER_V4), 38);
}

/** True for an ARP reply from the peer to us. */
function isArpReply(f: Uint8Array, mac: Uint8Array): boolean {
  return f.length >= ARP_FRAME && f[12] === 0x08 && f[13] === 0x06 && f[21] === 2 &&
    mac.every((b, i) => f[i] === b);
}

/** Commits `n` ARP requests (no flush). */
function queueArpRequests(link: XdpLink, n: number): void {
  for (let i = 0; i < n; i++) {
    const f = link.transmitBuffer(ARP_FRAME);
    assert.ok(f !== null, "a free TX frame");
    writeArpRequest(f, link.mac);
    link.commit(ARP_FRAME);
  }
}

/** A link on the lab's NSM end with 8 receive frames, recycled over and over. */
function openEightFrames(lab: Lab): XdpLink {
  return XdpLink.open({ ifname: lab.nsmIf, ringSize: 8, txKick: "inline", handleSignals: false });
}

/** Receives until `want` ARP replies came in (bounded: 30 s); returns how many. */
function receiveReplies(
  link: XdpLink,
  want: number,
  onReply: (f: Uint8Array) => void = () => {},
): Promise<number> {
  return receiveFor(link, 30_000, want, onReply);
}

/**
 * Receives for at most `ms` or until `want` ARP replies came in; returns how many. Flushes on
 * every pass (recycling completions, kicking anything left).
 */
async function receiveFor(
  link: XdpLink,
  ms: number,
  want: number,
  onReply: (f: Uint8Array) => void = () => {},
): Promise<number> {
  let got = 0;
  const deadline = Date.now() + ms;
  while (got < want && Date.now() < deadline) {
    link.flush();
    const n = link.receive((f) => {
      if (isArpReply(f, link.mac)) {
        got++;
        onReply(f);
      }
    }, 64);
    if (n === 0) await link.wait(5);
  }
  return got;
}

Deno.test({
  name: "XdpLink.open({ txBudget }) sets XDP_MAX_TX_SKB_BUDGET; budgets outside 32..ringSize " +
    "are rejected with XskOptionError",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up();
    {
      using link = XdpLink.open({
        ifname: lab.nsmIf,
        ringSize: 256,
        txBudget: 64,
        handleSignals: false,
      });
      assert.equal(link.txBudget, 64); // Linux 6.18 has the option (>= 6.17)
    }
    const info = netdevInfo(lab.nsmIf);
    const sock = XskSocket.open({ ifname: info.name, ifindex: info.index, queue: 0, ringSize: 64 });
    try {
      assert.equal(sock.txBudget, 64, "the default 256 is capped by the 64-slot ring");
      assert.equal(sock.setTxBudget(32), 32);
      assert.equal(sock.txBudget, 32);
      assert.throws(() => sock.setTxBudget(16), XskOptionError);
      assert.throws(() => sock.setTxBudget(128), XskOptionError); // > the 64-slot TX ring
      assert.equal(sock.txBudget, 32, "a rejected budget leaves the old one");
    } finally {
      sock.close();
    }
  },
});

Deno.test({
  name: "XdpLink.flush() kicks again while the kernel stops at its budget, so one flush sends " +
    "more than txBudget frames; maxKicksPerFlush 1 leaves the rest for the next flush",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up();
    for (const maxKicks of [undefined, 1]) {
      using link = XdpLink.open({
        ifname: lab.nsmIf,
        ringSize: 512,
        txBudget: 32,
        txKick: "inline",
        handleSignals: false,
        ...(maxKicks === undefined ? {} : { maxKicksPerFlush: maxKicks }),
      });
      queueArpRequests(link, 200);
      link.flush();
      const s = link.stats();
      if (maxKicks === undefined) {
        assert.equal(s.kicks, 7, "ceil(200 / 32) kicks in one flush");
        assert.equal(s.kickBusy, 6, "all but the last stopped at the budget (EAGAIN)");
      } else {
        assert.equal(s.kicks, 1);
        assert.equal(s.kickBusy, 1);
      }
      assert.equal(await receiveReplies(link, 200), 200, "the peer answered every request");
      assert.equal(link.stats().ownershipViolations, 0);
    }
  },
});

Deno.test({
  name: "XdpLink with txKick 'thread' sends every committed frame from its kick thread and " +
    "close() stops the thread before unmapping the ring",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up();
    const link = XdpLink.open({
      ifname: lab.nsmIf,
      ringSize: 512,
      txBudget: 32,
      txKick: "thread",
      handleSignals: false,
    });
    try {
      assert.equal(link.txKick, "thread");
      for (let i = 0; i < 3000 && !link.kickThreadRunning; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(link.kickThreadRunning, "the kick thread started within 30 s");
      let replies = 0;
      for (let round = 0; round < 3; round++) {
        queueArpRequests(link, 300);
        link.flush();
        replies += await receiveReplies(link, 300);
      }
      assert.equal(replies, 900);
      const s = link.stats();
      assert.equal(s.txPackets, 900);
      // Each kick sends at most 32 frames; poll(2) in wait() may send some too (copy mode).
      assert.ok(s.kickThreadKicks > 0, "the thread kicked");
      assert.equal(s.kicks, s.kickThreadKicks, "flush() did not kick inline");
      assert.equal(s.ownershipViolations, 0);
    } finally {
      link.close();
    }
    // After close the link is inert (its thread is gone, the rings unmapped).
    assert.equal(link.transmitBuffer(ARP_FRAME), null);
    link.flush();
  },
});

Deno.test({
  name: "XdpLink.receive() keeps two views per UMEM frame: frames that alternate between two " +
    "lengths reuse them (a peer that now and then splits a segment)",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up();
    using link = openEightFrames(lab);
    // The peer's pings to our address (a static neighbor: nothing answers ARP here), in rounds
    // of 8 that alternate between two sizes: each frame sees both lengths, again and again.
    const mac = [...link.mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
    await lab.peer(["ip", "neigh", "replace", LAB_NSM_V4, "lladdr", mac, "dev", lab.peerIf]);
    const views = new Map<number, Set<Uint8Array>>(); // by frame address
    const lengths = new Set<number>();
    let got = 0;
    for (let round = 0; round < 8; round++) {
      const size = round % 2 === 0 ? 100 : 300;
      const ping = lab.peer(
        ["ping", "-c", "8", "-i", "0.002", "-W", "0.1", "-s", String(size), LAB_NSM_V4],
        true,
      );
      const deadline = Date.now() + 10_000;
      let inRound = 0;
      while (inRound < 8 && Date.now() < deadline) {
        const n = link.receive((f) => {
          if (f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 1) return; // ICMP over IPv4 only
          const at = views.get(f.byteOffset) ?? new Set<Uint8Array>();
          views.set(f.byteOffset, at.add(f));
          lengths.add(f.length);
          inRound++;
        }, 64);
        if (n === 0) await link.wait(5);
      }
      await ping;
      got += inRound;
    }
    assert.equal(got, 64, "every echo request arrived");
    assert.deepEqual([...lengths].sort((a, b) => a - b), [142, 342]);
    // One view per frame and length (a few more where the peer's own chatter, ARP or IPv6,
    // took a frame in between); with one view per frame, every round made new ones (64).
    const perFrame = [...views.values()].map((v) => v.size);
    const total = perFrame.reduce((a, b) => a + b, 0);
    assert.ok(
      total <= 2 * perFrame.length + 4,
      `views per frame address: ${perFrame.join(" ")}`,
    );
  },
});

Deno.test({
  name: "XdpLink.receive() hands the same view object for a UMEM frame that comes back with " +
    "the same length (no allocation per received frame)",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up();
    using link = openEightFrames(lab);
    const views = new Set<Uint8Array>();
    let got = 0;
    for (let round = 0; round < 16; round++) {
      queueArpRequests(link, 4);
      link.flush();
      got += await receiveReplies(link, 4, (f) => {
        assert.equal(f.length, ARP_FRAME);
        assert.deepEqual([...f.subarray(28, 32)], ipv4Bytes(LAB_PEER_V4), "sender = peer");
        views.add(f);
      });
    }
    assert.equal(got, 64);
    assert.ok(views.size <= 8, `${views.size} distinct views for 64 replies in 8 frames`);
  },
});

Deno.test({
  name: "XdpLink keeps rxFillDepth frames posted, doubles the depth when a receive finds half " +
    "of them filled (a burst) and halves it back after a quiet stretch",
  ignore: gate.ignore,
  async fn(): Promise<void> {
    gate.assert();
    await using lab = await Lab.up();
    assert.throws(
      () => XdpLink.open({ ifname: lab.nsmIf, ringSize: 64, rxFillDepth: 65 }),
      XskOptionError,
    );
    using link = XdpLink.open({
      ifname: lab.nsmIf,
      ringSize: 64,
      rxFillDepth: 8,
      txKick: "inline",
      handleSignals: false,
    });
    assert.equal(link.stats().rxFillDepth, 8);
    // 16 requests at once: their replies find 8 posted frames; the kernel drops the rest.
    queueArpRequests(link, 16);
    link.flush();
    await new Promise((r) => setTimeout(r, 100));
    const first = await receiveFor(link, 300, Infinity);
    assert.ok(first <= 8, `${first} replies landed in 8 posted frames`);
    assert.ok(link.stats().kernel.rxFillRingEmptyDescs + link.stats().kernel.rxDropped > 0);
    assert.ok(link.stats().rxFillGrows >= 1, "the full fill ring doubled the depth");
    assert.ok(link.stats().rxFillDepth >= 16);
    // A second burst, larger than the first depth, lands whole (12 of the 16 posted frames: the
    // peer's own chatter may take one or two).
    queueArpRequests(link, 12);
    link.flush();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await receiveFor(link, 300, Infinity), 12, "every reply of the second burst");
    // Quiet: two at a time, never a quarter of the depth waiting; every 16 x 64 frames the
    // depth halves, down to 8.
    let rounds = 0;
    let replies = 0;
    while (link.stats().rxFillDepth > 8 && rounds < 3000) {
      queueArpRequests(link, 2);
      link.flush();
      replies += await receiveReplies(link, 2);
      rounds++;
    }
    assert.equal(replies, 2 * rounds, "no reply lost while the depth shrank");
    assert.equal(link.stats().rxFillDepth, 8, `depth after ${rounds} quiet rounds`);
  },
});
