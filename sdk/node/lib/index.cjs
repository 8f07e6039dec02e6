'use strict';
// PromptOS for Node.js: the prompt live in an environment with one call, cached, and
// refreshed by push the moment someone deploys. The cache, the change feed (NATS or
// SSE), the renderer and the A/B bucketing are the Rust SDK's, in the native addon
// promptos.node (sdk/node/src); this file only gives them a JavaScript shape.

const { join } = require('node:path');
const errors = require('./errors.cjs');
const { fromNative, ConfigurationError } = errors;

const native = require(join(__dirname, '..', 'promptos.node'));
const { version } = require('../package.json');

/** Calls the addon, turning its errors into PromptosError subclasses. */
function call(fn) {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Awaits what `start()` returns; its errors, thrown or rejected, as PromptosError subclasses. */
async function settle(start) {
  try {
    return await start();
  } catch (e) {
    throw fromNative(e);
  }
}

function vars(variables) {
  if (variables === undefined || variables === null) return undefined;
  if (typeof variables !== 'object' || Array.isArray(variables)) {
    throw new TypeError('variables must be a plain object of names to values');
  }
  return JSON.stringify(variables);
}

/** One change the server pushed (see the Change type in index.d.ts). */
function change(raw) {
  return {
    prompt: raw.prompt,
    environment: raw.environment,
    version: raw.version_string ?? null,
    type: raw.type,
    position: raw.position,
    at: raw.at,
  };
}

function template(raw) {
  return {
    name: raw.prompt_name,
    environment: raw.environment,
    version: raw.version_string,
    kind: raw.kind ?? 'text',
    text: raw.prompt_text ?? null,
    messages: raw.messages ?? null,
    config: raw.config ?? {},
    variables: raw.variables ?? [],
    experiment: raw.experiment ?? null,
    isStale: Boolean(raw.is_stale),
  };
}

function chat(raw) {
  return { messages: raw.messages, config: raw.config ?? {}, version: raw.version, experimentId: raw.experimentId ?? null };
}

class Prompts {
  #environment;
  #native = null;
  #starting;
  #listeners = new Set();
  #closed = false;

  /** See PromptsOptions in index.d.ts. */
  constructor(options = {}) {
    if (!options || typeof options.url !== 'string') throw new ConfigurationError('new Prompts({ url }) needs the server URL');
    this.#environment = options.environment || 'production';
    const seconds = options.ttlSeconds;
    this.#starting = settle(() =>
      native.connect({
        url: options.url,
        apiKey: options.apiKey ?? undefined,
        natsUrl: options.natsUrl ?? undefined,
        snapshotPath: options.snapshotPath ?? undefined,
        ttlSeconds: seconds ?? undefined,
        timeoutMs: options.timeoutMs ?? undefined,
        strict: options.strict ?? undefined,
        changeFeed: options.changeFeed ?? undefined,
        appName: options.appName ?? undefined,
        heartbeatSeconds: options.heartbeatSeconds ?? undefined,
        fleetReports: options.fleetReports ?? undefined,
        sdkVersion: version,
      }),
    ).then((client) => {
      if (this.#closed) {
        client.close();
        return null;
      }
      this.#native = client;
      client.listen((json) => this.#deliver(json));
      return client;
    });
    // A failed start is reported by ready() and by every call, not as an unhandled rejection.
    this.#starting.catch(() => {});
  }

  /** The environment calls serve from when no `env` is given. */
  get environment() {
    return this.#environment;
  }

  /** Resolves once the client runs and the environment's prompts are cached. */
  async ready() {
    const client = await this.#starting;
    if (!client || this.#closed) throw new ConfigurationError('this PromptOS client is closed');
    await settle(() => client.ready(this.#environment));
    return this;
  }

  #client() {
    if (this.#native) return this.#native;
    if (this.#closed) throw new ConfigurationError('this PromptOS client is closed');
    throw new ConfigurationError('the client is starting: await prompts.ready() before the first synchronous call');
  }

  /** The text prompt `name`, rendered with `variables`, from the cache. */
  get(name, variables, options) {
    const client = this.#client();
    const env = options?.env ?? this.#environment;
    try {
      return client.get(name, env, vars(variables));
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** `get`, fetching the prompt when it is not cached. */
  async fetch(name, variables, options) {
    await this.#starting;
    return settle(() => this.#client().fetch(name, options?.env ?? this.#environment, vars(variables)));
  }

  /** The chat prompt `name`: `{ messages, config, version }`, from the cache. */
  getChat(name, variables, options) {
    return chat(this.#call('chat', name, options, variables));
  }

  /** `getChat`, fetching when not cached. */
  async fetchChat(name, variables, options) {
    return chat(await this.#callAsync('chat', name, options, variables));
  }

  /** The A/B variant of text prompt `name` that `subject` is served: `{ text, version, experimentId }`. */
  getFor(name, subject, variables, options) {
    const served = this.#call(options?.chat ? 'chatFor' : 'for', name, { ...options, subject }, variables);
    return options?.chat ? chat(served) : served;
  }

  /** `getFor`, fetching when not cached. */
  async fetchFor(name, subject, variables, options) {
    const served = await this.#callAsync(options?.chat ? 'chatFor' : 'for', name, { ...options, subject }, variables);
    return options?.chat ? chat(served) : served;
  }

  /** The raw prompt live as `name` (text or messages, version, config, isStale), from the cache. */
  prompt(name, options) {
    return template(this.#call('template', name, options));
  }

  /** `prompt`, fetching when not cached. */
  async fetchPrompt(name, options) {
    return template(await this.#callAsync('template', name, options));
  }

  #call(what, name, options, variables) {
    const client = this.#client();
    const env = options?.env ?? this.#environment;
    return JSON.parse(call(() => client.call(what, name, env, options?.subject, vars(variables))));
  }

  async #callAsync(what, name, options, variables) {
    await this.#starting;
    const client = this.#client();
    const env = options?.env ?? this.#environment;
    return JSON.parse(await settle(() => client.callAsync(what, name, env, options?.subject, vars(variables))));
  }

  /** Loads every prompt live in `env` (default: the client's) in one request; resolves to how many. */
  async prefetch(env) {
    await this.#starting;
    return settle(() => this.#client().prefetch(env ?? this.#environment));
  }

  /** Calls `listener(change)` for every change pushed; returns a function that unsubscribes. */
  onChange(listener) {
    if (typeof listener !== 'function') throw new TypeError('onChange needs a function');
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #deliver(json) {
    if (this.#closed || this.#listeners.size === 0) return;
    const delivered = change(JSON.parse(json));
    for (const listener of this.#listeners) {
      try {
        const result = listener(delivered);
        if (result && typeof result.catch === 'function') result.catch((e) => process.emitWarning(e));
      } catch (e) {
        // A listener's error must not stop the others (nor the feed).
        process.emitWarning(e);
      }
    }
  }

  /** Whether what is served may be older than what is deployed (for `name`, or the client). */
  isStale(name, options) {
    const client = this.#client();
    return name === undefined ? client.isStale() : client.isStale(name, options?.env ?? this.#environment);
  }

  /** This process's id in the server's fleet view; null when reports are off or not started. */
  get instanceId() {
    return this.#native?.instanceId ?? null;
  }

  /** Stops the change feed and the reports; the process can exit. Calls afterwards throw. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    if (this.#native) {
      this.#native.close();
      this.#native = null;
    }
  }

  async [Symbol.asyncDispose]() {
    this.close();
  }
}

if (Symbol.dispose) Prompts.prototype[Symbol.dispose] = Prompts.prototype.close;

module.exports = { Prompts, version, ...errors };
delete module.exports.fromNative;
