import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CpuMeter } from '../../scripts/bench/server';

const SPIN_MS = 400;

function spin(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

describe('bench CPU meter', () => {
  it('when only another thread of the server works, then the event loop share stays near zero', async () => {
    const meter = new CpuMeter(() => [process.pid]);
    const w = new Worker(`const end = Date.now() + ${SPIN_MS}; while (Date.now() < end);`, { eval: true });
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
