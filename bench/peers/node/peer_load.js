// peer_load.js: the load client bench/peers/run.py drives RabbitMQ, NATS JetStream and BullMQ
// (on Redis) with, in the shapes of `conveyor bench`: `enqueue` (producers only, --tasks in
// batches of --batch over --connections) and `e2e` (half the connections produce for
// --duration seconds, half consume with a prefetch of --prefetch and batched acks; the run
// ends when every task sent is acked; tasks/s = acked / time of the last ack). Prints one
// JSON line; any error, a count that does not match or a queue left non-empty exits 1.
//
//   node peer_load.js rabbitmq|nats|bullmq enqueue|e2e --port P [--tasks N] [--duration S]
//        [--connections C] [--batch B] [--prefetch P] [--payload-bytes 100]
//
// The clients are the npm packages pinned in package.json beside this file.
'use strict';

const { once } = require('node:events');

function parseArgs(argv) {
  const o = { tasks: 100000, duration: 0, connections: 4, batch: 100, prefetch: 100,
    payloadBytes: 100, port: 0, stallSeconds: 30 };
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { pos.push(a); continue; }
    const key = a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in o)) throw new Error(`unknown option ${a}`);
    const v = Number(argv[++i]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a number`);
    o[key] = v;
  }
  [o.peer, o.workload] = pos;
  if (!['rabbitmq', 'nats', 'bullmq'].includes(o.peer)) throw new Error('peer: rabbitmq, nats or bullmq');
  if (!['enqueue', 'e2e'].includes(o.workload)) throw new Error('workload: enqueue or e2e');
  if (!o.port) throw new Error('--port is required');
  if (o.workload === 'e2e' && o.connections < 2) throw new Error('e2e needs 2 connections or more');
  if (o.batch < 1 || o.prefetch < 1 || o.connections < 1) throw new Error('--batch, --prefetch, --connections >= 1');
  return o;
}

// What producers and consumers share: counts and the clock, as conveyor bench's Run.
class Run {
  constructor(o) {
    this.o = o;
    this.t0 = process.hrtime.bigint();
    this.toSend = o.duration > 0 ? Infinity : o.tasks;
    this.endBy = o.duration > 0 ? o.duration * 1e6 : Infinity;  // µs since t0
    this.enqueued = 0;
    this.consumed = 0;  // acked
    this.lastDoneUs = 0;
    this.producersLeft = 0;
    this.latencies = [];  // enqueue -> delivery, µs, from each payload's "t"
    this.progressAt = Date.now();
    this.filler = 'x'.repeat(Math.max(1, o.payloadBytes - 24));
  }
  nowUs() { return Number(process.hrtime.bigint() - this.t0) / 1000; }
  // Up to --batch of what is left; 0 when the tasks or the time are used up.
  take() {
    if (this.toSend <= 0 || this.nowUs() >= this.endBy) return 0;
    const n = Math.min(this.o.batch, this.toSend);
    this.toSend -= n;
    return n;
  }
  // The payload of conveyor bench (and run.py's POST_LUA), stamped with its send time.
  payload() { return `{"t":${Math.round(this.nowUs())},"data":"${this.filler}"}`; }
  done(kind, n) {
    this[kind] += n;
    this.lastDoneUs = this.nowUs();
    this.progressAt = Date.now();
  }
  // A delivered payload's stamp -> latency sample (payload starts with {"t":).
  stamp(text) {
    const end = text.indexOf(',', 5);
    const t = Number(text.slice(5, end));
    if (Number.isFinite(t)) this.latencies.push(this.nowUs() - t);
  }
}

function percentile(sorted, q) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function waitFor(what, seconds, test) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (await test()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- RabbitMQ: durable classic queue, persistent messages, publisher confirms per batch,
// consumers with manual ack, basic.qos prefetch, acks with `multiple` per burst.
function rabbitmq(o) {
  const amqp = require('amqplib');
  const url = `amqp://guest:guest@127.0.0.1:${o.port}`;
  const queue = 'bench';
  const conns = [];
  const open = async () => {
    const c = await amqp.connect(url);
    c.on('error', (e) => fail(new Error('rabbitmq connection: ' + e.message)));
    conns.push(c);
    return c;
  };
  return {
    shape: 'classic durable queue, persistent (deliveryMode 2), confirm channel awaited per batch; '
      + 'consumers: manual ack, prefetch, ack multiple per burst',
    async setup() {
      const ch = await (await open()).createChannel();
      // classic queue, version 1 (3.10's default; no x-queue-version)
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
      await ch.purgeQueue(queue);  // a run starts on an empty queue
      await ch.close();
    },
    async producer(run) {
      const ch = await (await open()).createConfirmChannel();
      for (let n; (n = run.take()) > 0;) {
        for (let i = 0; i < n; i++) {
          if (!ch.sendToQueue(queue, Buffer.from(run.payload()), { persistent: true })) {
            await once(ch, 'drain');
          }
        }
        await ch.waitForConfirms();  // rejects if the broker nacks one
        run.done('enqueued', n);
      }
      await ch.close();
    },
    async consumer(run, stopped) {
      const ch = await (await open()).createChannel();
      await ch.prefetch(o.prefetch);
      let last = null;
      let pending = 0;
      let scheduled = false;
      const ackEvery = Math.max(1, Math.floor(o.prefetch / 2));
      const flush = () => {
        scheduled = false;
        if (!pending) return;
        ch.ack(last, true);  // everything up to `last` on this channel
        run.done('consumed', pending);
        pending = 0;
      };
      const { consumerTag } = await ch.consume(queue, (msg) => {
        if (msg === null) return fail(new Error('rabbitmq: consumer cancelled by the broker'));
        run.stamp(msg.content.toString('latin1'));
        last = msg;
        if (++pending >= ackEvery) flush();
        else if (!scheduled) { scheduled = true; setImmediate(flush); }
      }, { noAck: false });
      await stopped;
      await ch.cancel(consumerTag);
      flush();
      await ch.close();  // close-ok comes after the broker has taken every ack before it
    },
    async remaining() {
      const ch = await (await open()).createChannel();
      const q = await ch.checkQueue(queue);
      await ch.close();
      return q.messageCount;  // ready; unacked ones went back to ready when channels closed
    },
    async close() { for (const c of conns) await c.close().catch(() => {}); },
  };
}

