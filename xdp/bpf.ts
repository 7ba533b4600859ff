/**
 * The kernel half of the driver without libbpf: an XSKMAP (queue id → AF_XDP socket), a
 * hand-assembled 6-instruction XDP program that redirects every frame of queue N to the socket
 * in slot N (or passes it to the kernel when the slot is empty), and a BPF link that attaches
 * it to an interface. A BPF link (not the legacy netlink attach) is used so the program is
 * detached by the kernel when its fd closes, including when the process crashes.
 *
 * @module
 */

import {
  addressOf,
  check,
  cString,
  EAGAIN,
  EINVAL,
  EOPNOTSUPP,
  errno,
  libc,
  struct,
  syscallError,
  XdpError,
} from "./libc.ts";

/** bpf(2) system call number on x86-64. */
export const SYS_BPF = 321;
/** bpf(2) commands used here. */
export const BPF_MAP_CREATE = 0;
/** Insert or replace a map element. */
export const BPF_MAP_UPDATE_ELEM = 2;
/** Remove a map element. */
export const BPF_MAP_DELETE_ELEM = 3;
/** Load a program. */
export const BPF_PROG_LOAD = 5;
/** Create a BPF link (attach). */
export const BPF_LINK_CREATE = 28;
/** Map type of an AF_XDP socket map. */
export const BPF_MAP_TYPE_XSKMAP = 17;
/** Program type XDP. */
export const BPF_PROG_TYPE_XDP = 6;
/** Attach type XDP. */
export const BPF_XDP = 37;
/** prog_flags bit: the XDP program handles multi-buffer (fragmented) frames. */
export const BPF_F_XDP_HAS_FRAGS = 1 << 5;
/** Generic (skb) XDP: works on every device, after the skb is built. */
export const XDP_FLAGS_SKB_MODE = 2;
/** Native (driver) XDP: runs in the driver's NAPI poll. */
export const XDP_FLAGS_DRV_MODE = 4;
/** XDP verdict: hand the frame to the kernel stack. */
export const XDP_PASS = 2;
/** Helper id of `bpf_redirect_map`. */
export const BPF_FUNC_REDIRECT_MAP = 51;
/** `src_reg` of a ld_imm64 whose immediate is a map fd. */
export const BPF_PSEUDO_MAP_FD = 1;
/** Size of the zeroed `union bpf_attr` passed to every command (covers all used fields). */
const BPF_ATTR_LEN = 128;

// Instruction opcodes (class | size/op | mode/source).
/** BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off). */
export const OP_LDX_MEM_W = 0x61;
/** BPF_LD | BPF_IMM | BPF_DW: 64-bit immediate load, two instruction slots. */
export const OP_LD_IMM64 = 0x18;
/** BPF_ALU64 | BPF_MOV | BPF_K: dst = imm. */
export const OP_MOV64_IMM = 0xb7;
/** BPF_JMP | BPF_CALL: call helper imm. */
export const OP_CALL = 0x85;
/** BPF_JMP | BPF_EXIT: return r0. */
export const OP_EXIT = 0x95;
/** Size of one `struct bpf_insn`. */
export const BPF_INSN_LEN = 8;
/** Offset of `rx_queue_index` in `struct xdp_md`. */
export const XDP_MD_RX_QUEUE_INDEX = 16;

/**
 * Writes one `struct bpf_insn` at instruction index `i`:
 * u8 code, u8 (src_reg << 4 | dst_reg), s16 off, s32 imm, little-endian.
 */
export function encodeInsn(
  out: Uint8Array,
  i: number,
  code: number,
  dst: number,
  src: number,
  off: number,
  imm: number,
): void {
  const v = new DataView(out.buffer, out.byteOffset + i * BPF_INSN_LEN, BPF_INSN_LEN);
  v.setUint8(0, code);
  v.setUint8(1, ((src & 0xf) << 4) | (dst & 0xf));
  v.setInt16(2, off, true);
  v.setInt32(4, imm, true);
}

