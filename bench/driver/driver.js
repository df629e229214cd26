// Load generator of the benchmarks: one scenario against one server, results as JSON on stdout.
//
//   node driver.js <config.json>
//
// bench/run.py writes the config (server URL and pid, tokens, conversations, the scenario and
// its parameters) and pins this process to its own core. The driver samples the server's CPU
// (utime + stime) and RSS from /proc/<pid> at the edges of each measured phase, and its own CPU,
// so a result where the driver was the bottleneck can be told apart. Latencies go into HDR
// histograms in microseconds; open-loop latencies are measured from the moment a send was
// scheduled, not when it went out, so a late driver or server cannot hide queueing.
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import * as hdr from "hdr-histogram-js";
import { io } from "socket.io-client";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const CLK_TCK = config.clk_tck || 100;

function log(...args) {
  console.error(`[driver ${config.label || ""}]`, ...args);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function histogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function summary(h) {
  const ms = (v) => Math.round(v) / 1000;
  return {
    count: h.totalCount,
    p50_ms: ms(h.getValueAtPercentile(50)),
    p99_ms: ms(h.getValueAtPercentile(99)),
    p999_ms: ms(h.getValueAtPercentile(99.9)),
    max_ms: ms(h.maxValue),
  };
}

// CPU seconds (utime + stime) and RSS bytes of a process, from /proc.
function proc(pid) {
  if (!pid) return { cpu: 0, rss: 0 };
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 and 15
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
  return { cpu, rss };
}

// A sample of the server, the database and the driver itself at one moment.
function sample() {
  const own = process.cpuUsage();
  return {
    at: performance.now(),
    server: proc(config.server_pid),
    db: proc(config.db_pid),
    driver: (own.user + own.system) / 1e6,
  };
}

function delta(a, b) {
  const seconds = (b.at - a.at) / 1000;
  return {
    seconds,
    server_cpu_s: b.server.cpu - a.server.cpu,
    db_cpu_s: b.db.cpu - a.db.cpu,
    driver_cpu_s: b.driver - a.driver,
    driver_busy: (b.driver - a.driver) / seconds,
    server_busy: (b.server.cpu - a.server.cpu) / seconds,
  };
}

// The handshake of the reference client (securechat.client.chat.ChatClient.connect):
// WebSocket transport only, the session token in the Socket.IO auth payload, never the URL.
function connect(token, handlers = {}) {
  return new Promise((resolve, reject) => {
    const socket = io(config.url, {
      transports: ["websocket"],
      auth: { token },
      reconnection: false,
      forceNew: true,
      timeout: 30_000,
    });
    for (const [event, handler] of Object.entries(handlers)) socket.on(event, handler);
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => {
      socket.close();
      reject(new Error(`connect_error: ${error.message} ${JSON.stringify(error.data || {})}`));
    });
  });
}

