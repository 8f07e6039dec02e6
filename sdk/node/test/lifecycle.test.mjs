// The client across the life of a process: the server going down, a start from the
// snapshot while it is down, Node's event loop never held up, the process exiting after
// close(), and A/B subjects bucketed exactly as the Rust SDK does.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import { Prompts, Unavailable } from 'promptos';
import { Nats, Server, eventually, scratchDir } from './harness.mjs';

test('server down: get serves the last known text and isStale says so', async (t) => {
  const server = await Server.start();
  t.after(() => server.remove());
  await server.prompt('greeting', { v1: { text: 'Hello {{ name }}' } });
  await server.deploy('greeting', 'production', 'v1');
  // A TTL of a second: the entry expires while the server is down, and must still serve.
  const prompts = new Prompts({ url: server.base, apiKey: await server.apiKey(), ttlSeconds: 1, timeoutMs: 500 });
  t.after(() => prompts.close());
  await prompts.ready();
  assert.equal(prompts.get('greeting', { name: 'Alex' }), 'Hello Alex');
  assert.equal(prompts.isStale('greeting'), false);

  await server.stop();
  await eventually(() => prompts.isStale('greeting') && prompts.isStale(), 'isStale to say so', 5_000);
  const until = Date.now() + 3_000; // three TTLs
  while (Date.now() < until) {
    assert.equal(prompts.get('greeting', { name: 'Alex' }), 'Hello Alex');
    assert.equal(prompts.prompt('greeting').isStale, true);
    await new Promise((r) => setTimeout(r, 20));
  }
});

test('a snapshot lets a fresh client start while the server is down', async (t) => {
  const server = await Server.start();
  const scratch = scratchDir();
  t.after(async () => {
    await server.remove();
    scratch.remove();
  });
  await server.prompt('greeting', { v1: { text: 'Hello {{ name }}' } });
  await server.prompt('farewell', { v1: { text: 'Bye {{ name }}' } });
  await server.deploy('greeting', 'production', 'v1');
  await server.deploy('farewell', 'production', 'v1');
  const apiKey = await server.apiKey();
  const snapshotPath = join(scratch.dir, 'prompts.json');
  const first = new Prompts({ url: server.base, apiKey, snapshotPath });
  await first.ready();
  assert.equal(first.get('farewell', { name: 'Alex' }), 'Bye Alex');
  await eventually(() => existsSync(snapshotPath) && readFileSync(snapshotPath, 'utf8').includes('Bye {{ name }}'),
    'the snapshot to hold both prompts');
  first.close();

  await server.stop();
  const fresh = new Prompts({ url: server.base, apiKey, snapshotPath, timeoutMs: 500 });
  t.after(() => fresh.close());
  await fresh.ready();
  assert.equal(fresh.get('greeting', { name: 'Alex' }), 'Hello Alex');
  assert.equal(fresh.get('farewell', { name: 'Sam' }), 'Bye Sam');
  assert.ok(fresh.isStale() && fresh.isStale('greeting'));
  await assert.rejects(fresh.fetch('never-seen'), Unavailable);
  assert.throws(() => fresh.get('never-seen-either'), Unavailable);
});

test('the event loop never stalls for more than a few ms during start, get, change and close', async (t) => {
  const nats = await Nats.start();
  const server = await Server.start({ natsUrl: nats.url });
  const scratch = scratchDir();
  // A server that accepts connections and never answers: calls wait off the loop.
  const silent = createServer(() => {});
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  t.after(async () => {
    silent.close();
    await server.remove();
    await nats.stop();
    scratch.remove();
  });
  await server.prompt('greeting', { v1: { text: 'Hello {{ name }} (v1)' }, v2: { text: 'Hi {{ name }} (v2)' } });
  await server.deploy('greeting', 'production', 'v1');
  const apiKey = await server.apiKey();
  const snapshotPath = join(scratch.dir, 'prompts.json');

  // The longest the loop waited, phase by phase (the histogram is reset for each).
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const longest = {};
  async function phase(name, work) {
    loop.reset();
    loop.enable();
    const answer = await work();
    // One more turn of the loop, so a stall at the very end is measured too.
    await new Promise((r) => setTimeout(r, 5));
    loop.disable();
    longest[name] = loop.max / 1e6;
    return answer;
  }

  const prompts = await phase('start', async () => {
    const client = new Prompts({ url: server.base, apiKey, natsUrl: nats.url, snapshotPath, ttlSeconds: 3600 });
    await client.ready();
    return client;
  });
  await phase('get', async () => {
    // In rounds of 10, so that the test's own loop does not hold the event loop up (a
    // get of the unoptimised addon takes tens of microseconds).
    for (let round = 0; round < 1000; round++) {
      for (let i = 0; i < 10; i++) prompts.get('greeting', { name: `user-${round * 10 + i}` });
      await new Promise((r) => setImmediate(r));
    }
  });
  await phase('change', async () => {
    const changed = [];
    prompts.onChange((c) => changed.push(c.version));
    const versions = ['v2', 'v1'];
    let n = 0;
    await eventually(async () => {
      await server.deploy('greeting', 'production', versions[n++ % 2]);
      await new Promise((r) => setTimeout(r, 100));
      return changed.length > 0;
    }, 'a change by push');
  });
  await eventually(() => readFileSync(snapshotPath, 'utf8').includes('greeting'), 'the snapshot');
  await phase('close', async () => prompts.close());

  const silentUrl = `http://127.0.0.1:${silent.address().port}`;
  const started = performance.now();
  await phase('start against a silent server', async () => {
    const down = new Prompts({ url: silentUrl, apiKey, snapshotPath, timeoutMs: 500, changeFeed: false });
    await down.ready();
    assert.match(down.get('greeting', { name: 'Alex' }), /Alex/);
    down.close();
  });
  const waited = performance.now() - started;

  console.log(`longest the event loop waited (ms): ${JSON.stringify(longest, (k, v) => (typeof v === 'number' ? +v.toFixed(1) : v))};`
    + ` the silent server held ready() ${waited.toFixed(0)} ms`);
  assert.ok(waited >= 400, 'the silent server made ready() wait, off the loop');
  for (const [name, ms] of Object.entries(longest)) {
    assert.ok(ms < 25, `the event loop was held up for ${ms.toFixed(1)} ms during ${name}`);
  }
});