/** Number of instructions of the redirect program. */
export const REDIRECT_PROGRAM_INSNS = 6;

/**
 * The redirect program for XSKMAP `mapFd`, 48 bytes:
 *
 * ```text
 * 0: r2 = *(u32 *)(r1 + 16)   61 12 1000 00000000  r1 = struct xdp_md *; load rx_queue_index
 * 1: r1 = map[mapFd]          18 11 0000 <fd>      ld_imm64, src 1 = BPF_PSEUDO_MAP_FD: the
 * 2:   (upper half)           00 00 0000 00000000    verifier swaps the fd for the map pointer
 * 3: r3 = XDP_PASS            b7 03 0000 02000000  flags of bpf_redirect_map: the low bits are
 *                                                  the action when slot r2 is empty
 * 4: call bpf_redirect_map    85 00 0000 33000000  r0 = XDP_REDIRECT or XDP_PASS
 * 5: exit                     95 00 0000 00000000  return r0
 * ```
 */
export function redirectProgram(mapFd: number): Uint8Array<ArrayBuffer> {
  const p = struct(REDIRECT_PROGRAM_INSNS * BPF_INSN_LEN);
  encodeInsn(p, 0, OP_LDX_MEM_W, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0);
  encodeInsn(p, 1, OP_LD_IMM64, 1, BPF_PSEUDO_MAP_FD, 0, mapFd);
  encodeInsn(p, 2, 0, 0, 0, 0, 0);
  encodeInsn(p, 3, OP_MOV64_IMM, 3, 0, 0, XDP_PASS);
  encodeInsn(p, 4, OP_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP);
  encodeInsn(p, 5, OP_EXIT, 0, 0, 0, 0);
  return p;
}

/** The verifier rejected the program; `log` is its explanation. */
export class BpfVerifierError extends XdpError {
  /** The verifier's log (level 1). */
  readonly log: string;
  /** Builds the error. */
  constructor(errnoValue: number, log: string) {
    super(
      "bpf(BPF_PROG_LOAD)",
      errnoValue,
      `the kernel rejected the XDP program (errno ${errnoValue}); verifier log:\n${log}`,
    );
    this.name = "BpfVerifierError";
    this.log = log;
  }
}

function bpf(cmd: number, attr: Uint8Array<ArrayBuffer>): number {
  return Number(libc().syscall(BigInt(SYS_BPF), BigInt(cmd), attr, BigInt(attr.length)));
}

function setName(attr: Uint8Array, offset: number, name: string): void {
  // BPF object names: at most 15 chars of [A-Za-z0-9_.].
  const clean = name.replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 15);
  attr.set(cString(clean), offset);
}

/** Creates an XSKMAP with `maxEntries` slots (one per queue); returns its fd. */
export function createXskMap(maxEntries: number, name = "nsm_xsks"): number {
  const attr = struct(BPF_ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, BPF_MAP_TYPE_XSKMAP, true); // map_type
  v.setUint32(4, 4, true); // key_size: u32 queue id
  v.setUint32(8, 4, true); // value_size: u32 socket fd
  v.setUint32(12, maxEntries, true); // max_entries
  setName(attr, 28, name); // map_name
  return check(bpf(BPF_MAP_CREATE, attr), "bpf(BPF_MAP_CREATE)", "bpf", "XSKMAP");
}

/** Retries of a BPF_PROG_LOAD interrupted by a signal (EAGAIN). */
const PROG_LOAD_EAGAIN_RETRIES = 100;

