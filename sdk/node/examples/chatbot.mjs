// The seed's example application in Node: a chatbot that asks PromptOS for its prompt on
// every interaction and never redeploys to change it. Deploy another version while it
// runs and the next round prints the new text (pushed, not polled).
//
//   npm install /path/to/promptos/sdk/node
//   PROMPTOS_API_KEY=pos_… node node_modules/promptos/examples/chatbot.mjs
//
// Environment: PROMPTOS_URL (default http://127.0.0.1:8080), PROMPTOS_API_KEY,
// PROMPTOS_NATS_URL (optional; otherwise the server's SSE feed), PROMPTOS_ENV (default
// production), PROMPTOS_PROMPT (default customer-support-agent), PROMPTOS_CHATBOT_ROUNDS
// (default: run until stopped), PROMPTOS_CHATBOT_INTERVAL (seconds, default 2),
// PROMPTOS_APP_NAME (its name in the server's fleet view, default support-chatbot).
import { Prompts } from 'promptos';

const env = process.env.PROMPTOS_ENV || 'production';
const prompt = process.env.PROMPTOS_PROMPT || 'customer-support-agent';
const rounds = process.env.PROMPTOS_CHATBOT_ROUNDS ? Number(process.env.PROMPTOS_CHATBOT_ROUNDS) : Infinity;
const interval = Number(process.env.PROMPTOS_CHATBOT_INTERVAL || 2) * 1000;

const prompts = new Prompts({
  url: process.env.PROMPTOS_URL || 'http://127.0.0.1:8080',
  apiKey: process.env.PROMPTOS_API_KEY || undefined,
  natsUrl: process.env.PROMPTOS_NATS_URL || undefined,
  environment: env,
  appName: process.env.PROMPTOS_APP_NAME || 'support-chatbot',
});
prompts.onChange((c) => console.error(`[promptos] ${c.prompt} in ${c.environment} is now ${c.version ?? 'gone'}`));
await prompts.ready();

const customers = ['Alex', 'Sam', 'Kim'];
for (let round = 0; round < rounds; round++) {
  // Synchronous: a hash lookup plus rendering; the deploy arrived by push meanwhile.
  const text = prompts.get(prompt, { customer_name: customers[round % customers.length] });
  console.log(`\n--- RENDERED PROMPT ---\n${text}`);
  if (prompts.isStale()) console.error('[promptos] server unreachable: serving the last known prompt');
  if (round + 1 < rounds) await new Promise((r) => setTimeout(r, interval));
}
prompts.close();