test('the process exits by itself after close()', async (t) => {
  const nats = await Nats.start();
  const server = await Server.start({ natsUrl: nats.url });
  t.after(async () => {
    await server.remove();
    await nats.stop();
  });
  await server.prompt('greeting', { v1: { text: 'Bye {{ name }}' } });
  await server.deploy('greeting', 'production', 'v1');
  const apiKey = await server.apiKey();
  const fixture = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fixtures', 'exit-after-close.mjs');
  for (const feed of [nats.url, '']) {
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, [fixture, server.base, apiKey, feed], { timeout: 10_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`the process did not exit cleanly: ${error.message} ${stderr}`)) : resolve(stdout));
    });
    assert.equal(out, 'Bye Exit\nclosed\n');
  }
});

// The bucket of a subject as the server documents it (core/src/experiment.rs,
// `bucket_of`): SHA-256 over prompt, newline, experiment id, newline, subject; the first
// 8 bytes big-endian, modulo 100. Written here independently of the Rust code.
function bucketOf(prompt, experimentId, subject) {
  const digest = createHash('sha256').update(`${prompt}\n${experimentId}\n${subject}`).digest();
  return Number(digest.readBigUInt64BE(0) % 100n);
}

test('the same 10,000 subjects get the same variants as the Rust SDK', async (t) => {
  // The Rust SDK's and core's fixed vectors (sdk/src/template.rs, core/src/experiment.rs).
  const id = '0190c3a4-0000-7000-8000-000000000000';
  assert.equal(bucketOf('checkout', id, 'user-42'), 81);
  assert.equal(bucketOf('checkout', id, 'user-7'), 88);
  assert.equal(bucketOf('checkout', id, 'alice@example.com'), 19);

  const server = await Server.start();
  t.after(() => server.remove());
  await server.prompt('checkout', { v1: { text: 'Buy now (v1)' }, v2: { text: 'Buy now (v2)' }, v3: { text: 'Buy now (v3)' } });
  await server.deploy('checkout', 'production', 'v1');
  await server.post('/deployments/split', {
    prompt_name: 'checkout',
    environment: 'production',
    variants: [{ version_string: 'v1', weight: 20 }, { version_string: 'v2', weight: 30 }, { version_string: 'v3', weight: 50 }],
  });
  const prompts = new Prompts({ url: server.base, apiKey: await server.apiKey(), changeFeed: false });
  t.after(() => prompts.close());
  await prompts.ready();
  const { experiment } = prompts.prompt('checkout');
  assert.ok(experiment && experiment.buckets.length === 100, 'the experiment is served with its bucket table');
  const counts = {};
  const differing = [];
  for (let i = 0; i < 10_000; i++) {
    const subject = `user-${i}`;
    const served = prompts.getFor('checkout', subject);
    const expected = experiment.variants[experiment.buckets[bucketOf('checkout', experiment.experiment_id, subject)]];
    if (served.version !== expected.version_string || served.text !== `Buy now (${served.version})`) differing.push(subject);
    assert.equal(served.experimentId, experiment.experiment_id);
    counts[served.version] = (counts[served.version] ?? 0) + 1;
  }
  assert.deepEqual(differing, [], `${differing.length} subjects differ`);
  for (const [version, share] of [['v1', 0.2], ['v2', 0.3], ['v3', 0.5]]) {
    assert.ok(Math.abs(counts[version] / 10_000 - share) < 0.03, `${version} gets about ${share * 100} %: ${counts[version]}`);
  }
});
