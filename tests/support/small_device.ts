/**
 * A small NSM device for doorbell tests: 8-slot rings, two chunks per half, no huge pages, its
 * files and doorbell in `dir`.
 *
 * @module
 */

import { NsmDevice } from "../../nsm/device.ts";

/** Creates the device `name` (the process id is appended) in `dir`. */
export function smallDevice(name: string, dir: string): NsmDevice {
  return NsmDevice.create({
    name: `${name}-${Deno.pid}`,
    dir,
    bellDir: dir,
    hugePages: "never",
    ringCapacity: 8,
    chunksPerHalf: 2,
  });
}
