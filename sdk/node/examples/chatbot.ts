// examples/chatbot.mjs in TypeScript: the chatbot that prints the production prompt every
// round and, after a deploy, the new one without a restart. Also how a Next.js route
// handler would hold one client per server process (see `client()` below).
//
//   npm install /path/to/promptos/sdk/node typescript @types/node
//   npx tsc --module nodenext --target es2022 node_modules/promptos/examples/chatbot.ts --outDir out
//   PROMPTOS_API_KEY=pos_… node out/chatbot.js
import { Prompts, Unavailable, type Change } from 'promptos';

const env = process.env.PROMPTOS_ENV || 'production';
const prompt = process.env.PROMPTOS_PROMPT || 'customer-support-agent';
const rounds = process.env.PROMPTOS_CHATBOT_ROUNDS ? Number(process.env.PROMPTOS_CHATBOT_ROUNDS) : Infinity;
const interval = Number(process.env.PROMPTOS_CHATBOT_INTERVAL || 2) * 1000;

// One client per process (in Next.js: module scope of a route handler, reused across
// requests; `export async function GET() { return Response.json({ text: (await client()).get(…) }) }`).
let started: Promise<Prompts> | undefined;
function client(): Promise<Prompts> {
  started ??= new Prompts({
    url: process.env.PROMPTOS_URL || 'http://127.0.0.1:8080',
    apiKey: process.env.PROMPTOS_API_KEY || undefined,
    natsUrl: process.env.PROMPTOS_NATS_URL || undefined,
    environment: env,
    appName: process.env.PROMPTOS_APP_NAME || 'support-chatbot',
  }).ready();
  return started;
}

async function main(): Promise<void> {
  const prompts = await client();
  const off = prompts.onChange((c: Change) =>
    console.error(`[promptos] ${c.prompt} in ${c.environment} is now ${c.version ?? 'gone'}`));
  const customers = ['Alex', 'Sam', 'Kim'];
  for (let round = 0; round < rounds; round++) {
    let text: string;
    try {
      text = prompts.get(prompt, { customer_name: customers[round % customers.length] });
    } catch (e) {
      if (!(e instanceof Unavailable)) throw e;
      text = await prompts.fetch(prompt, { customer_name: customers[round % customers.length] });
    }
    console.log(`\n--- RENDERED PROMPT ---\n${text}`);
    if (round + 1 < rounds) await new Promise((r) => setTimeout(r, interval));
  }
  off();
  prompts.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
