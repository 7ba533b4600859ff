/**
 * Deno-shaped sockets over an `NkClient`: `NkConn` (like `Deno.Conn`), `NkListener` (like
 * `Deno.Listener`), `NkDatagramConn` (like `Deno.DatagramConn`). Errors are `Deno.errors.*`.
 *
 * Semantics that differ from Deno's, on purpose:
 * - `write()` resolves once the bytes are in the NK device's send queue (like a kernel socket
 *   buffer); an error of an earlier write is thrown by the next `write()`/`closeWrite()`.
 * - `close()` is graceful: queued bytes are still sent (then FIN), as with close(2).
 * - Only IP literals are accepted as hostnames ("localhost" means 127.0.0.1).
 *
 * @module
 */

import { IpAddress } from "../../stacks/tcpip/wire/address.ts";
import { NqeFamily, NqeFlag, NqeOp } from "../../nsm/nqe.ts";
import { SockLevel, SockOpt } from "../../nsm/backend.ts";
import { type Completion, NkClient, type SocketState } from "./client.ts";
import { errnoError } from "./errors.ts";

/** TCP statistics of a connection (GETSOCKOPT TCP_INFO_*). */
export interface NkTcpInfo {
  /** Linux TCP state number. */
  readonly state: number;
  /** Congestion window, bytes. */
  readonly cwnd: number;
  /** Retransmitted segments. */
  readonly retransmits: number;
  /** Smoothed RTT, microseconds. */
  readonly rttUs: number;
  /** RTT variation, microseconds. */
  readonly rttVarUs: number;
  /** Send MSS. */
  readonly mss: number;
  /** Peer's window. */
  readonly sndWnd: number;
}

/** The last `parseHost` answer: a client connecting to one server again and again parses once. */
let lastHost: { hostname: string; parsed: { family: number; addr: Uint8Array } } | null = null;

/**
 * Parses a hostname (IP literal) into NQE family + 16 address bytes. The answer may be shared
 * between calls: do not modify its bytes.
 */
export function parseHost(hostname: string): { family: number; addr: Uint8Array } {
  if (lastHost !== null && lastHost.hostname === hostname) return lastHost.parsed;
  const parsed = parseHostOnce(hostname);
  lastHost = { hostname, parsed };
  return parsed;
}

function parseHostOnce(hostname: string): { family: number; addr: Uint8Array } {
  const h = hostname === "localhost" ? "127.0.0.1" : hostname.replace(/^\[|\]$/g, "");
  let ip: IpAddress;
  try {
    ip = IpAddress.parse(h);
  } catch {
    throw new TypeError(
      `"${hostname}" is not an IP address; GuestLib does not resolve names, pass an address`,
    );
  }
  const addr = new Uint8Array(16);
  addr.set(ip.bytes);
  return { family: ip.version === 4 ? NqeFamily.INET : NqeFamily.INET6, addr };
}

/** Formats NQE address fields as a Deno.NetAddr. */
export function netAddr(
  family: number,
  addr: Uint8Array,
  port: number,
  transport: "tcp" | "udp",
): Deno.NetAddr {
  let hostname = "0.0.0.0";
  if (family === NqeFamily.INET) hostname = IpAddress.fromBytes(addr.subarray(0, 4)).toString();
  else if (family === NqeFamily.INET6) {
    hostname = IpAddress.fromBytes(addr.subarray(0, 16)).toString();
  }
  return { transport, hostname, port };
}

const RESOLVED: Promise<void> = Promise.resolve();

function check(c: Completion, what: string): number {
  if (c.result < 0) throw errnoError(-c.result, what);
  return c.result;
}

/** Opens a socket: SOCKET, returns its id. */
async function openSocket(client: NkClient, family: number, type: number): Promise<number> {
  const c = await client.request((n) => {
    n.op = NqeOp.SOCKET;
    n.arg0 = family;
    n.arg1 = type;
  });
  return check(c, "socket");
}

function closeId(client: NkClient, id: number): Promise<void> {
  return client.request((n) => {
    n.op = NqeOp.CLOSE;
    n.socketId = id;
  }).then(() => client.forget(id));
}

