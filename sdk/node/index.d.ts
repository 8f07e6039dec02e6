/**
 * PromptOS for Node.js: the prompt live in an environment with one call, cached, and
 * refreshed by push (NATS or Server-Sent Events) the moment someone deploys. The cache,
 * change feed, renderer and A/B bucketing are the Rust SDK's, in a native addon.
 *
 * @example
 * ```ts
 * import { Prompts } from 'promptos';
 *
 * await using prompts = new Prompts({ url: 'http://127.0.0.1:8080', apiKey: process.env.PROMPTOS_API_KEY });
 * await prompts.ready();
 * console.log(prompts.get('customer-support-agent', { customer_name: 'Alex' }));
 * ```
 * @packageDocumentation
 */

/** Options of {@link Prompts}. Only `url` is required. */
export interface PromptsOptions {
  /** The PromptOS server, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** An API key (`pos_…`) or access token, sent as `Authorization: Bearer …`. */
  apiKey?: string;
  /** The environment calls serve from when they name none (default `production`). */
  environment?: string;
  /** Receive changes on NATS (`nats://…`); without it the server's SSE feed is followed. */
  natsUrl?: string;
  /** Keep known prompts in this file and load them at start, so the application can start while the server is down. */
  snapshotPath?: string;
  /** How long an entry is trusted without hearing from the server: a safety net behind push (default 300). */
  ttlSeconds?: number;
  /** Timeout of each request to the server, in milliseconds (default 5000). */
  timeoutMs?: number;
  /** Names the application in the server's fleet view (`GET /fleet`). */
  appName?: string;
  /** `false`: render missing variables as empty text instead of throwing {@link MissingVariable} (default `true`). */
  strict?: boolean;
  /** `false`: no change feed; rely on the TTL alone (default `true`). */
  changeFeed?: boolean;
  /** How often the instance reports to the fleet view when nothing changes (default 15). */
  heartbeatSeconds?: number;
  /** `false`: do not report to the fleet view (default `true`). */
  fleetReports?: boolean;
}

/** Variables a template is rendered with: names to JSON-like values. */
export type Variables = Record<string, unknown>;

/** Which environment to serve from (default: the client's). */
export interface EnvOption {
  env?: string;
}

/** A chat message, as the OpenAI Node client and the Vercel AI SDK take it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content: string;
}

/**
 * A rendered chat prompt.
 *
 * @example
 * ```ts
 * const chat = prompts.getChat('support-chat', { question: 'Where is my order?' });
 * await openai.chat.completions.create({ ...chat.config, model: chat.config.model ?? 'gpt-4o-mini', messages: chat.messages });
 * ```
 */
export interface Chat {
  messages: ChatMessage[];
  /** The model configuration deployed with the messages (`{}` when none). */
  config: Record<string, any>;
  /** The version served. */
  version: string;
  /** With {@link Prompts.getFor} `{ chat: true }`: the experiment that chose this variant. */
  experimentId: string | null;
}

/** What {@link Prompts.getFor} served: the text and the version, to log next to the outcome. */
export interface Served {
  text: string;
  version: string;
  /** The experiment that chose it, null when none runs. */
  experimentId: string | null;
}

/** The raw prompt live in an environment, as {@link Prompts.prompt} returns it. */
export interface Template {
  name: string;
  environment: string;
  version: string;
  kind: 'text' | 'chat';
  text: string | null;
  messages: ChatMessage[] | null;
  config: Record<string, any>;
  variables: string[];
  /** The A/B experiment splitting this environment, if one runs (variants and their bucket table). */
  experiment: { experiment_id: string; variants: Array<{ version_string: string; weight: number }>; buckets: number[] } | null;
  /** What is served may be older than what is deployed. */
  isStale: boolean;
}

/** One change the server pushed: `prompt` in `environment` now serves `version` (null once deleted). */
export interface Change {
  prompt: string;
  environment: string;
  version: string | null;
  /** `VersionDeployed`, `DeploymentRolledBack`, `ExperimentStarted`, `PromptDeleted`, `IncludeChanged`, … */
  type: string;
  /** The log position: orders changes. */
  position: number;
  /** When it was recorded (RFC 3339). */
  at: string;
}

/**
 * A PromptOS client. Calls named `get…` and `prompt` answer synchronously from the cache
 * (the client keeps it filled and fresh: {@link Prompts.ready} loads the environment,
 * the change feed refreshes what a deploy changes); their `fetch…` twins return a
 * promise and ask the server when the prompt is not cached. When the server is down,
 * the last known text is served and {@link Prompts.isStale} says so.
 *
 * @example
 * ```ts
 * const prompts = new Prompts({ url: 'http://127.0.0.1:8080', apiKey: 'pos_…', natsUrl: 'nats://127.0.0.1:4222' });
 * await prompts.ready();
 * const text = prompts.get('greeting', { name: 'Alex' });
 * const off = prompts.onChange((c) => console.log(`${c.prompt} is now ${c.version}`));
 * // …
 * off();
 * prompts.close();
 * ```
 */
