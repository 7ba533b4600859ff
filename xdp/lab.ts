/**
 * A throwaway test network: a veth pair whose "NSM" end carries no kernel IP address (our
 * stack owns it, through AF_XDP) and whose "peer" end sits in its own network namespace with
 * the Linux stack and the addresses 198.18.0.2/24 and fd00::2/64. The NSM end is in the
 * calling process's namespace (so the test process can open AF_XDP on it) unless
 * `nsmNamespace` asks for a namespace of its own (for running a separate NSM process with
 * `ip netns exec`).
 *
 * Names are unique per process and call (pid + counter), so parallel test runs do not collide;
 * `down()` (or `await using`) removes everything and is idempotent. Needs root and iproute2;
 * `offloads` also needs ethtool.
 *
 * ```ts
 * await using lab = await Lab.up({ offloads: "off" });
 * using link = XdpLink.open({ ifname: lab.nsmIf });
 * await lab.peer(["ping", "-c", "1", lab.nsmV4]);
 * ```
 *
 * @module
 */

/** Our (NSM) IPv4 address in the lab; not configured in the kernel. */
export const LAB_NSM_V4 = "198.18.0.1";
/** The Linux peer's IPv4 address. */
export const LAB_PEER_V4 = "198.18.0.2";
/** IPv4 prefix length of the lab subnet 198.18.0.0/24. */
export const LAB_V4_PREFIX = 24;
/** Our (NSM) IPv6 address; not configured in the kernel. */
export const LAB_NSM_V6 = "fd00::1";
/** The Linux peer's IPv6 address. */
export const LAB_PEER_V6 = "fd00::2";
/** IPv6 prefix length of the lab subnet fd00::/64. */
export const LAB_V6_PREFIX = 64;

/** Options of `Lab.up`. */
export interface LabOptions {
  /** Base name (<= 10 chars); default unique per process and call. */
  readonly name?: string;
  /** MTU of both ends; default 1500 (9000 for jumbo tests). */
  readonly mtu?: number;
  /** Peer checksum/segmentation offloads; "off" makes the peer send complete checksums. */
  readonly offloads?: "on" | "off";
  /** RX/TX queues of each veth end; default 1. */
  readonly queues?: number;
  /** Put the NSM end in its own namespace `<name>-nsm`; default false. */
  readonly nsmNamespace?: boolean;
  /**
   * Create the veth pair; default true. false creates only the peer namespace, for a device
   * made elsewhere (a TAP) that `adoptPeer()` then moves into it.
   */
  readonly veth?: boolean;
}

/** Output of a command run by the lab. */
export interface CommandResult {
  /** Exit code. */
  readonly code: number;
  /** Standard output as text. */
  readonly stdout: string;
  /** Standard error as text. */
  readonly stderr: string;
}

/** A lab command failed; the message has the command line and its stderr. */
export class LabCommandError extends Error {
  /** The failed command's result. */
  readonly result: CommandResult;
  /** Builds the error. */
  constructor(args: readonly string[], result: CommandResult) {
    super(
      `lab command failed (exit ${result.code}): ${args.join(" ")}\n${result.stderr.trim()}` +
        (result.code === 127 ? "\n(is the tool installed? tests need iproute2 and ethtool)" : ""),
    );
    this.name = "LabCommandError";
    this.result = result;
  }
}

let counter = 0;

/**
 * "x" + pid + random + counter in base 36 (<= 10 chars). The pid alone is not enough: `deno
 * test --parallel` runs test files as workers of one process, each with its own counter.
 */
function uniqueName(): string {
  const r = crypto.getRandomValues(new Uint16Array(1))[0]! % 46656;
  return `x${(Deno.pid % 1679616).toString(36)}${r.toString(36).padStart(3, "0")}${
    (counter++ % 1296).toString(36)
  }`;
}
const decoder = new TextDecoder();