/** A TCP connection through the NSM, shaped like `Deno.Conn` (it is a `Deno.TcpConn`). */
export class NkConn implements Deno.TcpConn {
  /** The socket id in this guest's namespace. */
  readonly id: number;
  readonly #client: NkClient;
  readonly #s: SocketState;
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;
  #writeShut = false;
  #lastInfo: NkTcpInfo | undefined;
  #infoBusy = false;
  /** The last `tryWrite()` stopped for want of a free chunk. */
  #noChunk = false;
  /** `#watchChunks` waits for a chunk. */
  #chunkWatch = false;
  /** The array `#srcViews` are views of. */
  #src: Uint8Array | null = null;
  /** Chunk-sized views of `#src` by chunk index. */
  readonly #srcViews: (Uint8Array | null)[] = [];
  #local: Deno.NetAddr | (() => Deno.NetAddr);
  #remote: Deno.NetAddr | (() => Deno.NetAddr);

  /**
   * Wraps connected socket `id`. The addresses may be given as functions, called on first
   * use: formatting them cost a short-lived connection more than its NQEs did.
   */
  constructor(
    client: NkClient,
    id: number,
    local: Deno.NetAddr | (() => Deno.NetAddr),
    remote: Deno.NetAddr | (() => Deno.NetAddr),
  ) {
    this.#client = client;
    this.id = id;
    this.#s = client.sock(id);
    this.#local = local;
    this.#remote = remote;
  }

  /** Local address. */
  get localAddr(): Deno.NetAddr {
    if (typeof this.#local === "function") this.#local = this.#local();
    return this.#local;
  }

  /** Peer address. */
  get remoteAddr(): Deno.NetAddr {
    if (typeof this.#remote === "function") this.#remote = this.#remote();
    return this.#remote;
  }

  /** Reads into `p`: the count, or null at end of stream. Throws ConnectionReset etc. */
  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      const n = this.tryRead(p);
      if (n !== -1) return n;
      await this.waitReadable();
    }
  }

  /**
   * `read()` without waiting: copies received bytes into `p` and returns the count, null at
   * end of stream, or -1 when nothing has arrived yet (then await `waitReadable()`). Throws
   * as `read()` does. Received chunks are copied whole: once some bytes are in `p`, a chunk
   * that does not fit stays for the next read (a short read, as a stream allows), so no view
   * is made to split it.
   */
  tryRead(p: Uint8Array): number | null {
    const s = this.#s;
    const client = this.#client;
    if (s.closed) throw new Deno.errors.BadResource("read: the connection is closed");
    // Detached: the data region is unmapped, so even queued chunks cannot be read, and
    // nothing will arrive (never answer -1 then: waitReadable() resolves at once).
    if (client.closed) throw errnoError(s.error !== 0 ? -s.error : 104, "read");
    const rx = s.rx;
    if (rx.length > 0) {
      let n = 0;
      while (n < p.length && rx.length > 0) {
        const it = rx.peek()!;
        const left = it.length - it.pos;
        if (n > 0 && left > p.length - n) break;
        const take = Math.min(p.length - n, left);
        p.set(client.view(it.offset + it.pos, take), n);
        n += take;
        it.pos += take;
        if (it.pos === it.length) {
          rx.shift();
          client.returnChunk(this.id, it.offset, it.length);
          s.recycle(it);
        }
      }
      return n;
    }
    if (s.error !== 0) throw errnoError(-s.error, "read");
    if (s.eof || p.length === 0) return s.eof ? null : 0;
    return -1;
  }

  /**
   * Resolves when `tryRead()` has something to return (data, end of stream, an error) or the
   * connection closed; at once if it has now. One shared promise per wait.
   */
  waitReadable(): Promise<void> {
    const s = this.#s;
    if (s.rx.length > 0 || s.eof || s.error !== 0 || s.closed || this.#client.closed) {
      return RESOLVED;
    }
    return s.readable.wait();
  }

  /**
   * Calls `f` whenever `tryRead()` may have something new (data, end of stream, an error) or
   * the connection closed: from the pump, synchronously, after it handled the NSM's answers,
   * so a reader that drains with `tryRead()` in `f` makes no promise per wake-up. `f` must not
   * throw (a throw is reported as uncaught). `null` unregisters; while one is registered the
   * process stays alive as with a pending read. One callback per connection.
   */
  onReadable(f: (() => void) | null): void {
    this.#s.onReadable = f;
  }

