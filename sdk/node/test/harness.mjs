// Real processes for the Node SDK's tests: `promptos serve` (the binary scripts/test-node
// built, at $PROMPTOS_BIN) on a scratch SQLite file, and a nats-server of the test's own
// (JetStream on), each on a free loopback port.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ADMIN_PASSWORD = 'node-sdk-tests-admin-password';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Polls `check` (sync or async) until truthy; fails naming `what` after `within` ms. */
export async function eventually(check, what, within = 10_000) {
  const deadline = Date.now() + within;
  for (;;) {
    let value;
    try {
      value = await check();
    } catch {
      value = false;
    }
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${within} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function scratchDir() {
  const dir = mkdtempSync(join(tmpdir(), 'promptos-node-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export class Nats {
  static async start() {
    const binary = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find(existsSync);
    if (!binary) throw new Error('nats-server is not installed (scripts/prepare installs it)');
    const nats = new Nats();
    nats.port = await freePort();
    nats.url = `nats://127.0.0.1:${nats.port}`;
    nats.store = scratchDir();
    nats.process = spawn(binary, ['-a', '127.0.0.1', '-p', String(nats.port), '-js', '-sd', nats.store.dir], {
      stdio: 'ignore',
    });
    await eventually(() => accepts(nats.port), 'nats-server to accept connections');
    return nats;
  }

  async stop() {
    await kill(this.process);
    this.store.remove();
  }
}

async function kill(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** `promptos serve` with an admin token for setting things up over HTTP. */
export class Server {
  static async start({ natsUrl } = {}) {
    const binary = process.env.PROMPTOS_BIN;
    if (!binary || !existsSync(binary)) throw new Error('set PROMPTOS_BIN to the promptos binary (scripts/test-node does)');
    const server = new Server();
    server.work = scratchDir();
    server.port = await freePort();
    server.base = `http://127.0.0.1:${server.port}`;
    const env = { ...process.env, PROMPTOS_DATABASE_URL: `sqlite://${join(server.work.dir, 'promptos.db')}`,
      PROMPTOS_ADMIN_PASSWORD: ADMIN_PASSWORD, PROMPTOS_LOG: 'warn' };
    delete env.PROMPTOS_NATS_URL;
    if (natsUrl) env.PROMPTOS_NATS_URL = natsUrl;
    server.process = spawn(binary, ['serve', '--bind', `127.0.0.1:${server.port}`], {
      env, cwd: server.work.dir, stdio: 'ignore',
    });
    await eventually(async () => (await fetch(`${server.base}/readyz`)).ok, 'the server to answer /readyz', 60_000);
    const form = new URLSearchParams({ username: 'admin', password: ADMIN_PASSWORD });
    const answer = await fetch(`${server.base}/auth/token`, { method: 'POST', body: form });
    server.token = (await answer.json()).access_token;
    return server;
  }

  async post(path, body) {
    const answer = await fetch(`${this.base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
      body: JSON.stringify(body),
    });
    const text = await answer.text();
    if (!answer.ok) throw new Error(`POST ${path}: ${answer.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** Creates `name` with the given versions (`{ v1: { text: ... } }`). */
  async prompt(name, versions) {
    await this.post('/prompts/', { name });
    for (const [version, content] of Object.entries(versions)) {
      await this.post(`/prompts/${name}/versions/`, { version_string: version, ...content });
    }
  }

  deploy(name, environment, version) {
    return this.post('/deployments/', { prompt_name: name, environment, version_string: version });
  }

  async apiKey(environments = ['production']) {
    return (await this.post('/api-keys/', { name: 'node sdk test', environments })).key;
  }

  async stop() {
    await kill(this.process);
  }

  async remove() {
    await this.stop();
    this.work.remove();
  }
}
