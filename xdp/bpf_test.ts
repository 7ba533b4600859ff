import assert from "node:assert/strict";
import { needsRoot } from "../tests/support/require.ts";
import { libc } from "./libc.ts";
import {
  BPF_INSN_LEN,
  BpfVerifierError,
  createXskMap,
  encodeInsn,
  loadXdpProgram,
  OP_CALL,
  OP_EXIT,
  OP_LD_IMM64,
  OP_LDX_MEM_W,
  OP_MOV64_IMM,
  REDIRECT_PROGRAM_INSNS,
  redirectProgram,
} from "./bpf.ts";

function hex(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < bytes.length; i += BPF_INSN_LEN) {
    out.push(
      [...bytes.subarray(i, i + BPF_INSN_LEN)].map((b) => b.toString(16).padStart(2, "0")).join(""),
    );
  }
  return out;
}

Deno.test("redirectProgram() encodes the 6 documented instructions with the map fd in insn 1", () => {
  const p = redirectProgram(0x1234);
  assert.equal(p.length, REDIRECT_PROGRAM_INSNS * BPF_INSN_LEN);
  assert.deepEqual(hex(p), [
    "6112100000000000", // r2 = *(u32 *)(r1 + 16)
    "1811000034120000", // r1 = map fd 0x1234 (src = BPF_PSEUDO_MAP_FD)
    "0000000000000000", // upper half of ld_imm64
    "b703000002000000", // r3 = XDP_PASS
    "8500000033000000", // call 51 (bpf_redirect_map)
    "9500000000000000", // exit
  ]);
});

Deno.test("encodeInsn() packs src into the high nibble, dst into the low one, off and imm signed LE", () => {
  const b = new Uint8Array(16);
  encodeInsn(b, 1, 0x61, 0xa, 0x3, -2, -1);
  assert.deepEqual([...b.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...b.subarray(8)], [0x61, 0x3a, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
});

Deno.test("opcode constants are the BPF class|size|mode encodings", () => {
  assert.equal(OP_LDX_MEM_W, 0x01 | 0x00 | 0x60); // BPF_LDX | BPF_W | BPF_MEM
  assert.equal(OP_LD_IMM64, 0x00 | 0x18 | 0x00); // BPF_LD | BPF_DW | BPF_IMM
  assert.equal(OP_MOV64_IMM, 0x07 | 0xb0 | 0x00); // BPF_ALU64 | BPF_MOV | BPF_K
  assert.equal(OP_CALL, 0x05 | 0x80); // BPF_JMP | BPF_CALL
  assert.equal(OP_EXIT, 0x05 | 0x90); // BPF_JMP | BPF_EXIT
});

const root = needsRoot();

Deno.test({
  name: "loadXdpProgram() throws BpfVerifierError carrying the verifier log for a bad program",
  ignore: root.ignore,
  fn(): void {
    root.assert();
    // "exit" with r0 never written: the verifier refuses to read an uninitialised register.
    const bad = new Uint8Array(BPF_INSN_LEN);
    encodeInsn(bad, 0, OP_EXIT, 0, 0, 0, 0);
    assert.throws(() => loadXdpProgram(bad), (e: unknown) => {
      assert.ok(e instanceof BpfVerifierError, String(e));
      assert.match(e.log, /R0 !read_ok/);
      assert.match(e.message, /verifier log/);
      return true;
    });
  },
});

Deno.test({
  name: "the redirect program loads against a real XSKMAP (the verifier accepts the encoding)",
  ignore: root.ignore,
  fn(): void {
    root.assert();
    const c = libc();
    const map = createXskMap(4);
    try {
      const prog = loadXdpProgram(redirectProgram(map));
      assert.ok(prog > 0);
      c.close(prog);
    } finally {
      c.close(map);
    }
  },
});
