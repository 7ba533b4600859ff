/**
 * The network nkperf runs on, as a small injectable object: `connect` and `listen` return
 * objects shaped like `Deno.Conn` / `Deno.Listener` (only the members nkperf uses). `denoNet`
 * is Deno's own sockets (the kernel stack); GuestLib will provide the same shape for the NSM's
 * stack, adding `tcpInfo` so reports carry cwnd and retransmits. `memoryNet` is an in-process
 * network for tests that need neither root nor sockets.
 *
 * @module
 */

/** What nkperf needs of a connection; `Deno.Conn` satisfies it. */
export interface NetConn {
  /** Reads into `p`; resolves with the count, or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves with how many bytes were taken. */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions; pending reads resolve null or reject. */
  close(): void;
  /** Local address. */
  readonly localAddr: Deno.Addr;
  /** Remote address. */
  readonly remoteAddr: Deno.Addr;
  /** Disables Nagle (control messages are single bytes), when the stack has it. */
  setNoDelay?(noDelay?: boolean): void;
  /**
   * Optional non-waiting write (GuestLib's `NkConn`): queues what fits of `p[start, end)` now
   * and returns the count, 0 when nothing fits (then wait for `onWritable`'s callback). With
   * it and `onWritable`, the data loop makes no promise per block or per wait.
   */
  tryWrite?(p: Uint8Array, start: number, end: number): number;
  /** Registers (null: removes) a function called whenever `tryWrite` may take bytes again. */
  onWritable?(f: (() => void) | null): void;
  /**
   * Optional non-waiting read: the count, null at end of stream, -1 when nothing arrived yet
   * (then wait for `onReadable`'s callback).
   */
  tryRead?(p: Uint8Array): number | null;
  /** Registers (null: removes) a function called whenever `tryRead` may have news. */
  onReadable?(f: (() => void) | null): void;
}

/** What nkperf needs of a listener; `Deno.Listener` satisfies it. */
export interface NetListener {
  /** Waits for the next connection; rejects once closed. */
  accept(): Promise<NetConn>;
  /** Stops listening. */
  close(): void;
  /** The bound address. */
  readonly addr: Deno.Addr;
  /**
   * Optional: resolves once connections are taken (a GuestLib listener's LISTEN reaches the
   * NSM after `listen()` returns), rejects when listening failed. Absent: at once.
   */
  readonly ready?: Promise<void>;
}

/** TCP state a stack can report per connection (Linux's TCP_INFO subset iperf3 prints). */
export interface TcpInfoSample {
  /** Congestion window in bytes. */
  readonly sndCwnd: number;
  /** Total retransmitted segments since the connection opened. */
  readonly retransmits: number;
  /** Smoothed RTT in microseconds. */
  readonly rttUs: number;
  /** RTT variation in microseconds. */
  readonly rttVarUs: number;
  /** Path MTU in bytes, or 0 when unknown. */
  readonly pmtu: number;
  /** Peer's advertised send window in bytes, or 0 when unknown. */
  readonly sndWnd: number;
}

/** The injectable network: swap this object to run nkperf on another stack. */
export interface NetApi {
  /** Opens a TCP connection. */
  connect(opts: { hostname: string; port: number }): Promise<NetConn>;
  /** Listens for TCP connections on `port` (all addresses unless `hostname`). */
  listen(opts: { port: number; hostname?: string }): NetListener;
  /** TCP_INFO of a connection this object made, or undefined when the stack cannot tell. */
  tcpInfo?(conn: NetConn): TcpInfoSample | undefined;
  /** Name of the congestion control in use, when known. */
  congestion?(conn: NetConn): string | undefined;
}

/**
 * Deno's sockets (the host kernel's TCP). Deno exposes no TCP_INFO, so no `tcpInfo`: reports
 * carry retransmits 0 and no cwnd, as iperf3 does on platforms without TCP_INFO.
 */
