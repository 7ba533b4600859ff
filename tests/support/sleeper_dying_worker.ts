/**
 * A `Sleeper` thread that dies (nsm/sleeper_test.ts, nsm/runtime_test.ts): it starts like
 * nsm/sleeper_worker.ts, then exits at the first armed sleep, as a thread failing in the
 * middle of a sleep would.
 *
 * @module
 */

import process from "node:process";
import { workerData } from "node:worker_threads";
import { SleeperWord, type SleeperWorkerData, SleeperWorkerState } from "../../nsm/sleeper.ts";

const data = workerData as SleeperWorkerData;
const ctl = new Int32Array(data.control);
Atomics.compareExchange(ctl, SleeperWord.State, SleeperWorkerState.New, SleeperWorkerState.Running);
while (Atomics.load(ctl, SleeperWord.Arm) === 0) Atomics.wait(ctl, SleeperWord.Arm, 0, 50);
Atomics.store(ctl, SleeperWord.State, SleeperWorkerState.Exited);
process.exit(1); // in a worker: ends this thread only