// ---- NATS JetStream: file-storage stream with work-queue retention, js.publish awaited
// (a batch in flight at once), a shared durable pull consumer, explicit acks, fetch batches.
function nats(o) {
  const N = require('nats');
  const server = `127.0.0.1:${o.port}`;
  const stream = 'BENCH';
  const subject = 'bench';
  const durable = 'workers';
  const conns = [];
  const open = async () => {
    // noAsyncTraces: no Error (a stack capture) made per request; a fast client turns them off
    const nc = await N.connect({ servers: server, maxReconnectAttempts: 0, noAsyncTraces: true });
    nc.closed().then((e) => { if (e) fail(new Error('nats connection: ' + e.message)); });
    conns.push(nc);
    return nc;
  };
  let jsm;
  return {
    shape: 'stream: file storage, work-queue retention; PubAcks awaited per batch; '
      + 'durable pull consumer, explicit ack, fetch batches',
    async setup() {
      jsm = await (await open()).jetstreamManager();
      await jsm.streams.add({ name: stream, subjects: [subject], retention: N.RetentionPolicy.Workqueue,
        storage: N.StorageType.File });
      await jsm.streams.purge(stream);  // a run starts on an empty stream
      await jsm.consumers.add(stream, { durable_name: durable, ack_policy: N.AckPolicy.Explicit,
        max_ack_pending: Math.max(1000, o.connections * o.prefetch * 4), ack_wait: N.nanos(60000) });
    },
    // A JetStream publish is a core publish with a reply subject, answered by the stream's
    // PubAck once stored. nats.js's js.publish makes a request, a timer and two Error objects
    // per message (half the client's CPU here), so this producer does what the Go client's
    // PublishAsync does: one reply subscription, the batch in flight, the PubAcks counted.
    async producer(run) {
      const nc = await open();
      const inbox = N.createInbox();
      let batch = null;
      nc.subscribe(`${inbox}.*`, { callback: (err, m) => {
        const b = batch;
        if (err) return b.reject(err);
        const ack = m.data.length ? JSON.parse(Buffer.from(m.data).toString()) : null;
        if (!ack || ack.error || ack.stream !== stream || !ack.seq || ack.duplicate) {
          return b.reject(new Error(`nats: publish not acked: ${m.headers ? m.headers.code : ''} `
            + (ack ? JSON.stringify(ack) : '(no body)')));
        }
        if (--b.left === 0) b.resolve();
      } });
      await nc.flush();  // the subscription is in place before the first publish
      for (let n, id = 0; (n = run.take()) > 0;) {
        const acked = new Promise((resolve, reject) => { batch = { left: n, resolve, reject }; });
        for (let i = 0; i < n; i++) {
          nc.publish(subject, Buffer.from(run.payload()), { reply: `${inbox}.${id++}` });
        }
        await acked;
        run.done('enqueued', n);
      }
    },
    async consumer(run, stopped) {
      const nc = await open();
      const c = await nc.jetstream().consumers.get(stream, durable);
      let stop = false;
      stopped.then(() => { stop = true; });
      while (!stop) {
        const msgs = await c.fetch({ max_messages: o.prefetch, expires: 1000 });
        let n = 0;
        for await (const m of msgs) {
          run.stamp(Buffer.from(m.data).toString('latin1'));
          m.ack();
          n++;
        }
        // acks are published without a reply; a flush (PING/PONG) makes sure the server has them
        if (n) run.done('consumed', n);
      }
    },
    async remaining() {
      await conns[0].flush();
      return (await jsm.streams.info(stream)).state.messages;
    },
    async close() { for (const nc of conns) await nc.close().catch(() => {}); },
  };
}

