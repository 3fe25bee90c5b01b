import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CpuMeter } from '../../scripts/bench/server';

const SPIN_MS = 400;

/**
 * Spins until the calling thread has used `ms` of CPU (utime + stime of /proc/thread-self/stat, in
 * 10 ms clock ticks). A loop timed by the wall clock gets a fraction of a core on a loaded machine,
 * and so much less CPU than the assertions expect. As source, so that a worker can run it too.
 */
const SPIN_CPU = `(ms) => {
  const { readFileSync } = require('node:fs');
  const used = () => {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  };
  const end = used() + ms;
  let x = 0;
  while (used() < end) for (let i = 0; i < 100000; i++) x += i;
  return x;
}`;
const spin = eval(SPIN_CPU) as (ms: number) => number;

describe('bench CPU meter', () => {
  it('when only another thread of the server works, then the event loop share stays near zero', async () => {
    const meter = new CpuMeter(() => [process.pid]);
    const w = new Worker(`(${SPIN_CPU})(${SPIN_MS});`, { eval: true });
    await new Promise((resolve) => w.once('exit', resolve));
    const cpu = meter.read();
    assert.ok(cpu.serverCores * cpu.seconds > (0.5 * SPIN_MS) / 1000, `the worker's CPU is counted: ${JSON.stringify(cpu)}`);
    assert.ok(cpu.eventLoopCores < 0.25 * cpu.serverCores, `the event loop was idle: ${JSON.stringify(cpu)}`);
  });

  it('when the main thread works, then the event loop share is most of the server CPU', () => {
    const meter = new CpuMeter(() => [process.pid]);
    spin(SPIN_MS);
    const cpu = meter.read();
    assert.ok(cpu.eventLoopCores > 0.75 * cpu.serverCores, `the main thread's CPU: ${JSON.stringify(cpu)}`);
    assert.ok(cpu.eventLoopCores <= cpu.serverCores + 0.05, `a part of the whole: ${JSON.stringify(cpu)}`);
  });
});