  /**
   * Calls `f` whenever `tryWrite()` may take bytes again (in-flight SENDs fell to half the
   * cap, a chunk came back) or will throw; like `onReadable`, without a promise per wake-up.
   */
  onWritable(f: (() => void) | null): void {
    this.#s.onWritable = f;
  }

  /** Queues all of `p` for sending; resolves with `p.length`. */
  async write(p: Uint8Array): Promise<number> {
    let off = 0;
    do {
      off += this.tryWrite(p, off, p.length);
      if (off < p.length) await this.waitWritable();
    } while (off < p.length);
    return p.length;
  }

  /**
   * `write()` without waiting: queues as much of `p[start, end)` as free chunks and the
   * socket's cap on SENDs in flight (`NkClient.sendCap`) allow, and returns how many bytes
   * (0 when none fit: await `waitWritable()`). Throws as `write()` does. Writing the same
   * array again and again (a benchmark's block) makes no view per chunk: see `#source`.
   */
  tryWrite(p: Uint8Array, start = 0, end: number = p.length): number {
    const s = this.#s;
    const client = this.#client;
    if (s.closed) throw new Deno.errors.BadResource("write: the connection is closed");
    if (this.#writeShut) throw new Deno.errors.BrokenPipe("write: the sending side is shut down");
    if (s.sendError !== 0) throw errnoError(-s.sendError, "write");
    if (s.error !== 0) throw errnoError(-s.error, "write");
    if (client.closed) throw errnoError(104, "write");
    const data = client.device.data;
    const size = data.chunkSize;
    const cap = client.sendCap;
    this.#noChunk = false;
    let off = start;
    while (off < end && s.inFlight < cap) {
      const chunk = data.alloc();
      if (chunk < 0) {
        this.#noChunk = true;
        this.#watchChunks();
        break;
      }
      const len = Math.min(size, end - off);
      data.bytes.set(this.#source(p, off, len, size), chunk);
      data.lend(chunk);
      if (!client.sendChunk(s, chunk, len)) throw errnoError(104, "write");
      off += len;
    }
    return off - start;
  }

  /**
   * Resolves when `tryWrite()` can take bytes again (in-flight SENDs fell to half the cap, a
   * chunk came back) or will throw (an error, closed); at once if it can now.
   */
  waitWritable(): Promise<void> {
    const s = this.#s;
    const client = this.#client;
    if (s.closed || s.error !== 0 || s.sendError !== 0 || client.closed) return RESOLVED;
    if (s.inFlight >= client.sendCap) return s.room.wait();
    if (this.#noChunk) return client.chunkFreed();
    return RESOLVED;
  }

  /** With `onWritable` set, calls it once a chunk comes back (every chunk was in flight). */
  #watchChunks(): void {
    if (this.#chunkWatch || this.#s.onWritable === null) return;
    this.#chunkWatch = true;
    this.#client.chunkFreed().then(() => {
      this.#chunkWatch = false;
      const f = this.#s.onWritable;
      if (f !== null) f();
    });
  }

  /**
   * `p[off, off + len)` as a view. A chunk-aligned view of the array written last is kept
   * and reused, so a program that writes one block over and over (nkperf) makes none per
   * chunk; this keeps that array alive until another is written. Arrays over resizable or
   * growable buffers are not cached (their views could shrink).
   */
  #source(p: Uint8Array, off: number, len: number, size: number): Uint8Array {
    if (off === 0 && len === p.length) return p;
    const k = off / size;
    const b = p.buffer as { resizable?: boolean; growable?: boolean };
    if (!Number.isInteger(k) || k >= 1024 || b.resizable === true || b.growable === true) {
      return p.subarray(off, off + len);
    }
    const views = this.#srcViews;
    if (p !== this.#src) {
      this.#src = p;
      while (views.length > 0) views.pop();
    }
    while (views.length <= k) views.push(null);
    const v = views[k]!;
    if (v !== null && v.length === len) return v;
    const nv = p.subarray(off, off + len);
    views[k] = nv;
    return nv;
  }