// ---- BullMQ on Redis: Queue.addBulk per batch (removeOnComplete), Workers whose processor
// does nothing, each with --prefetch as its concurrency.
function bullmq(o) {
  const { Queue, Worker } = require('bullmq');
  // No reconnects: a lost connection fails the run instead of retrying forever.
  const connection = { host: '127.0.0.1', port: o.port, retryStrategy: () => null };
  const name = 'bench';
  const owned = [];
  return {
    shape: 'Queue.addBulk per batch, jobs removeOnComplete; Worker concurrency = prefetch, '
      + 'processor returns at once',
    async setup() {
      const q = new Queue(name, { connection });
      q.on('error', (e) => fail(new Error('bullmq queue: ' + e.message)));
      await q.obliterate({ force: true });  // a run starts on an empty queue
      await q.close();
    },
    async producer(run) {
      const q = new Queue(name, { connection });
      owned.push(q);
      q.on('error', (e) => fail(new Error('bullmq queue: ' + e.message)));
      const opts = { removeOnComplete: true };
      for (let n; (n = run.take()) > 0;) {
        const jobs = [];
        for (let i = 0; i < n; i++) jobs.push({ name: 't', data: run.payload(), opts });
        await q.addBulk(jobs);
        run.done('enqueued', n);
      }
    },
    async consumer(run, stopped) {
      const w = new Worker(name, async (job) => { run.stamp(job.data); },
        { connection, concurrency: o.prefetch, removeOnComplete: { count: 0 } });
      owned.push(w);
      w.on('error', (e) => fail(new Error('bullmq worker: ' + e.message)));
      w.on('failed', (job, e) => fail(new Error('bullmq job failed: ' + (e && e.message))));
      w.on('completed', () => run.done('consumed', 1));
      await stopped;
      await w.close();
    },
    async remaining() {
      const q = new Queue(name, { connection });
      owned.push(q);
      const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed',
        'completed', 'paused');
      return Object.values(counts).reduce((a, b) => a + b, 0);
    },
    async close() { for (const x of owned) await x.close().catch(() => {}); },
  };
}

