// Drives a beanstalkd-protocol server with a real client library written by others:
//   node clients.js jackd|fivebeans PORT TUBE
// put with priorities and delays, reserve with timeout, touch, release, bury, kick, delete,
// stats, several tubes. Exits 0 when every step got what beanstalkd gives, else prints the
// step and exits 1. Used by tests/integration/test_beanstalk_clients.py.
'use strict';
const assert = require('assert/strict');

const [lib, portText, tube] = process.argv.slice(2);
const port = parseInt(portText, 10);

async function withJackd() {
  const Jackd = require('jackd');
  const c = new Jackd();
  await c.connect({ host: '127.0.0.1', port });
  const other = `${tube}-other`;
  assert.equal(await c.use(other), other);
  const elsewhere = Number(await c.put('elsewhere', { priority: 50, delay: 0, ttr: 30 }));
  await c.use(tube);
  const urgent = Number(await c.put('urgent', { priority: 1, delay: 0, ttr: 30 }));
  const later = Number(await c.put('later', { priority: 0, delay: 1, ttr: 30 }));
  await c.watch(tube);
  await c.watch(other);
  await c.ignore('default');
  // The most urgent ready job over both tubes; the delayed one is not ready yet.
  let job = await c.reserveWithTimeout(2);
  assert.equal(Number(job.id), urgent);
  assert.equal(job.payload.toString(), 'urgent');
  await c.touch(job.id);
  await c.release(job.id, { priority: 60, delay: 0 });
  job = await c.reserveWithTimeout(2);
  assert.equal(Number(job.id), elsewhere);
  await c.bury(job.id, 7);
  await c.use(other);
  assert.equal(Number(await c.kick(10)), 1);
  const stats = await c.statsJob(job.id);
  assert.match(stats, /\nstate: ready\n/);
  assert.match(stats, new RegExp(`\ntube: ${other}\n`));
  job = await c.reserveWithTimeout(2);
  assert.equal(Number(job.id), elsewhere);
  await c.delete(job.id);
  job = await c.reserveWithTimeout(2);  // the released one, priority 60
  assert.equal(Number(job.id), urgent);
  await c.delete(job.id);
  job = await c.reserveWithTimeout(3);  // the delayed one, ready after 1 s
  assert.equal(Number(job.id), later);
  await c.delete(job.id);
  await assert.rejects(c.reserveWithTimeout(0), /TIMED_OUT/);
  assert.match(await c.stats(), /\ncurrent-jobs-ready: \d+\n/);
  assert.match(await c.listTubesWatched(), new RegExp(`- ${tube}\n`));
  await c.quit();
}

function promisified(client, name) {
  return (...args) => new Promise((resolve, reject) => {
    client[name](...args, (err, ...values) => (err ? reject(new Error(String(err))) : resolve(values)));
  });
}

async function withFivebeans() {
  const fivebeans = require('fivebeans');
  const client = new fivebeans.client('127.0.0.1', port);
  await new Promise((resolve, reject) => {
    client.on('connect', resolve).on('error', reject);
    client.connect();
  });
  const c = {};
  for (const name of ['use', 'watch', 'ignore', 'put', 'reserve_with_timeout', 'touch',
    'release', 'bury', 'kick', 'kick_job', 'destroy', 'peek_ready', 'peek_buried',
    'stats_job', 'stats_tube', 'stats', 'list_tubes_watched']) {
    c[name] = promisified(client, name);
  }
  await c.use(tube);
  await c.watch(tube);
  await c.ignore('default');
  const [a] = await c.put(5, 0, 60, 'five');
  const [b] = await c.put(2, 0, 60, 'two');
  const [d] = await c.put(0, 30, 60, 'delayed');
  let [id, body] = await c.reserve_with_timeout(1);
  assert.equal(String(id), String(b));
  assert.equal(body.toString(), 'two');
  await c.touch(id);
  const [jobStats] = await c.stats_job(id);
  assert.equal(jobStats.state, 'reserved');
  assert.equal(String(jobStats.tube), tube);
  await c.release(id, 9, 0);
  [id] = await c.reserve_with_timeout(1);
  assert.equal(String(id), String(a));
  await c.bury(id, 3);
  const [buried] = await c.peek_buried();
  assert.equal(String(buried), String(a));
  const [kicked] = await c.kick(1);
  assert.equal(String(kicked), '1');
  await c.kick_job(d);  // the delayed one, ready at once
  const [ready] = await c.peek_ready();
  assert.equal(String(ready), String(d));  // priority 0 first
  for (const want of [d, a, b]) {
    [id] = await c.reserve_with_timeout(1);
    assert.equal(String(id), String(want));
    await c.destroy(id);
  }
  await assert.rejects(c.reserve_with_timeout(0), /TIMED_OUT/);
  const [tubeStats] = await c.stats_tube(tube);
  assert.equal(tubeStats['current-jobs-ready'], 0);
  const [watched] = await c.list_tubes_watched();
  assert.deepEqual(watched.map(String), [tube]);
  const [server] = await c.stats();
  assert.ok(server.pid > 0);
  client.end();
}

(lib === 'jackd' ? withJackd() : withFivebeans()).then(
  () => console.log(`${lib}: ok`),
  (err) => {
    console.error(`${lib}: ${err.stack || err}`);
    process.exit(1);
  });