  async #drain(): Promise<void> {
    const s = this.#s;
    while (s.inFlight > 0) await this.#client.waitFor((w) => s.drainWaiters.push(w));
  }

  /** Sends FIN after everything written so far (half-close); reading continues. */
  async closeWrite(): Promise<void> {
    if (this.#writeShut) return;
    this.#writeShut = true;
    await this.#drain();
    const s = this.#s;
    if (s.sendError !== 0) throw errnoError(-s.sendError, "closeWrite");
    const c = await this.#client.request((n) => {
      n.op = NqeOp.SHUTDOWN;
      n.socketId = this.id;
      n.arg0 = 1;
    });
    check(c, "closeWrite");
  }

  /** Closes the connection (graceful: queued bytes still go out). Idempotent. */
  close(): void {
    const s = this.#s;
    if (s.closed) return;
    s.closed = true;
    s.wakeReaders();
    s.endCallbacks();
    for (const it of s.rx.takeAll()) {
      if (it.pos < it.length || it.pos === it.length) {
        this.#client.returnChunk(this.id, it.offset, it.length);
      }
    }
    // Nothing in flight (a request/response client's last SEND was answered): CLOSE now,
    // without the drain's and the request's promises.
    if (s.inFlight === 0) this.#client.closeSocket(this.id);
    else this.#client.track(this.#drain().then(() => closeId(this.#client, this.id)));
  }

  /** Deno.Conn compatibility. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** No-op (Deno.Conn compatibility: the NSM connection is kept alive by pending calls only). */
  ref(): void {}
  /** No-op (see `ref`). */
  unref(): void {}

  /** TCP_NODELAY. */
  setNoDelay(noDelay = true): void {
    this.#setopt(SockLevel.IPPROTO_TCP, SockOpt.TCP_NODELAY, noDelay ? 1 : 0);
  }

  /** SO_KEEPALIVE. */
  setKeepAlive(keepAlive = true): void {
    this.#setopt(SockLevel.SOL_SOCKET, SockOpt.SO_KEEPALIVE, keepAlive ? 1 : 0);
  }

  #setopt(level: number, name: number, value: number): void {
    // Nobody awaits the answer (Deno's setNoDelay is synchronous): no promise for it.
    this.#client.post((n) => {
      n.op = NqeOp.SETSOCKOPT;
      n.socketId = this.id;
      n.arg0 = level;
      n.arg1 = name;
      n.arg2 = value;
    }, null);
  }

  /** An integer socket option (GETSOCKOPT). */
  async getsockopt(level: number, name: number): Promise<number> {
    const c = await this.#client.request((n) => {
      n.op = NqeOp.GETSOCKOPT;
      n.socketId = this.id;
      n.arg0 = level;
      n.arg1 = name;
    });
    check(c, "getsockopt");
    return c.arg2;
  }

  /** TCP statistics through GETSOCKOPT TCP_INFO_* (one round trip per field, in parallel). */
  async tcpInfo(): Promise<NkTcpInfo> {
    const T = SockLevel.IPPROTO_TCP;
    const [state, cwnd, retransmits, rttUs, rttVarUs, mss, sndWnd] = await Promise.all([
      this.getsockopt(T, SockOpt.TCP_INFO_STATE),
      this.getsockopt(T, SockOpt.TCP_INFO_CWND),
      this.getsockopt(T, SockOpt.TCP_INFO_RETRANSMITS),
      this.getsockopt(T, SockOpt.TCP_INFO_RTT_US),
      this.getsockopt(T, SockOpt.TCP_INFO_RTTVAR_US),
      this.getsockopt(T, SockOpt.TCP_INFO_MSS),
      this.getsockopt(T, SockOpt.TCP_INFO_SND_WND),
    ]);
    this.#lastInfo = { state, cwnd, retransmits, rttUs, rttVarUs, mss, sndWnd };
    return this.#lastInfo;
  }

  /**
   * The last TCP statistics fetched, starting a refresh in the background (for synchronous
   * callers such as nkperf's interval reports: values lag by one call).
   */
  tcpInfoCached(): NkTcpInfo | undefined {
    if (!this.#infoBusy && !this.#s.closed) {
      this.#infoBusy = true;
      this.tcpInfo().catch(() => {}).finally(() => this.#infoBusy = false);
    }
    return this.#lastInfo;
  }

  /** Bytes as a stream (reads 64 KiB at a time); cancel closes the connection. */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (ctrl) => {
        const b = new Uint8Array(64 * 1024);
        let n: number | null;
        try {
          n = await this.read(b);
        } catch (e) {
          ctrl.error(e);
          return;
        }
        if (n === null) ctrl.close();
        else ctrl.enqueue(b.subarray(0, n));
      },
      cancel: () => this.close(),
    });
    return this.#readable;
  }

  /** A sink for bytes; closing it closes the connection (as Deno's does), aborting too. */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.close(),
      abort: () => this.close(),
    });
    return this.#writable;
  }
}

