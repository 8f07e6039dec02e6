// A deploy reaches a running client by push (NATS and SSE), not by the TTL; errors read
// as PromptosError subclasses; chat prompts come ready for an LLM client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ConfigurationError, MissingVariable, PromptNotFound, Prompts, PromptosError, Unauthorized, WrongKind,
} from 'promptos';
import { Nats, Server, eventually } from './harness.mjs';

for (const feed of ['nats', 'sse']) {
  describe(`over ${feed}`, () => {
    let nats;
    let server;
    before(async () => {
      nats = feed === 'nats' ? await Nats.start() : null;
      server = await Server.start({ natsUrl: nats?.url });
    });
    after(async () => {
      await server?.remove();
      await nats?.stop();
    });

    test(`a deploy reaches a running client over ${feed} without waiting for the TTL`, async (t) => {
      await server.prompt('greeting', { v1: { text: 'Hello {{ name }} (v1)' }, v2: { text: 'Hi {{ name }} (v2)' } });
      await server.deploy('greeting', 'production', 'v1');
      const prompts = new Prompts({
        url: server.base, apiKey: await server.apiKey(), natsUrl: nats?.url, ttlSeconds: 3600, appName: 'node-tests',
      });
    t.after(() => prompts.close());
      await prompts.ready();
      assert.equal(prompts.get('greeting', { name: 'Alex' }), 'Hello Alex (v1)');
      assert.equal(prompts.isStale('greeting'), false);
      const changes = [];
      const unsubscribe = prompts.onChange((c) => changes.push(c));
      // The feed subscribes in the background: redeploy until a change arrives.
      const versions = ['v2', 'v1'];
      let n = 0;
      await eventually(async () => {
        await server.deploy('greeting', 'production', versions[n++ % 2]);
        const deadline = Date.now() + 200;
        while (Date.now() < deadline && changes.length === 0) await new Promise((r) => setTimeout(r, 5));
        return changes.length > 0;
      }, 'a first change');
      // The feed is up: the next deploy must arrive by push (the TTL is an hour).
      const expected = { v1: 'Hello Alex (v1)', v2: 'Hi Alex (v2)' };
      const other = { v1: 'v2', v2: 'v1' };
      let version = changes.at(-1).version;
      for (let round = 0; round < 3; round++) {
        version = other[version];
        const heard = changes.length;
        await server.deploy('greeting', 'production', version);
        await eventually(() => prompts.get('greeting', { name: 'Alex' }) === expected[version], `${version} served`, 5_000);
        await eventually(() => changes.length > heard && changes.at(-1).version === version, 'the listener', 5_000);
      }
      const seen = changes.at(-1);
      assert.equal(seen.prompt, 'greeting');
      assert.equal(seen.environment, 'production');
      assert.equal(seen.type, 'VersionDeployed');
      assert.equal(typeof seen.position, 'number');
      unsubscribe();
      const before = changes.length;
      await server.deploy('greeting', 'production', other[version]);
      await eventually(() => prompts.get('greeting', { name: 'Alex' }) === expected[other[version]], 'a push', 5_000);
      assert.equal(changes.length, before, 'an unsubscribed listener hears nothing');
    });
  });
}

describe('answers and errors', () => {
  let server;
  before(async () => {
    server = await Server.start();
  });
  after(() => server?.remove());

  test('a missing variable is named and chat prompts come ready for an LLM client', async (t) => {
    await server.prompt('letter', { v1: { text: 'Dear {{ name }}, about {{ topic }}' } });
    await server.deploy('letter', 'production', 'v1');
    await server.prompt('support-chat', {
      v1: {
        messages: [
          { role: 'system', content: 'You help {{ company }} customers.' },
          { role: 'user', content: '{{ question }}' },
        ],
        config: { model: 'gpt-4o-mini', temperature: 0.2 },
      },
    });
    await server.deploy('support-chat', 'production', 'v1');
    const prompts = new Prompts({ url: server.base, apiKey: await server.apiKey() });
    t.after(() => prompts.close());
    await prompts.ready();

    const missing = assert.throws(() => prompts.get('letter', { name: 'Alex' }), MissingVariable);
    let error;
    try {
      prompts.get('letter', { name: 'Alex' });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof PromptosError);
    assert.deepEqual(error.variables, ['topic']);
    assert.equal(error.prompt, 'letter');
    void missing;

    const chat = prompts.getChat('support-chat', { company: 'Acme', question: 'Where is my order?' });
    assert.deepEqual(chat.messages, [
      { role: 'system', content: 'You help Acme customers.' },
      { role: 'user', content: 'Where is my order?' },
    ]);
    assert.equal(chat.config.model, 'gpt-4o-mini');
    assert.equal(chat.version, 'v1');
    assert.throws(() => prompts.get('support-chat', {}), WrongKind);
    await assert.rejects(prompts.fetch('never-deployed'), PromptNotFound);
    const raw = prompts.prompt('letter');
    assert.equal(raw.text, 'Dear {{ name }}, about {{ topic }}');
    assert.equal(raw.version, 'v1');
    assert.equal(raw.isStale, false);

    const refused = new Prompts({ url: server.base, apiKey: 'pos_not-a-key', changeFeed: false });
    await assert.rejects(refused.ready(), Unauthorized);
    refused.close();

    // `await using` calls this at the end of its block.
    await prompts[Symbol.asyncDispose]();
    assert.throws(() => prompts.get('letter', { name: 'A', topic: 'B' }), ConfigurationError);
    await assert.rejects(prompts.ready(), ConfigurationError);
  });

  test('a prompt outside the prefetched environment is fetched once, then served synchronously', async (t) => {
    await server.prompt('staging-only', { v1: { text: 'Staging {{ n }}' } });
    await server.deploy('staging-only', 'staging', 'v1');
    const prompts = new Prompts({ url: server.base, apiKey: await server.apiKey(['production', 'staging']) });
    t.after(() => prompts.close());
    await prompts.ready();
    assert.equal(await prompts.fetch('staging-only', { n: 1 }, { env: 'staging' }), 'Staging 1');
    assert.equal(prompts.get('staging-only', { n: 2 }, { env: 'staging' }), 'Staging 2');
  });
});
