// Node's worker threads: one client per thread, each following deploys by push, and each
// thread ending by itself after close().
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Nats, Server, eventually } from './harness.mjs';

test('clients in two worker threads each follow a deploy by push and let their threads end', async (t) => {
  const nats = await Nats.start();
  const server = await Server.start({ natsUrl: nats.url });
  t.after(async () => {
    await server.remove();
    await nats.stop();
  });
  await server.prompt('greeting', { v1: { text: 'Hello {{ name }} (v1)' }, v2: { text: 'Hi {{ name }} (v2)' } });
  await server.deploy('greeting', 'production', 'v1');
  const apiKey = await server.apiKey();
  const script = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fixtures', 'worker-client.mjs');
  const workers = ['Ann', 'Bo'].map((name) => {
    const worker = new Worker(script, { workerData: { url: server.base, apiKey, natsUrl: nats.url, name } });
    const state = { name, messages: [], exit: null, error: null };
    worker.on('message', (m) => state.messages.push(m));
    worker.on('error', (e) => (state.error = e));
    worker.on('exit', (code) => (state.exit = code));
    t.after(() => worker.terminate());
    return state;
  });
  await eventually(() => workers.every((w) => w.messages.length > 0 || w.error), 'both workers to serve the prompt', 15_000);
  for (const w of workers) {
    assert.equal(w.error, null);
    assert.deepEqual(w.messages[0], { first: `Hello ${w.name} (v1)` });
  }
  // Their feeds subscribe in the background: redeploy until both heard a change.
  const versions = ['v2', 'v1'];
  let n = 0;
  await eventually(async () => {
    await server.deploy('greeting', 'production', versions[n++ % 2]);
    await new Promise((r) => setTimeout(r, 100));
    return workers.every((w) => w.messages.length > 1 || w.error);
  }, 'both workers to hear a deploy', 15_000);
  for (const w of workers) {
    assert.equal(w.error, null);
    assert.match(w.messages[1].after, new RegExp(`^(Hi ${w.name} \\(v2\\)|Hello ${w.name} \\(v1\\))$`));
  }
  await eventually(() => workers.every((w) => w.exit !== null), 'both threads to end by themselves after close()', 10_000);
  assert.deepEqual(workers.map((w) => w.exit), [0, 0]);
});