/** Connects through `client`. Throws ConnectionRefused, TimedOut, NetworkUnreachable, ... */
export async function connectWith(
  client: NkClient,
  opts: { hostname?: string; port: number },
): Promise<NkConn> {
  const dst = parseHost(opts.hostname ?? "127.0.0.1");
  // SOCKET and CONNECT in one request (NqeFlag.OPEN): one round trip to the NSM instead of
  // two. A failure of either (EMFILE, EAFNOSUPPORT, ECONNREFUSED, ...) comes back here, and the
  // NSM has then closed the socket: nothing to close.
  const c = await client.request((n) => {
    n.op = NqeOp.CONNECT;
    n.flags = NqeFlag.OPEN;
    n.arg0 = dst.family;
    n.arg1 = 1; // SOCK_STREAM
    n.family = dst.family;
    n.addr.set(dst.addr);
    n.port = opts.port;
  });
  if (c.result < 0) throw errnoError(-c.result, `connect to ${opts.hostname}:${opts.port}`);
  const id = c.socketId;
  return new NkConn(
    client,
    id,
    () => netAddr(c.family || dst.family, c.addr, c.port, "tcp"),
    () => netAddr(dst.family, dst.addr, opts.port, "tcp"),
  );
}

/** A listening TCP socket through the NSM, shaped like `Deno.Listener`. */
export class NkListener implements Deno.Listener<NkConn, Deno.NetAddr> {
  /** The bound address (port filled in once listening when 0 was asked). */
  addr: Deno.NetAddr;
  /** Resolves once listening; rejects with AddrInUse etc. */
  readonly ready: Promise<void>;
  #id = 0;
  #closed = false;
  readonly #client: Promise<NkClient>;

  /** Use `listenWith` / `listen`. */
  constructor(client: Promise<NkClient>, opts: { port: number; hostname?: string }) {
    this.#client = client;
    const host = opts.hostname ?? "0.0.0.0";
    this.addr = { transport: "tcp", hostname: host, port: opts.port };
    this.ready = this.#setup(host, opts.port);
    this.ready.catch(() => {}); // surfaced by accept()
  }

