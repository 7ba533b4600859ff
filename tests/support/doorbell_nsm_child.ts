/**
 * The NSM side of a device for nsm/wake_test.ts, run in a network namespace of its own: creates
 * the device in `DIR`, prints its path, accepts one guest, prints whether its doorbell rings
 * synchronously (`sync-ring true|false`), wakes the guest once it announced its sleep
 * (`woke N`), and closes the device when its stdin closes.
 *
 * @module
 */

import { smallDevice } from "./small_device.ts";

const dir = Deno.args[0]!;
const dev = smallDevice("wake-ns", dir);
console.log(`path ${dev.path}`);
const bell = await dev.acceptGuest();
console.log(`sync-ring ${bell.syncRing}`);
for (let i = 0; i < 2000 && !bell.peerSleeping; i++) await new Promise((r) => setTimeout(r, 5));
bell.notify();
console.log(`woke ${bell.wakesSent}`);
// Until the test closes our stdin.
await Deno.stdin.readable.pipeTo(new WritableStream());
dev.close();
