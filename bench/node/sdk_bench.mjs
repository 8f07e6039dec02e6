// The Node SDK's benchmarks (BENCHMARKS.md, "The Node SDK"), run by scripts/bench-node
// against a real `promptos serve` and a real nats-server on loopback.
//
// 1. A cached `get` of a 1 KB template with 3 variables, per call, from the PromptOS
//    Node SDK and, in the same run, from Langfuse's JS client (`@langfuse/client`:
//    `prompt.get` with its cache, then `compile`), served by a stand-in for Langfuse's
//    prompt endpoint on loopback (only its first `get` reaches it).
// 2. Deploy response -> a subscribed Node client returns the new text, p50/p99, over
//    NATS and over Server-Sent Events.
//
// Usage: node sdk_bench.mjs [--smoke]   (PROMPTOS_BIN: the server binary)
import http from 'node:http';
import { LangfuseClient } from '@langfuse/client';
import { Prompts } from 'promptos';
import { Nats, Server } from './harness.mjs';

const smoke = process.argv.includes('--smoke');
const GET_TARGET_US = 1;
const PROPAGATION_TARGET_MS = 10;

/** About 1 KB of text with three variables, as the Python benchmark's (36 uses). */
function templateOf1kb(tag) {
  const line = 'You are a careful assistant for {{company}}. Answer {{customer}} about {{topic}}. ';
  return `${line.repeat(13).slice(0, 1000)} [${tag}]`;
}

/** Best of `repeat` runs of `number` calls, in µs per call: the least disturbed run. */
async function perCallUs(call, number, repeat) {
  let best = Infinity;
  for (let r = 0; r < repeat; r++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < number; i++) await call();
    best = Math.min(best, Number(process.hrtime.bigint() - started) / 1e3 / number);
  }
  return best;
}

function perCallUsSync(call, number, repeat) {
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < repeat; r++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < number; i++) sink += call().length;
    best = Math.min(best, Number(process.hrtime.bigint() - started) / 1e3 / number);
  }
  if (sink === 0) throw new Error('nothing rendered');
  return best;
}

async function cachedGet(server, apiKey) {
  const variables = { company: 'Acme', customer: 'Alex', topic: 'billing' };
  const template = templateOf1kb('v1');
  const ours = new Prompts({ url: server.base, apiKey, ttlSeconds: 3600 });
  await ours.ready();
  const oursText = ours.get('bench-1kb', variables);

  // Langfuse's prompt endpoint, answering the one request its client's cache needs.
  const langfuseApi = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name: 'bench-1kb', version: 1, type: 'text', prompt: template, config: {},
      labels: ['production'], tags: [], commitMessage: null }));
  });
  await new Promise((r) => langfuseApi.listen(0, '127.0.0.1', r));
  const langfuse = new LangfuseClient({ publicKey: 'pk-lf-bench', secretKey: 'sk-lf-bench',
    baseUrl: `http://127.0.0.1:${langfuseApi.address().port}` });
  const langfuseGet = async () => (await langfuse.prompt.get('bench-1kb', { cacheTtlSeconds: 3600 })).compile(variables);
  const theirText = await langfuseGet();
  if (!oursText.includes('Acme') || oursText.includes('{{')) throw new Error(`not rendered: ${oursText.slice(0, 80)}`);
  if (oursText !== theirText) throw new Error('both clients must render the same text');

  const number = smoke ? 2_000 : 200_000;
  const repeat = smoke ? 2 : 7;
  const figures = {
    promptos: perCallUsSync(() => ours.get('bench-1kb', variables), number, repeat),
    promptosAwaited: await perCallUs(() => ours.fetch('bench-1kb', variables), smoke ? 200 : 20_000, repeat),
    langfuse: await perCallUs(langfuseGet, smoke ? 200 : 20_000, repeat),
  };
  ours.close();
  langfuseApi.close();
  return figures;
}

/** Milliseconds from each deploy's response to the client returning the new text. */
async function propagation(server, apiKey, natsUrl, rounds) {
  const texts = { v1: 'Propagation one', v2: 'Propagation two' };
  const prompts = new Prompts({ url: server.base, apiKey, natsUrl, ttlSeconds: 3600 });
  await prompts.ready();
  let wake = null;
  prompts.onChange((c) => c.prompt === 'bench-propagation' && wake?.());
  const arrival = (ms) => new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    wake = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
  // The feed subscribes in the background: deploy until a change comes through.
  let version = prompts.get('bench-propagation') === texts.v1 ? 'v1' : 'v2';
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error('no change arrived over the feed');
    version = version === 'v1' ? 'v2' : 'v1';
    const arrived = arrival(200);
    await server.deploy('bench-propagation', 'production', version);
    if (await arrived) break;
  }
  const samples = [];
  for (let i = 0; i < rounds; i++) {
    version = version === 'v1' ? 'v2' : 'v1';
    let arrived = arrival(10_000);
    await server.deploy('bench-propagation', 'production', version);
    const responded = performance.now();
    while (prompts.get('bench-propagation') !== texts[version]) {
      if (!(await arrived)) throw new Error(`${version} did not arrive within 10 s`);
      arrived = arrival(10_000);
    }
    samples.push(performance.now() - responded);
  }
  prompts.close();
  return samples;
}

function percentile(samples, p) {
  const ordered = [...samples].sort((a, b) => a - b);
  return ordered[Math.min(ordered.length - 1, Math.round((p / 100) * (ordered.length - 1)))];
}

const nats = await Nats.start();
const server = await Server.start({ natsUrl: nats.url });
try {
  await server.prompt('bench-1kb', { v1: { text: templateOf1kb('v1') } });
  await server.deploy('bench-1kb', 'production', 'v1');
  await server.prompt('bench-propagation', { v1: { text: 'Propagation one' }, v2: { text: 'Propagation two' } });
  await server.deploy('bench-propagation', 'production', 'v1');
  const apiKey = await server.apiKey();

  const get = await cachedGet(server, apiKey);
  const rounds = smoke ? 20 : 1_000;
  const overNats = await propagation(server, apiKey, nats.url, rounds);
  const overSse = await propagation(server, apiKey, undefined, rounds);

  const met = (ok) => (ok ? 'met' : 'NOT met');
  const rows = [
    ['cached get, 1 KB, 3 variables (PromptOS Node SDK, sync)', `${get.promptos.toFixed(2)} µs/call`,
      `≤ ${GET_TARGET_US} µs: ${met(get.promptos <= GET_TARGET_US)}`],
    ['  the same awaited (prompts.fetch, cached)', `${get.promptosAwaited.toFixed(2)} µs/call`, ''],
    ['  @langfuse/client prompt.get (cached) + compile, same run', `${get.langfuse.toFixed(2)} µs/call`,
      `${(get.langfuse / get.promptos).toFixed(1)}× ours`],
  ];
  for (const [feed, samples] of [['NATS', overNats], ['SSE', overSse]]) {
    const p99 = percentile(samples, 99);
    rows.push([`deploy -> subscribed Node client, ${feed}, ${samples.length} deploys`,
      `p50 ${percentile(samples, 50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
      `p99 ≤ ${PROPAGATION_TARGET_MS} ms: ${met(p99 <= PROPAGATION_TARGET_MS)}`]);
  }
  console.log(`Node ${process.version}${smoke ? ' (smoke: tiny sizes, figures meaningless)' : ''}`);
  for (const [what, figure, note] of rows) console.log(`${what.padEnd(62)} ${figure.padEnd(28)} ${note}`);
} finally {
  await server.remove();
  await nats.stop();
}