export const denoNet: NetApi = {
  connect(opts: { hostname: string; port: number }): Promise<NetConn> {
    return Deno.connect({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
  },
  listen(opts: { port: number; hostname?: string }): NetListener {
    return Deno.listen({ port: opts.port, hostname: opts.hostname ?? "0.0.0.0" });
  },
};

/** The connection was closed locally or by the peer while writing. */
export class ConnectionClosedError extends Error {
  /** Builds the error. */
  constructor(what: string) {
    super(`${what}: the connection is closed; open a new one`);
    this.name = "ConnectionClosedError";
  }
}

/** Nothing listens on the address `memoryNet` was asked to connect to. */
export class ConnectionRefusedError extends Error {
  /** Builds the error for `port`. */
  constructor(port: number) {
    super(`connection refused: nothing listens on memory port ${port}; start the server first`);
    this.name = "ConnectionRefusedError";
  }
}

// One direction of an in-memory connection: a bounded byte queue with one waiting reader and
// one waiting writer at most (nkperf never reads or writes one connection concurrently).
class Pipe {
  readonly #cap: number;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #sinceYield = 0;
  #closed = false;
  #readWaiter: (() => void) | undefined;
  #writeWaiter: (() => void) | undefined;

  constructor(capacity: number) {
    this.#cap = capacity;
  }

  close(): void {
    this.#closed = true;
    this.#wakeReader();
    this.#wakeWriter();
  }

  #wakeReader(): void {
    const w = this.#readWaiter;
    this.#readWaiter = undefined;
    w?.();
  }

  #wakeWriter(): void {
    const w = this.#writeWaiter;
    this.#writeWaiter = undefined;
    w?.();
  }

  async write(p: Uint8Array): Promise<number> {
    // Pipes resolve in microtasks only; after each buffer's worth, yield to the event loop so
    // timers (the test clock, interval reports) still fire while a sender and a receiver spin.
    if (this.#sinceYield >= this.#cap) {
      this.#sinceYield = 0;
      await new Promise<void>((r) => setTimeout(r, 0));
    }
    while (!this.#closed && this.#queued >= this.#cap) {
      await new Promise<void>((r) => (this.#writeWaiter = r));
    }
    if (this.#closed) throw new ConnectionClosedError("write");
    const n = Math.min(p.length, this.#cap - this.#queued);
    this.#chunks.push(p.slice(0, n));
    this.#queued += n;
    this.#sinceYield += n;
    this.#wakeReader();
    return n;
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#queued === 0 && !this.#closed) {
      await new Promise<void>((r) => (this.#readWaiter = r));
    }
    if (this.#queued === 0) return null;
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.length, p.length - n);
      p.set(c.subarray(0, take), n);
      n += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#queued -= n;
    this.#wakeWriter();
    return n;
  }
}

class MemoryConn implements NetConn {
  readonly localAddr: Deno.NetAddr;
  readonly remoteAddr: Deno.NetAddr;
  readonly #in: Pipe;
  readonly #out: Pipe;

  constructor(local: Deno.NetAddr, remote: Deno.NetAddr, inbound: Pipe, outbound: Pipe) {
    this.localAddr = local;
    this.remoteAddr = remote;
    this.#in = inbound;
    this.#out = outbound;
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#in.read(p);
  }

  write(p: Uint8Array): Promise<number> {
    return this.#out.write(p);
  }

  close(): void {
    this.#in.close();
    this.#out.close();
  }
}

class MemoryListener implements NetListener {
  readonly addr: Deno.NetAddr;
  readonly #pending: NetConn[] = [];
  #waiter: ((c: NetConn | null) => void) | undefined;
  #closed = false;
  readonly #onClose: () => void;

  constructor(addr: Deno.NetAddr, onClose: () => void) {
    this.addr = addr;
    this.#onClose = onClose;
  }

  deliver(c: NetConn): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    if (w) w(c);
    else this.#pending.push(c);
  }

  async accept(): Promise<NetConn> {
    const ready = this.#pending.shift();
    if (ready) return ready;
    if (this.#closed) throw new ConnectionClosedError("accept");
    const c = await new Promise<NetConn | null>((r) => (this.#waiter = r));
    if (c === null) throw new ConnectionClosedError("accept");
    return c;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(null);
  }
}

/**
 * An in-process network: `listen` registers a port, `connect` pairs two pipes of `capacity`
 * bytes per direction (backpressure like a socket buffer). Addresses are 198.18.0.1:port.
 */
export function memoryNet(capacity = 256 * 1024): NetApi {
  const listeners = new Map<number, MemoryListener>();
  let nextPort = 40000;
  const addr = (port: number): Deno.NetAddr => ({
    transport: "tcp",
    hostname: "198.18.0.1",
    port,
  });
  return {
    connect(opts: { hostname: string; port: number }): Promise<NetConn> {
      const l = listeners.get(opts.port);
      if (!l) return Promise.reject(new ConnectionRefusedError(opts.port));
      const ab = new Pipe(capacity);
      const ba = new Pipe(capacity);
      const local = addr(nextPort++);
      const remote = addr(opts.port);
      l.deliver(new MemoryConn(remote, local, ab, ba));
      return Promise.resolve(new MemoryConn(local, remote, ba, ab));
    },
    listen(opts: { port: number; hostname?: string }): NetListener {
      if (listeners.has(opts.port)) {
        throw new Deno.errors.AddrInUse(`memory port ${opts.port} is in use; pick another`);
      }
      const l = new MemoryListener(addr(opts.port), () => listeners.delete(opts.port));
      listeners.set(opts.port, l);
      return l;
    },
  };
}