let failWith = null;
let failed = null;
function fail(e) {
  if (!failed) failed = e;
  if (failWith) failWith(e);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const peer = { rabbitmq, nats, bullmq }[o.peer](o);
  const failure = new Promise((_, reject) => { failWith = reject; });
  failure.catch(() => {});
  if (failed) throw failed;
  await Promise.race([failure, peer.setup()]);
  const run = new Run(o);
  const producers = o.workload === 'e2e' ? Math.floor(o.connections / 2) : o.connections;
  const consumers = o.workload === 'e2e' ? o.connections - producers : 0;
  let release;
  const stopped = new Promise((r) => { release = r; });
  run.producersLeft = producers;
  const tasks = [];
  for (let i = 0; i < producers; i++) {
    tasks.push(peer.producer(run).then(() => { run.producersLeft--; }));
  }
  for (let i = 0; i < consumers; i++) tasks.push(peer.consumer(run, stopped));
  const stall = setInterval(() => {
    if (Date.now() - run.progressAt > o.stallSeconds * 1000) {
      fail(new Error(`no progress for ${o.stallSeconds} s: enqueued ${run.enqueued}, acked ${run.consumed}`));
    }
  }, 1000);
  const all = Promise.all(tasks);
  all.catch(fail);
  // Producers done; in e2e, also every task sent acked. Then the consumers stop.
  await Promise.race([failure, (async () => {
    await Promise.all(tasks.slice(0, producers));
    if (consumers) await waitFor('the consumers', 3600, () => run.consumed >= run.enqueued);
    release();
    await all;
  })()]);
  clearInterval(stall);
  const seconds = run.lastDoneUs / 1e6;
  let left = await Promise.race([failure, peer.remaining()]);
  // Acks that need no answer (NATS) may still be on their way: give them a few seconds.
  for (let i = 0; consumers && left !== 0 && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = await Promise.race([failure, peer.remaining()]);
  }
  const tasksDone = consumers ? run.consumed : run.enqueued;
  const lat = Float64Array.from(run.latencies).sort();
  const out = {
    peer: o.peer, workload: o.workload, connections: o.connections, producers, consumers,
    batch: o.batch, prefetch: o.prefetch, payload_bytes: run.payload().length, tasks: tasksDone,
    enqueued: run.enqueued, acked: run.consumed, remaining: left, seconds: +seconds.toFixed(3),
    tasks_per_second: Math.round(tasksDone / seconds), shape: peer.shape,
  };
  if (consumers) {
    out.enqueue_to_delivery_ms = { count: lat.length, p50: +(percentile(lat, 0.5) / 1000).toFixed(3),
      p99: +(percentile(lat, 0.99) / 1000).toFixed(3), max: +(percentile(lat, 1) / 1000).toFixed(3) };
  }
  await peer.close();
  const errors = [];
  if (failed) errors.push(failed.message);
  if (!(tasksDone > 0) || !(seconds > 0)) errors.push('no task done');
  if (o.workload === 'enqueue' && o.duration === 0 && run.enqueued !== o.tasks) {
    errors.push(`enqueued ${run.enqueued} of ${o.tasks}`);
  }
  if (o.workload === 'enqueue' && left !== run.enqueued) {
    errors.push(`the queue holds ${left} after ${run.enqueued} enqueued`);
  }
  if (consumers && run.consumed !== run.enqueued) {
    errors.push(`acked ${run.consumed} != enqueued ${run.enqueued} (redeliveries?)`);
  }
  if (consumers && left !== 0) errors.push(`the queue is not empty at the end: ${left} left`);
  if (errors.length) out.errors = errors;
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(errors.length ? 1 : 0);
}

process.on('unhandledRejection', (e) => {
  process.stderr.write(`peer_load: unhandled: ${e && e.stack || e}\n`);
  process.exit(1);
});
main().catch((e) => {
  process.stderr.write(`peer_load: ${e && e.stack || e}\n`);
  process.exit(1);
});