  async #setup(host: string, port: number): Promise<void> {
    const client = await this.#client;
    const a = parseHost(host);
    const id = await openSocket(client, a.family, 1);
    this.#id = id;
    await client.request((n) => {
      n.op = NqeOp.SETSOCKOPT;
      n.socketId = id;
      n.arg0 = SockLevel.SOL_SOCKET;
      n.arg1 = SockOpt.SO_REUSEADDR;
      n.arg2 = 1;
    });
    let c = await client.request((n) => {
      n.op = NqeOp.BIND;
      n.socketId = id;
      n.family = a.family;
      n.addr.set(a.addr);
      n.port = port;
    });
    if (c.result < 0) {
      closeId(client, id);
      throw errnoError(-c.result, `listen on ${host}:${port}`);
    }
    c = await client.request((n) => {
      n.op = NqeOp.LISTEN;
      n.socketId = id;
      n.arg0 = 4096; // the NSM stack caps it; bursts of connects should not overflow it
    });
    if (c.result < 0) {
      closeId(client, id);
      throw errnoError(-c.result, `listen on ${host}:${port}`);
    }
    if (c.port !== 0) this.addr = { transport: "tcp", hostname: host, port: c.port };
  }

  /** Waits for the next connection. Throws BadResource once closed. */
  async accept(): Promise<NkConn> {
    await this.ready;
    if (this.#closed) throw new Deno.errors.BadResource("accept: the listener is closed");
    const client = await this.#client;
    const c = await client.request((n) => {
      n.op = NqeOp.ACCEPT;
      n.socketId = this.#id;
    });
    if (c.result < 0) {
      if (this.#closed) throw new Deno.errors.BadResource("accept: the listener is closed");
      throw errnoError(-c.result, "accept");
    }
    return new NkConn(client, c.result, this.addr, netAddr(c.family, c.addr, c.port, "tcp"));
  }

  /** Stops listening; pending accepts throw BadResource. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.ready.then(async () => closeId(await this.#client, this.#id), () => {});
  }

  /** Deno.Listener compatibility. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** No-op (Deno.Listener compatibility). */
  ref(): void {}
  /** No-op (Deno.Listener compatibility). */
  unref(): void {}

  /** Accepts until closed. */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<NkConn> {
    while (!this.#closed) {
      try {
        yield await this.accept();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return;
        throw e;
      }
    }
  }
}

/** A UDP socket through the NSM, shaped like `Deno.DatagramConn`. */
export class NkDatagramConn implements AsyncIterable<[Uint8Array, Deno.NetAddr]> {
  /** Bound address (port filled in once bound). */
  addr: Deno.NetAddr;
  /** Resolves once bound. */
  readonly ready: Promise<void>;
  #id = 0;
  #s: SocketState | null = null;
  #closed = false;
  readonly #client: Promise<NkClient>;

  /** Use `listenDatagram`. */
  constructor(client: Promise<NkClient>, opts: { port: number; hostname?: string }) {
    this.#client = client;
    const host = opts.hostname ?? "0.0.0.0";
    this.addr = { transport: "udp", hostname: host, port: opts.port };
    this.ready = this.#setup(host, opts.port);
    this.ready.catch(() => {});
  }

  async #setup(host: string, port: number): Promise<void> {
    const client = await this.#client;
    const a = parseHost(host);
    this.#id = await openSocket(client, a.family, 2);
    this.#s = client.sock(this.#id);
    const c = await client.request((n) => {
      n.op = NqeOp.BIND;
      n.socketId = this.#id;
      n.family = a.family;
      n.addr.set(a.addr);
      n.port = port;
    });
    check(c, `bind udp ${host}:${port}`);
    if (c.port !== 0) this.addr = { transport: "udp", hostname: host, port: c.port };
  }

  /** Sends one datagram to `addr`; resolves with its length. */
  async send(p: Uint8Array, addr: Deno.NetAddr): Promise<number> {
    await this.ready;
    const client = await this.#client;
    const data = client.device.data;
    if (p.length > data.chunkSize) {
      throw new Deno.errors.InvalidData(
        `a datagram of ${p.length} bytes exceeds the NK chunk size ${data.chunkSize}; send less`,
      );
    }
    const dst = parseHost(addr.hostname);
    const chunk = await client.allocChunk();
    if (chunk < 0) throw errnoError(104, "send");
    data.bytes.set(p, chunk);
    data.lend(chunk);
    const c = await client.request((n) => {
      n.op = NqeOp.SENDTO;
      n.socketId = this.#id;
      n.dataOffset = chunk;
      n.dataLength = p.length;
      n.family = dst.family;
      n.addr.set(dst.addr);
      n.port = addr.port;
    });
    return check(c, "send");
  }

  /** Receives one datagram (copied into `p`, or a new buffer) and its source. */
  async receive(p?: Uint8Array): Promise<[Uint8Array, Deno.NetAddr]> {
    await this.ready;
    const client = await this.#client;
    const s = this.#s!;
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("receive: the socket is closed");
      const it = s.rx.shift();
      if (it !== undefined) {
        const bytes = client.device.data.bytes.subarray(it.offset, it.offset + it.length);
        const out = p ?? new Uint8Array(it.length);
        const n = Math.min(out.length, it.length);
        out.set(bytes.subarray(0, n));
        client.returnChunk(this.#id, it.offset, it.length);
        return [out.subarray(0, n), netAddr(it.family, it.addr!, it.port, "udp")];
      }
      await client.waitFor((w) => s.readWaiters.push(w));
    }
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#s?.wakeReaders();
    this.ready.then(async () => closeId(await this.#client, this.#id), () => {});
  }

  /** Receives until closed. */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<[Uint8Array, Deno.NetAddr]> {
    while (!this.#closed) {
      try {
        yield await this.receive();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return;
        throw e;
      }
    }
  }
}

export { NkClient };