// Connect `count` sockets, `concurrency` handshakes in flight; connect latencies into `h`.
async function connectMany(count, concurrency, h, handlersFor = () => ({}), tokenFor = (i) => i) {
  const sockets = new Array(count);
  let next = 0;
  let failed = 0;
  async function lane() {
    while (next < count) {
      const index = next++;
      const { token } = config.tokens[tokenFor(index) % config.tokens.length];
      const started = performance.now();
      try {
        sockets[index] = await connect(token, handlersFor(index));
        h?.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
      } catch (error) {
        failed++;
        if (failed <= 3) log(error.message);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { sockets: sockets.filter(Boolean), failed };
}

function closeAll(sockets) {
  for (const socket of sockets) socket.close();
}

// -- S1: idle connections ----------------------------------------------------------------------

async function idle(p) {
  const warm = await connectMany(Math.min(200, p.connections), 50, null);
  closeAll(warm.sockets);
  await sleep(2000);
  const before = sample();
  const { sockets, failed } = await connectMany(p.connections, p.concurrency, null);
  await sleep(p.settle_ms);
  const held = sample();
  await sleep(p.hold_ms);
  const after = sample();
  closeAll(sockets);
  const n = sockets.length;
  const idleCpu = after.server.cpu - held.server.cpu;
  return {
    connections: n,
    failed,
    rss_before_mb: before.server.rss / 2 ** 20,
    rss_held_mb: held.server.rss / 2 ** 20,
    kb_per_connection: (held.server.rss - before.server.rss) / 1024 / n,
    idle_cpu_percent: (100 * idleCpu) / ((after.at - held.at) / 1000),
    idle_cpu_us_per_conn_s: (1e6 * idleCpu) / ((after.at - held.at) / 1000) / n,
  };
}

// -- S2: connect burst -----------------------------------------------------------------------

async function burst(p) {
  const warm = await connectMany(Math.min(100, p.connections), 20, null);
  closeAll(warm.sockets);
  await sleep(1000);
  const h = histogram();
  const before = sample();
  const { sockets, failed } = await connectMany(p.connections, p.concurrency, h);
  const after = sample();
  closeAll(sockets);
  const d = delta(before, after);
  return {
    connections: sockets.length,
    failed,
    concurrency: p.concurrency,
    per_second: sockets.length / d.seconds,
    server_cpu_us_per_op: (1e6 * d.server_cpu_s) / sockets.length,
    db_cpu_us_per_op: (1e6 * d.db_cpu_s) / sockets.length,
    ...d,
    latency: summary(h),
  };
}

// -- S3, S4, S5: open-loop messages at rising rates --------------------------------------------

const nonce = () => randomBytes(12).toString("base64");
const signature = () => randomBytes(64).toString("base64");

// Runs the rate steps over `routes`: [{sender socket, conversation_id, epoch, sender_id,
// key_version, expect}] where `expect` is how many deliveries make one message complete.
async function rising(p, routes, pending) {
  const ciphertext = randomBytes(p.ciphertext_bytes).toString("base64");
  const steps = [];
  let best = null;
  let failures = 0;
  for (const rate of p.rates) {
    const h = histogram();
    const hAck = histogram();
    const state = { h, hAck, complete: 0 };
    let sent = 0;
    const t0 = performance.now() + 20;
    const total = Math.round((rate * p.step_ms) / 1000);
    const before = sample();
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000));
        while (sent < due) {
          const route = routes[sent % routes.length];
          const scheduled = t0 + (sent * 1000) / rate;
          const id = randomUUID();
          const entry = { scheduled, acked: 0, remaining: route.expect, state };
          pending.set(id, entry);
          route.socket.emit(
            "message:send",
            {
              v: 1, suite: "p256-v1", conversation_id: route.conversation_id, epoch: route.epoch,
              message_id: id, sender_id: route.sender_id, sender_key_version: route.key_version,
              nonce: nonce(), ciphertext, signature: signature(),
            },
            (ack) => {
              if (!ack || !ack.ok) {
                state.refused = (state.refused || 0) + 1;
                if (state.refused <= 3) log("refused", JSON.stringify(ack));
                return;
              }
              const now = performance.now();
              entry.acked = now;
              hAck.recordValue(Math.max(1, Math.round((now - scheduled) * 1000)));
              complete(pending, id, entry, now);
            },
          );
          sent++;
        }
        if (sent >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const sentAt = sample();
    const deadline = performance.now() + p.drain_ms;
    while (state.complete < total && performance.now() < deadline) await sleep(20);
    const after = sample();
    for (const [id, entry] of pending) if (entry.state === state) pending.delete(id);
    const sending = delta(before, sentAt);
    const d = delta(before, after);
    const deliveries = state.complete * routes[0].expect;
    const lost = total - state.complete;
    const s = summary(h);
    const step = {
      rate,
      sent: total,
      complete: state.complete,
      lost,
      refused: state.refused || 0,
      achieved_per_second: state.complete / d.seconds,
      server_cpu_us_per_op: (1e6 * d.server_cpu_s) / Math.max(1, state.complete),
      server_cpu_us_per_delivery: (1e6 * d.server_cpu_s) / Math.max(1, deliveries),
      db_cpu_us_per_op: (1e6 * d.db_cpu_s) / Math.max(1, state.complete),
      driver_busy: sending.driver_busy,
      server_busy: sending.server_busy,
      latency: s,
      ack_latency: summary(hAck),
    };
    steps.push(step);
    const ok = lost === 0 && step.refused === 0 && s.p99_ms < p.p99_limit_ms;
    log(
      `rate ${rate}/s: ${state.complete}/${total} complete, p50 ${s.p50_ms} p99 ${s.p99_ms}` +
        ` p999 ${s.p999_ms} ms, server ${step.server_cpu_us_per_op.toFixed(0)} us/op,` +
        ` server busy ${(100 * step.server_busy).toFixed(0)}%,` +
        ` driver busy ${(100 * step.driver_busy).toFixed(0)}% ${ok ? "" : "(over the limit)"}`,
    );
    if (ok) best = step;
    else if (++failures >= p.failures_to_stop) break;
    await sleep(p.pause_ms);
  }
  return { steps, best };
}

// A message is complete when its sender has the ack and every recipient has it.
function complete(pending, id, entry, now) {
  if (entry.done || !entry.acked || entry.remaining > 0) return;
  entry.done = true;
  pending.delete(id);
  entry.state.complete++;
  entry.state.h.recordValue(Math.max(1, Math.round((now - entry.scheduled) * 1000)));
}

function onDelivery(pending) {
  return (message) => {
    const entry = pending.get(message.message_id);
    if (!entry) return;
    entry.remaining--;
    complete(pending, message.message_id, entry, performance.now());
  };
}

async function direct(p) {
  const pending = new Map();
  const deliver = onDelivery(pending);
  const sockets = [];
  const routes = [];
  for (const pair of config.pairs) {
    const sender = await connect(config.tokens[pair.sender].token);
    const receiver = await connect(config.tokens[pair.receiver].token, { "message:new": deliver });
    sockets.push(sender, receiver);
    routes.push({
      socket: sender, conversation_id: pair.conversation_id, epoch: pair.epoch,
      sender_id: config.tokens[pair.sender].user_id, key_version: 1, expect: 1,
    });
  }
  await warmup(routes, p, pending);
  const result = await rising(p, routes, pending);
  closeAll(sockets);
  return result;
}

async function fanout(p) {
  const results = {};
  for (const group of config.groups) {
    const pending = new Map();
    const deliver = onDelivery(pending);
    const { sockets, failed } = await connectMany(
      group.members.length, 50, null,
      (i) => (i === 0 ? {} : { "message:new": deliver }),
      (i) => group.members[i],
    );
    if (failed) throw new Error(`${failed} members of the group of ${group.size} did not connect`);
    const routes = [{
      socket: sockets[0], conversation_id: group.conversation_id, epoch: group.epoch,
      sender_id: config.tokens[group.members[0]].user_id, key_version: 1,
      expect: group.members.length - 1,
    }];
    const params = { ...p, rates: group.rates };
    await warmup(routes, params, pending);
    results[group.size] = await rising(params, routes, pending);
    closeAll(sockets);
    await sleep(1000);
  }
  return results;
}

async function warmup(routes, p, pending) {
  await rising({ ...p, rates: [Math.min(200, p.rates[0])], step_ms: 1000, failures_to_stop: 1 },
    routes, pending);
}

// -- S6: history pages, closed loop -----------------------------------------------------------

async function historyPages(p) {
  const h = histogram();
  let done = 0;
  let errors = 0;
  let measuring = false;
  const stopAt = { value: Infinity };
  async function reader(index) {
    const reading = config.readers[index % config.readers.length];
    const url = `${config.url}/api/v1/conversations/${reading.conversation_id}/messages?limit=50`;
    const headers = { authorization: `Bearer ${config.tokens[reading.token].token}` };
    while (performance.now() < stopAt.value) {
      const started = performance.now();
      const answer = await fetch(url, { headers });
      const body = await answer.json();
      if (answer.status !== 200 || body.messages.length !== 50) {
        errors++;
        if (errors <= 3) log("history", answer.status, JSON.stringify(body).slice(0, 200));
      } else if (measuring) {
        done++;
        h.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)));
      }
    }
  }
  stopAt.value = performance.now() + p.warmup_ms + p.step_ms;
  const readers = Array.from({ length: p.readers }, (_, i) => reader(i));
  await sleep(p.warmup_ms);
  measuring = true;
  const before = sample();
  await Promise.all(readers);
  measuring = false;
  const after = sample();
  const d = delta(before, after);
  return {
    readers: p.readers,
    pages: done,
    errors,
    per_second: done / d.seconds,
    server_cpu_us_per_op: (1e6 * d.server_cpu_s) / Math.max(1, done),
    db_cpu_us_per_op: (1e6 * d.db_cpu_s) / Math.max(1, done),
    ...d,
    latency: summary(h),
  };
}

const SCENARIOS = { idle, burst, direct, fanout, history: historyPages };

const result = await SCENARIOS[config.scenario](config.params);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
