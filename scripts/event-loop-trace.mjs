#!/usr/bin/env node
// Where the event loop's long waits go, as the kernel's scheduler saw them. Runs
// scripts/event-loop-phases.mjs under `perf record` (sched_switch and sched_wakeup on every CPU,
// on the monotonic clock), then splits each gap of 6 ms or more after the first cycle into the
// main thread's states: running; sleeping (on a lock, or in epoll past its timer), with the
// thread that woke it; runnable but waiting for a core, with the thread that held the core.
// Threads are told apart as node's own (V8's helpers, libuv's pool), the library's (named
// hermes3-*: its worker, scheduler, compute and lowered threads; and ggml's compute threads,
// which end with their context) and other processes'.
// Linux only; needs perf (Debian: linux-perf) and the right to trace every CPU (root, or
// kernel.perf_event_paranoid at -1). Bounded by CYCLES (about 1.2 s each on 2 cores).
//   node scripts/event-loop-trace.mjs [CYCLES=150] [--v8-pool-size=N]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const cycles = process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? '150';
const nodeFlags = process.argv.slice(2).filter((a) => a.startsWith('--v8-pool-size'));
const dir = mkdtempSync(join(tmpdir(), 'hermes3-trace-'));
const data = join(dir, 'perf.data');
const json = join(dir, 'gaps.json');
const phases = join(dirname(fileURLToPath(import.meta.url)), 'event-loop-phases.mjs');

const rec = spawnSync('perf', ['record', '-q', '-k', 'CLOCK_MONOTONIC', '-e', 'sched:sched_switch', '-e', 'sched:sched_wakeup', '-a', '-o', data, '--', process.execPath, ...nodeFlags, phases, cycles, '--json', json], { stdio: 'inherit' });
if (rec.error) {
  console.error(`cannot run perf (${rec.error.message}): install it (Debian: apt-get install linux-perf)`);
  process.exit(2);
}
if (rec.status !== 0) {
  console.error('perf record failed: tracing every CPU needs root or `sysctl kernel.perf_event_paranoid=-1`');
  process.exit(2);
}
const run = JSON.parse(readFileSync(json, 'utf8'));
const main = run.pid;
const nodeOwn = new Set(run.threads);

// perf script lines: comm pid/tid [cpu] time: event: fields
const line = /^\s*(\S.*?)\s+(\d+)\/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(sched_switch|sched_wakeup):\s+(.*)$/;
const events = [];
const pidOf = new Map();
const commOf = new Map();
const script = spawn('perf', ['script', '-i', data, '-F', 'comm,pid,tid,cpu,time,event,trace'], { stdio: ['ignore', 'pipe', 'ignore'] });
for await (const l of createInterface({ input: script.stdout })) {
  const m = line.exec(l);
  if (!m) continue;
  const [, comm, pid, tid, cpu, time, kind, fields] = m;
  pidOf.set(Number(tid), Number(pid));
  commOf.set(Number(tid), comm);
  const t = Number(time);
  if (kind === 'sched_switch') {
    const f = /prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)/.exec(fields);
    if (f) events.push({ t, cpu: Number(cpu), kind, prev: Number(f[1]), state: f[2], next: Number(f[3]) });
  } else {
    const f = /pid=(\d+) /.exec(fields);
    if (f && Number(f[1]) === main) events.push({ t, kind, by: Number(tid) });
  }
}
rmSync(dir, { recursive: true, force: true });

// the library names its threads hermes3-* (ggml's compute threads are told by ending with their context)
const library = (tid) => commOf.get(tid)?.startsWith('hermes3-') || !nodeOwn.has(tid);
const who = (tid) => (tid === 0 ? 'an idle core' : tid === main ? 'main' : pidOf.get(tid) !== main ? 'another process' : library(tid) ? "the library's threads" : "node's threads");
const total = {};
const add = (acc, k, ms) => { acc[k] = (acc[k] ?? 0) + ms; };
const report = [];
for (const gap of run.gaps.filter((g) => g.cycle > 0)) {
  const start = Number(BigInt(gap.startNs)) / 1e9;
  const end = Number(BigInt(gap.endNs)) / 1e9;
  // the main thread's state and every core's task at the start: the last switches before it
  let state = 'running', cpu = -1;
  const onCpu = new Map();
  let i = 0;
  for (; i < events.length && events[i].t < start; i++) {
    const e = events[i];
    if (e.kind !== 'sched_switch') continue;
    onCpu.set(e.cpu, e.next);
    if (e.next === main) { state = 'running'; cpu = e.cpu; }
    else if (e.prev === main) { state = e.state.startsWith('R') ? 'runnable' : 'sleeping'; cpu = e.cpu; }
  }
  const acc = {};
  let at = start, waker = '';
  const close = (t) => {
    const ms = (t - at) * 1e3;
    if (state === 'running') add(acc, 'ran', ms);
    else if (state === 'runnable') add(acc, `waited for a core held by ${who(onCpu.get(cpu))}`, ms);
    else add(acc, 'slept', ms);
    at = t;
  };
  for (; i < events.length && events[i].t <= end; i++) {
    const e = events[i];
    if (e.kind === 'sched_wakeup') {
      if (state === 'sleeping') waker = who(e.by);
      continue;
    }
    if (e.cpu === cpu || e.next === main || e.prev === main) close(e.t);
    onCpu.set(e.cpu, e.next);
    if (e.next === main) { state = 'running'; cpu = e.cpu; }
    else if (e.prev === main) { state = e.state.startsWith('R') ? 'runnable' : 'sleeping'; cpu = e.cpu; }
  }
  close(end);
  if (waker && acc.slept) { acc[`slept (woken by ${waker})`] = acc.slept; delete acc.slept; }
  for (const [k, ms] of Object.entries(acc)) add(total, k.replace(/ \(woken by .*\)/, ''), ms);
  report.push(`  cycle ${gap.cycle}, ${gap.phase}: ${gap.gap.toFixed(1)} ms: ` + Object.entries(acc).filter(([, ms]) => ms >= 0.05).sort((a, b) => b[1] - a[1]).map(([k, ms]) => `${k} ${ms.toFixed(1)}`).join(', '));
}
console.log(`\n${report.length} gaps of 6 ms or more after the first cycle (${cycles} cycles${nodeFlags.length ? `, ${nodeFlags.join(' ')}` : ''}), the main thread's time in each (ms):`);
for (const r of report) console.log(r);
console.log('in all: ' + Object.entries(total).sort((a, b) => b[1] - a[1]).map(([k, ms]) => `${k} ${ms.toFixed(1)}`).join(', '));
