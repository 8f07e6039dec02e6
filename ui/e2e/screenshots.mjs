// Takes the README's screenshots from the real UI: starts `promptos serve` on a fresh
// database, adds sample prompts through the API, and captures the pages in headless
// Chromium. Usage: scripts/build-ui && node ui/e2e/screenshots.mjs
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const binary = process.env.PROMPTOS_BIN || join(process.env.CARGO_TARGET_DIR || join(root, "target"), "debug", "promptos");
const out = join(root, "docs/screenshots");
const port = 18000 + Math.floor(Math.random() * 1000);
const base = `http://127.0.0.1:${port}`;
const password = "screenshots-admin-password";
const dir = mkdtempSync(join(tmpdir(), "promptos-shots-"));
// A local stand-in for an OpenAI-compatible server, so the Optimize dialog has a suggestion to show.
const suggestion = "Greet {{ customer_name }} by name and introduce yourself as {{ agent_name }}.\nAsk one short question about what they need today.";
const llm = createServer(async (req, res) => {
  for await (const _ of req);
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ choices: [{ message: { role: "assistant", content: suggestion } }] }));
});
await new Promise((ok) => llm.listen(0, "127.0.0.1", ok));
const server = spawn(binary, ["serve", "--bind", `127.0.0.1:${port}`], {
  env: { ...process.env, PROMPTOS_DATABASE_URL: `sqlite://${dir}/promptos.db`, PROMPTOS_ADMIN_PASSWORD: password,
    PROMPTOS_LOG: "warn",
    PROMPTOS_LLM_COMPATIBLE_BASE_URL: `http://127.0.0.1:${llm.address().port}/v1`, PROMPTOS_LLM_COMPATIBLE_MODEL: "llama3.1" },
  stdio: "ignore",
});
try {
  for (let i = 0; ; i++) {
    try { if ((await fetch(base + "/readyz")).ok) break; } catch {}
    if (i > 200) throw new Error("server did not start");
    await new Promise((r) => setTimeout(r, 50));
  }
  const token = (await (await fetch(base + "/auth/token", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: "admin", password }) })).json()).access_token;
  const post = (path, body) => fetch(base + path, { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` } });
  const samples = [
    ["customer-support-agent", "First reply to a customer", ["Hello {{ customer_name }}, how can I help?", "Hi {{ customer_name }}! I am {{ agent_name }}. What can I do for you today?"]],
    ["order-status", "Explains where an order is", ["Order {{ order_id }} is {{ status }}."]],
    ["refund-policy", "Answers refund questions", ["Refunds are possible within {{ days }} days of delivery."]],
  ];
  for (const [name, description, texts] of samples) {
    await post("/prompts/", { name, description });
    for (const [i, text] of texts.entries()) {
      await post(`/prompts/${name}/versions/`, { version_string: `v1.${i}`, text, commit_message: i ? "Friendlier greeting" : "First draft" });
    }
    await post("/deployments/", { prompt_name: name, environment: "staging", version_string: `v1.${texts.length - 1}` });
    await post("/deployments/", { prompt_name: name, environment: "production", version_string: "v1.0" });
  }
  // A chat prompt with a model configuration and an included persona.
  await post("/prompts/", { name: "company-persona", description: "Shared by every customer-facing prompt" });
  await post("/prompts/company-persona/versions/", { version_string: "v1", text: "You are Ava, the friendly assistant of ACME Outdoor." });
  await post("/deployments/", { prompt_name: "company-persona", environment: "production", version_string: "v1" });
  await post("/prompts/", { name: "support-chat", description: "Answers customer questions in the chat widget" });
  await post("/prompts/support-chat/versions/", { version_string: "v1", config: { model: "gpt-4o-mini", temperature: 0.2 },
    messages: [{ role: "system", content: "{% include \"company-persona\" %} Answer in two sentences at most." },
      { role: "user", content: "{{ question }}" }] });
  await fetch(base + "/prompts/support-chat/tags", { method: "PUT", body: JSON.stringify({ tags: ["team:support", "customer-facing"] }),
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` } });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
  await page.goto(base + "/");
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("link", { name: "refund-policy" }).waitFor();
  await page.screenshot({ path: join(out, "prompts.png"), fullPage: true });
  await page.getByRole("link", { name: "customer-support-agent" }).click();
  await page.getByRole("cell", { name: "v1.1", exact: true }).waitFor();
  await page.getByRole("button", { name: "Show the text of v1.1" }).click();
  await page.getByTestId("diff-summary").getByText("v1.0 → v1.1").waitFor();
  await page.getByLabel("Template").fill("Hello {{ customer_name }}, thanks for waiting.\nYour order {{ order_id }");
  await page.getByText(/Line 2, column/).waitFor();
  await page.screenshot({ path: join(out, "prompt-versions.png"), fullPage: true });
  await page.setViewportSize({ width: 1200, height: 900 });
  await page.getByRole("button", { name: "Optimize v1.1 with an LLM" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByRole("button", { name: "Run" }).click();
  await dialog.getByTestId("optimize-diff").waitFor();
  await dialog.screenshot({ path: join(out, "optimize.png") });
  await dialog.getByRole("button", { name: "Discard" }).click();
  await page.setViewportSize({ width: 1200, height: 760 });
  await page.getByRole("tab", { name: "Deployments" }).click();
  await page.locator('tr[data-env="production"] .live-version', { hasText: "v1.0" }).waitFor();
  await page.screenshot({ path: join(out, "prompt-deployments.png"), fullPage: true });
  // An A/B test in staging, started from the card.
  const card = page.getByRole("region", { name: "A/B test" });
  await card.getByLabel("Run the test in").selectOption("staging");
  await card.getByLabel("Variant 1 version").selectOption("v1.1");
  await card.getByLabel("Variant 2 version").selectOption("v1.0");
  await card.getByLabel("Variant 1 weight (%)").fill("70");
  await card.getByLabel("Variant 2 weight (%)").fill("30");
  await card.getByRole("button", { name: "Start A/B test" }).click();
  await page.locator('tr[data-env="staging"] .live-version').getByText("A/B test: v1.1 70 % · v1.0 30 %").waitFor();
  await page.screenshot({ path: join(out, "ab-test.png"), fullPage: true });
  await page.getByRole("tab", { name: "Settings" }).click();
  await page.getByLabel("Type customer-support-agent to confirm").fill("customer-support");
  await page.screenshot({ path: join(out, "prompt-settings.png"), fullPage: true });
  await page.getByRole("tab", { name: "History" }).click();
  await page.locator("table.timeline tbody tr").nth(2).getByText("Payload").click();
  await page.screenshot({ path: join(out, "prompt-history.png"), fullPage: true });
  // The chat editor, started from v1 of the chat prompt.
  await page.goto(base + "/ui/prompts/support-chat/versions");
  await page.getByRole("button", { name: "Show the text of v1" }).click();
  await page.getByTestId("version-messages").waitFor();
  await page.getByRole("button", { name: "Edit as a new version" }).click();
  const form = page.getByRole("form", { name: "Create a version" });
  await form.getByLabel("Version", { exact: true }).fill("v2");
  await form.getByRole("button", { name: "Add message" }).click();
  await form.getByLabel("Message 3 content").fill("Sure! Which order number is it about?");
  await form.getByLabel("Message 3 role").selectOption("assistant");
  await page.setViewportSize({ width: 1200, height: 1400 });
  await page.locator("section.card", { has: form }).screenshot({ path: join(out, "chat-editor.png") });
  await browser.close();
  console.log(`screenshots written to ${out}`);
} finally {
  server.kill();
  llm.close();
}