/** Runs `args` (argv[0] looked up on PATH); throws `LabCommandError` unless `allowFail`. */
export async function run(args: readonly string[], allowFail = false): Promise<CommandResult> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(args[0]!, {
      args: args.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    const result = { code: 127, stdout: "", stderr: String(e) };
    if (allowFail) return result;
    throw new LabCommandError(args, result);
  }
  const result = {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  if (result.code !== 0 && !allowFail) throw new LabCommandError(args, result);
  return result;
}

/** A veth lab; see the module comment. */
export class Lab implements AsyncDisposable {
  /** Base name of everything created. */
  readonly name: string;
  /** Namespace of the peer end. */
  readonly peerNs: string;
  /** Namespace of the NSM end, or null when it is the caller's namespace. */
  readonly nsmNs: string | null;
  /** NSM-side interface (open XdpLink on it). */
  readonly nsmIf: string;
  #peerIf: string;
  /** MTU of both ends. */
  readonly mtu: number;
  /** Queues per end. */
  readonly queues: number;
  /** Our IPv4 address (not configured in the kernel). */
  readonly nsmV4 = LAB_NSM_V4;
  /** The peer's IPv4 address. */
  readonly peerV4 = LAB_PEER_V4;
  /** Our IPv6 address (not configured in the kernel). */
  readonly nsmV6 = LAB_NSM_V6;
  /** The peer's IPv6 address. */
  readonly peerV6 = LAB_PEER_V6;
  #nsmMac = "";
  #peerMac = "";
  #down = false;

  private constructor(name: string, nsmNamespace: boolean, mtu: number, queues: number) {
    this.name = name;
    this.peerNs = `${name}-peer`;
    this.nsmNs = nsmNamespace ? `${name}-nsm` : null;
    this.nsmIf = `${name}n`;
    this.#peerIf = `${name}p`;
    this.mtu = mtu;
    this.queues = queues;
  }

  /** Peer-side interface (inside `peerNs`). */
  get peerIf(): string {
    return this.#peerIf;
  }

  /** The NSM end's MAC as text (aa:bb:...). */
  get nsmMac(): string {
    return this.#nsmMac;
  }
  /** The peer end's MAC as text. */
  get peerMac(): string {
    return this.#peerMac;
  }

  /** Creates the namespaces and veth pair; removes whatever it created if a step fails. */
  static async up(options: LabOptions = {}): Promise<Lab> {
    const name = options.name ?? uniqueName();
    if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) {
      throw new RangeError(`lab name '${name}': 1-10 lowercase letters/digits, letter first`);
    }
    const mtu = options.mtu ?? 1500;
    const queues = options.queues ?? 1;
    const lab = new Lab(name, options.nsmNamespace ?? false, mtu, queues);
    try {
      if (options.veth ?? true) await lab.#create(options.offloads);
      else await run(["ip", "netns", "add", lab.peerNs]);
    } catch (e) {
      await lab.down();
      throw e;
    }
    return lab;
  }

  async #create(offloads: "on" | "off" | undefined): Promise<void> {
    const q = String(this.queues);
    await run(["ip", "netns", "add", this.peerNs]);
    if (this.nsmNs !== null) await run(["ip", "netns", "add", this.nsmNs]);
    const queues = ["numtxqueues", q, "numrxqueues", q];
    await run([
      ...["ip", "link", "add", this.nsmIf, ...queues, "type", "veth"],
      ...["peer", "name", this.peerIf, ...queues, "netns", this.peerNs],
    ]);
    if (this.nsmNs !== null) await run(["ip", "link", "set", this.nsmIf, "netns", this.nsmNs]);
    // Our end: no IPv6 autoconfiguration (no kernel traffic of its own), no addresses.
    const noV6 = `echo 1 > /proc/sys/net/ipv6/conf/${this.nsmIf}/disable_ipv6`;
    await this.nsm(["sh", "-c", noV6]);
    await this.nsm(["ip", "link", "set", this.nsmIf, "mtu", String(this.mtu), "up"]);
    await this.#configurePeer();
    if (offloads !== undefined) await this.setOffloads(offloads);
    this.#nsmMac = await this.#mac(true);
    this.#peerMac = await this.#mac(false);
    // Bounded wait for the carrier on both ends.
    for (let i = 0; i < 50; i++) {
      const a = await this.nsm(["ip", "link", "show", this.nsmIf]);
      const b = await this.peer(["ip", "link", "show", this.peerIf]);
      if (a.stdout.includes("LOWER_UP") && b.stdout.includes("LOWER_UP")) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`lab ${this.name}: veth carrier did not come up within 1 s`);
  }

  async #configurePeer(): Promise<void> {
    await this.peer(["ip", "link", "set", "lo", "up"]);
    await this.peer(["sh", "-c", `echo 0 > /proc/sys/net/ipv6/conf/${this.peerIf}/accept_dad`]);
    await this.peer(["ip", "link", "set", this.peerIf, "mtu", String(this.mtu), "up"]);
    await this.peer(["ip", "addr", "add", `${LAB_PEER_V4}/${LAB_V4_PREFIX}`, "dev", this.peerIf]);
    const v6 = `${LAB_PEER_V6}/${LAB_V6_PREFIX}`;
    await this.peer(["ip", "-6", "addr", "add", v6, "dev", this.peerIf, "nodad"]);
  }

  /**
   * Moves interface `ifname` (e.g. the kernel side of a TAP we opened) into the peer namespace
   * and configures it as the peer end (addresses, MTU, up). For labs made with `veth: false`.
   */
  async adoptPeer(ifname: string): Promise<void> {
    await run(["ip", "link", "set", ifname, "netns", this.peerNs]);
    this.#peerIf = ifname;
    await this.#configurePeer();
    this.#peerMac = await this.#mac(false);
  }

  async #mac(nsm: boolean): Promise<string> {
    const r = nsm
      ? await this.nsm(["ip", "-o", "link", "show", this.nsmIf])
      : await this.peer(["ip", "-o", "link", "show", this.peerIf]);
    const m = /link\/ether ([0-9a-f:]{17})/.exec(r.stdout);
    if (m === null) throw new Error(`lab ${this.name}: no MAC in '${r.stdout.trim()}'`);
    return m[1]!;
  }

  /**
   * Turns the peer's TX checksum offload (and the segmentation offloads that depend on it) on
   * or off. With it on, frames the peer sends carry partial checksums (only the pseudo-header
   * sum), because veth never completes them.
   */
  async setOffloads(state: "on" | "off"): Promise<void> {
    await this.peer(["ethtool", "-K", this.peerIf, "tx", state, "tso", state, "gso", state]);
  }

  /** Runs `args` inside the peer namespace (`ip netns exec`). */
  peer(args: readonly string[], allowFail = false): Promise<CommandResult> {
    return run(["ip", "netns", "exec", this.peerNs, ...args], allowFail);
  }

  /** Runs `args` where the NSM end lives (its namespace, or directly). */
  nsm(args: readonly string[], allowFail = false): Promise<CommandResult> {
    return this.nsmNs === null
      ? run(args, allowFail)
      : run(["ip", "netns", "exec", this.nsmNs, ...args], allowFail);
  }

  /** Starts `args` in the peer namespace with piped stdout/stderr; the caller awaits/kills it. */
  spawnPeer(args: readonly string[]): Deno.ChildProcess {
    return new Deno.Command("ip", {
      args: ["netns", "exec", this.peerNs, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  /**
   * Adds permanent neighbour entries on the peer for our addresses, so the peer can send to
   * them without our stack answering ARP/NDP (driver-only tests).
   */
  async staticNeighbours(): Promise<void> {
    for (const ip of [LAB_NSM_V4, LAB_NSM_V6]) {
      const entry = [ip, "lladdr", this.#nsmMac, "dev", this.peerIf, "nud", "permanent"];
      await this.peer(["ip", "neigh", "replace", ...entry]);
    }
  }

  /** Whether any XDP program is attached to the NSM end (from `ip link show`). */
  async nsmHasXdp(): Promise<boolean> {
    const r = await this.nsm(["ip", "link", "show", this.nsmIf]);
    return /\bxdp/.test(r.stdout);
  }

  /** Deletes the namespaces (which deletes the veth pair). Idempotent, never throws. */
  async down(): Promise<void> {
    if (this.#down) return;
    this.#down = true;
    await run(["ip", "link", "del", this.nsmIf], true);
    if (this.nsmNs !== null) await run(["ip", "netns", "del", this.nsmNs], true);
    await run(["ip", "netns", "del", this.peerNs], true);
  }

  /** `await using lab = await Lab.up()` tears it down at scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.down();
  }

  /** Describes the lab (for the CLI). */
  describe(): string {
    const inNs = this.nsmNs === null ? "this namespace" : `namespace ${this.nsmNs}`;
    return [
      `lab ${this.name}`,
      `  NSM end:  ${this.nsmIf} (${this.#nsmMac}) in ${inNs}; our addresses ` +
      `${LAB_NSM_V4}/${LAB_V4_PREFIX}, ${LAB_NSM_V6}/${LAB_V6_PREFIX} (not in the kernel)`,
      `  peer end: ${this.peerIf} (${this.#peerMac}) in namespace ${this.peerNs}: ` +
      `${LAB_PEER_V4}/${LAB_V4_PREFIX}, ${LAB_PEER_V6}/${LAB_V6_PREFIX}`,
      `  MTU ${this.mtu}, ${this.queues} queue(s)`,
    ].join("\n");
  }

  /** Re-attaches to an existing lab created by `up({ name })` (for `lab down`/`status`). */
  static existing(name: string, nsmNamespace: boolean): Lab {
    return new Lab(name, nsmNamespace, 0, 0);
  }
}
