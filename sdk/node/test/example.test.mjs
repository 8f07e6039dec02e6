// The example chatbot, installed as an application installs the package, prints the
// production text and then, after a deploy and without a restart, the new one.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { Server, eventually } from './harness.mjs';

const packageDir = () => dirname(createRequire(import.meta.url).resolve('promptos/package.json'));

/** Runs the chatbot `script` against a server and checks it follows a deploy. */
async function followsADeploy(t, script) {
  const server = await Server.start();
  t.after(() => server.remove());
  await server.prompt('customer-support-agent', {
    v1: { text: 'v1 for {{ customer_name }}' },
    v2: { text: 'v2 for {{ customer_name }}' },
  });
  await server.deploy('customer-support-agent', 'production', 'v1');
  const apiKey = await server.apiKey();
  const bot = spawn(process.execPath, [script], {
    env: { ...process.env, PROMPTOS_URL: server.base, PROMPTOS_API_KEY: apiKey, PROMPTOS_CHATBOT_INTERVAL: '0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  bot.stdout.on('data', (d) => (out += d));
  bot.stderr.on('data', (d) => (out += d));
  t.after(() => bot.kill('SIGKILL'));
  await eventually(() => out.includes('v1 for Alex'), 'the chatbot to print the production prompt', 15_000);
  await server.deploy('customer-support-agent', 'production', 'v2');
  await eventually(() => /v2 for (Alex|Sam|Kim)/.test(out), 'the chatbot to print the new text', 10_000);
  assert.equal(bot.exitCode, null, 'the chatbot kept running: no restart');
}

test('the example chatbot prints the new text after a deploy without a restart', async (t) => {
  // The package's own copy of the example, wherever `promptos` was installed from.
  await followsADeploy(t, join(packageDir(), 'examples', 'chatbot.mjs'));
});

// scripts/test-node installs typescript and @types/node beside the package.
const tsc = createRequire(import.meta.url).resolve.paths('typescript')
  .map((dir) => join(dir, '.bin', 'tsc')).find(existsSync);

test('the TypeScript chatbot compiles against the bundled types and follows a deploy', { skip: !tsc && 'no tsc installed' }, async (t) => {
  // In the application's folder, so that the output finds `promptos` in its node_modules.
  const out = mkdtempSync(join(process.cwd(), '.chatbot-ts-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  copyFileSync(join(packageDir(), 'examples', 'chatbot.ts'), join(out, 'chatbot.ts'));
  execFileSync(tsc, ['--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--strict',
    '--types', 'node', '--outDir', out, join(out, 'chatbot.ts')], { stdio: 'inherit' });
  await followsADeploy(t, join(out, 'chatbot.js'));
});