export class Prompts implements AsyncDisposable {
  constructor(options: PromptsOptions);
  /** The environment calls serve from when they name none. */
  readonly environment: string;
  /** This process's id in the server's fleet view; null when reports are off or not started. */
  readonly instanceId: string | null;
  /**
   * Resolves once the client runs and every prompt of its environment is cached. When
   * the server cannot be reached but a snapshot was loaded, resolves with the snapshot's
   * prompts servable (and stale); rejects with {@link Unavailable} without one, with
   * {@link Unauthorized} when the key is refused.
   *
   * @example
   * ```ts
   * const prompts = new Prompts({ url, apiKey, snapshotPath: '/var/lib/app/prompts.json' });
   * await prompts.ready();
   * ```
   */
  ready(): Promise<this>;
  /**
   * The text prompt `name` rendered with `variables`, from the cache (synchronous).
   * Throws {@link Unavailable} for a prompt not cached yet (and starts fetching it; use
   * {@link Prompts.fetch} to wait), {@link MissingVariable}, {@link WrongKind} for a chat prompt.
   *
   * @example
   * ```ts
   * const text = prompts.get('greeting', { name: 'Alex' });
   * const staging = prompts.get('greeting', { name: 'Alex' }, { env: 'staging' });
   * ```
   */
  get(name: string, variables?: Variables, options?: EnvOption): string;
  /**
   * {@link Prompts.get}, asking the server when the prompt is not cached.
   *
   * @example
   * ```ts
   * const text = await prompts.fetch('rarely-used', { name: 'Alex' });
   * ```
   */
  fetch(name: string, variables?: Variables, options?: EnvOption): Promise<string>;
  /**
   * The chat prompt `name`: every message rendered, with the model configuration.
   *
   * @example
   * ```ts
   * const { messages, config } = prompts.getChat('support-chat', { question: 'Hi' });
   * ```
   */
  getChat(name: string, variables?: Variables, options?: EnvOption): Chat;
  /** {@link Prompts.getChat}, asking the server when not cached. */
  fetchChat(name: string, variables?: Variables, options?: EnvOption): Promise<Chat>;
  /**
   * The A/B variant `subject` (a user or session id) is served, by the same stable hash
   * in every language; `{ chat: true }` for a chat prompt.
   *
   * @example
   * ```ts
   * const served = prompts.getFor('checkout-copy', 'user-4711', { name: 'Alex' });
   * log({ version: served.version, outcome });
   * ```
   */
  getFor(name: string, subject: string, variables?: Variables, options?: EnvOption & { chat?: false }): Served;
  getFor(name: string, subject: string, variables: Variables | undefined, options: EnvOption & { chat: true }): Chat;
  /** {@link Prompts.getFor}, asking the server when not cached. */
  fetchFor(name: string, subject: string, variables?: Variables, options?: EnvOption & { chat?: false }): Promise<Served>;
  fetchFor(name: string, subject: string, variables: Variables | undefined, options: EnvOption & { chat: true }): Promise<Chat>;
  /**
   * The raw prompt live as `name`, without rendering.
   *
   * @example
   * ```ts
   * const { version, text, isStale } = prompts.prompt('greeting');
   * ```
   */
  prompt(name: string, options?: EnvOption): Template;
  /** {@link Prompts.prompt}, asking the server when not cached. */
  fetchPrompt(name: string, options?: EnvOption): Promise<Template>;
  /**
   * Loads every prompt live in `env` (default: the client's) in one request; resolves to how many.
   *
   * @example
   * ```ts
   * await prompts.prefetch('staging');
   * ```
   */
  prefetch(env?: string): Promise<number>;
  /**
   * Calls `listener` on Node's thread for every change pushed, after the cache holds
   * the new version. Returns the function that unsubscribes it.
   *
   * @example
   * ```ts
   * const off = prompts.onChange((change) => console.log(change.prompt, 'is now', change.version));
   * off();
   * ```
   */
  onChange(listener: (change: Change) => void | Promise<void>): () => void;
  /**
   * Whether what is served may be older than what is deployed: for the client (the last
   * attempt to reach the server failed) or for one prompt (also: it came from the
   * snapshot, or its last revalidation failed).
   *
   * @example
   * ```ts
   * if (prompts.isStale('greeting')) console.warn('serving the last known greeting');
   * ```
   */
  isStale(name?: string, options?: EnvOption): boolean;
  /** Stops the change feed, the reports and the keeper: the process can exit. Calls afterwards throw. */
  close(): void;
  /** `await using prompts = new Prompts(…)` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The version of this package. */
export const version: string;

/** Every error of this package. */
export class PromptosError extends Error {
  /** The prompt concerned, when there is one. */
  prompt?: string;
  /** The environment concerned, when there is one. */
  environment?: string;
}
/** Nothing is deployed under that name in that environment. */
export class PromptNotFound extends PromptosError {}
/**
 * The template reads variables the caller did not pass.
 *
 * @example
 * ```ts
 * try { prompts.get('letter', { name: 'Alex' }); }
 * catch (e) { if (e instanceof MissingVariable) console.error('pass', e.variables.join(', ')); }
 * ```
 */
export class MissingVariable extends PromptosError {
  /** The names of the missing variables. */
  variables: string[];
}
/** The server could not be reached and nothing is cached for this prompt (or, synchronously: not cached yet). */
export class Unavailable extends PromptosError {}
/** The credential was refused (401) or lacks the right (403). */
export class Unauthorized extends PromptosError {}
/** A chat prompt was asked for as text, or a text prompt as chat. */
export class WrongKind extends PromptosError {
  /** The prompt's kind (`text` or `chat`). */
  kind?: string;
}
/** The template failed while rendering. */
export class RenderError extends PromptosError {}
/** The server answered something this SDK does not understand. */
export class ProtocolError extends PromptosError {}
/** The client was configured wrongly, or used after `close()` or before `ready()`. */
export class ConfigurationError extends PromptosError {}

declare const promptos: {
  Prompts: typeof Prompts;
  version: string;
  PromptosError: typeof PromptosError;
  PromptNotFound: typeof PromptNotFound;
  MissingVariable: typeof MissingVariable;
  Unavailable: typeof Unavailable;
  Unauthorized: typeof Unauthorized;
  WrongKind: typeof WrongKind;
  RenderError: typeof RenderError;
  ProtocolError: typeof ProtocolError;
  ConfigurationError: typeof ConfigurationError;
};
export default promptos;