/** Loads an XDP program; on rejection reloads with a log buffer and throws `BpfVerifierError`. */
export function loadXdpProgram(insns: Uint8Array, name = "nsm_redirect", progFlags = 0): number {
  const license = cString("GPL"); // bpf_redirect_map is GPL-only
  const code = struct(insns.length);
  code.set(insns);
  const attr = struct(BPF_ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, BPF_PROG_TYPE_XDP, true); // prog_type
  v.setUint32(4, insns.length / BPF_INSN_LEN, true); // insn_cnt
  v.setBigUint64(8, BigInt(addressOf(code)), true); // insns
  v.setBigUint64(16, BigInt(addressOf(license)), true); // license
  v.setUint32(44, progFlags, true); // prog_flags (BPF_F_XDP_HAS_FRAGS for multi-buffer)
  setName(attr, 48, name); // prog_name
  v.setUint32(68, BPF_XDP, true); // expected_attach_type
  let fd = bpf(BPF_PROG_LOAD, attr);
  // The verifier gives up with EAGAIN when a signal is pending: under `--cpu-prof` (a SIGPROF
  // every 100 µs) every load failed that way. Retry a bounded number of times.
  let first = fd < 0 ? errno() : 0;
  for (let i = 0; fd < 0 && first === EAGAIN && i < PROG_LOAD_EAGAIN_RETRIES; i++) {
    fd = bpf(BPF_PROG_LOAD, attr);
    first = fd < 0 ? errno() : 0;
  }
  if (fd >= 0) return fd;
  if (first !== EINVAL && first !== 13 /* EACCES: verifier */) {
    throw syscallError("bpf(BPF_PROG_LOAD)", first, "bpf", "XDP redirect program");
  }
  const log = struct(1 << 16);
  v.setUint32(24, 1, true); // log_level
  v.setUint32(28, log.length, true); // log_size
  v.setBigUint64(32, BigInt(addressOf(log)), true); // log_buf
  const again = bpf(BPF_PROG_LOAD, attr);
  if (again >= 0) return again; // loaded after all (transient failure)
  const end = log.indexOf(0);
  const text = new TextDecoder().decode(log.subarray(0, end < 0 ? log.length : end));
  if (text === "") throw syscallError("bpf(BPF_PROG_LOAD)", errno(), "bpf", "XDP program");
  throw new BpfVerifierError(errno(), text);
}

/** Attaches `progFd` to interface `ifindex` with a BPF link; returns the link fd. */
export function createXdpLink(progFd: number, ifindex: number, flags: number, ifname = ""): number {
  const attr = struct(BPF_ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, progFd, true); // prog_fd
  v.setUint32(4, ifindex, true); // target_ifindex
  v.setUint32(8, BPF_XDP, true); // attach_type
  v.setUint32(12, flags, true); // flags: XDP_FLAGS_SKB_MODE or XDP_FLAGS_DRV_MODE
  const mode = flags === XDP_FLAGS_SKB_MODE ? "skb" : "native";
  return check(
    bpf(BPF_LINK_CREATE, attr),
    "bpf(BPF_LINK_CREATE)",
    "attach",
    `interface ${ifname || ifindex}, ${mode} mode`,
  );
}

/** Sets `map[key] = value` (u32 → u32). */
export function mapUpdate(mapFd: number, key: number, value: number): void {
  const k = struct(4);
  const val = struct(4);
  new DataView(k.buffer).setUint32(0, key, true);
  new DataView(val.buffer).setUint32(0, value, true);
  const attr = struct(BPF_ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, mapFd, true); // map_fd
  v.setBigUint64(8, BigInt(addressOf(k)), true); // key
  v.setBigUint64(16, BigInt(addressOf(val)), true); // value
  v.setBigUint64(24, 0n, true); // flags: BPF_ANY
  check(bpf(BPF_MAP_UPDATE_ELEM, attr), "bpf(BPF_MAP_UPDATE_ELEM)", "bpf", `XSKMAP slot ${key}`);
}

/** Removes `map[key]`; returns false when the slot was empty. */
export function mapDelete(mapFd: number, key: number): boolean {
  const k = struct(4);
  new DataView(k.buffer).setUint32(0, key, true);
  const attr = struct(BPF_ATTR_LEN);
  const v = new DataView(attr.buffer);
  v.setUint32(0, mapFd, true);
  v.setBigUint64(8, BigInt(addressOf(k)), true);
  return bpf(BPF_MAP_DELETE_ELEM, attr) === 0;
}

/** How to attach: native (driver) or generic (skb); auto picks skb for veth, else native. */
export type AttachMode = "auto" | "skb" | "native";

/** Options of `XdpProgram.attach`. */
export interface XdpProgramOptions {
  /** Interface name (for messages). */
  readonly ifname: string;
  /** Interface index. */
  readonly ifindex: number;
  /** XSKMAP size: one more than the highest queue id used. */
  readonly slots: number;
  /** Attach mode. Default "auto". */
  readonly mode?: AttachMode;
  /** Kernel driver name (auto mode uses skb for "veth"). */
  readonly driver?: string;
  /**
   * Load with BPF_F_XDP_HAS_FRAGS: the program accepts multi-buffer frames (jumbo frames into
   * an AF_XDP socket bound with XDP_USE_SG; on veth it also lifts the peer's MTU limit).
   */
  readonly frags?: boolean;
}

/**
 * The redirect program attached to one interface, with its XSKMAP. Owns three fds (map,
 * program, link); `close()` releases them, which detaches the program.
 */
export class XdpProgram {
  /** Interface index it is attached to. */
  readonly ifindex: number;
  /** The mode the kernel accepted. */
  readonly attachMode: "skb" | "native";
  #mapFd: number;
  #progFd: number;
  #linkFd: number;

  private constructor(ifindex: number, mode: "skb" | "native", fds: [number, number, number]) {
    this.ifindex = ifindex;
    this.attachMode = mode;
    [this.#mapFd, this.#progFd, this.#linkFd] = fds;
  }

  /** Creates the map, loads the program and attaches it; cleans up on every failure. */
  static attach(options: XdpProgramOptions): XdpProgram {
    const c = libc();
    const mapFd = createXskMap(options.slots);
    let progFd = -1;
    try {
      progFd = loadXdpProgram(
        redirectProgram(mapFd),
        "nsm_redirect",
        options.frags === true ? BPF_F_XDP_HAS_FRAGS : 0,
      );
      const want = options.mode ?? "auto";
      let mode: "skb" | "native" = want === "auto"
        ? (options.driver === "veth" ? "skb" : "native")
        : want;
      let linkFd: number;
      try {
        linkFd = createXdpLink(
          progFd,
          options.ifindex,
          mode === "skb" ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE,
          options.ifname,
        );
      } catch (e) {
        // A driver without native XDP says EOPNOTSUPP (or EINVAL): generic mode works everywhere.
        if (
          want !== "auto" || mode !== "native" || !(e instanceof XdpError) ||
          (e.errno !== EOPNOTSUPP && e.errno !== EINVAL)
        ) throw e;
        mode = "skb";
        linkFd = createXdpLink(progFd, options.ifindex, XDP_FLAGS_SKB_MODE, options.ifname);
      }
      return new XdpProgram(options.ifindex, mode, [mapFd, progFd, linkFd]);
    } catch (e) {
      if (progFd >= 0) c.close(progFd);
      c.close(mapFd);
      throw e;
    }
  }

  /** True until `close()`. */
  get attached(): boolean {
    return this.#linkFd >= 0;
  }

  /** Steers queue `queue` to AF_XDP socket `socketFd`. */
  setSocket(queue: number, socketFd: number): void {
    if (this.#mapFd < 0) throw new XdpError("XdpProgram.setSocket", 0, "program is closed");
    mapUpdate(this.#mapFd, queue, socketFd);
  }

  /** Stops steering `queue` (its frames go to the kernel again). */
  clearSocket(queue: number): void {
    if (this.#mapFd >= 0) mapDelete(this.#mapFd, queue);
  }

  /** Detaches the program and frees the map. Idempotent. */
  close(): void {
    const c = libc();
    if (this.#linkFd >= 0) c.close(this.#linkFd);
    if (this.#progFd >= 0) c.close(this.#progFd);
    if (this.#mapFd >= 0) c.close(this.#mapFd);
    this.#linkFd = this.#progFd = this.#mapFd = -1;
  }
}
