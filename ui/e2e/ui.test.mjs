// The UI in a real browser against a real server: Debian's headless Chromium driven by
// playwright-core, `promptos serve` on a free port with a fresh SQLite database (started
// by harness.mjs, which the other test files share). Run by
// scripts/test with the release binary (PROMPTOS_BIN) and the example chatbot
// (PROMPTOS_CHATBOT_BIN). On failure a screenshot is saved in ui/e2e/artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createServer as createHttpServer, get as httpGet } from "node:http";
import { createHmac } from "node:crypto";
import { ADMIN, artifacts, base, browser, serverDir, until, api, startServer, stopServer, watchForCrashes, withPage,
  adminToken, login } from "./harness.mjs";
import { startFakeLlm } from "./fake_llm.mjs";

let llm;

// The fake LLM (fake_llm.mjs) answers with the queued replies; these arrays are its own,
// so a test can see what PromptOS sent. A reply may wait on `gate`.
const llmRequests = [];
const llmReplies = [];

// The server (harness.mjs) takes production changes only through change requests with
// one approval (PROMPTOS_APPROVALS), so tests that deploy directly do it in staging.
// Webhooks may reach this machine over plain http (PROMPTOS_WEBHOOK_ALLOW_PRIVATE), where
// the webhook test's receiver listens.
before(async () => {
  llm = await startFakeLlm({ requests: llmRequests, replies: llmReplies, answer: () => ({ text: "An unexpected request." }) });
  await startServer({ PROMPTOS_APPROVALS: "production:1", PROMPTOS_WEBHOOK_ALLOW_PRIVATE: "true",
    PROMPTOS_LLM_COMPATIBLE_BASE_URL: llm.url,
    PROMPTOS_LLM_COMPATIBLE_MODEL: "fake-model" });
});

after(async () => {
  await stopServer();
  llm?.close();
});

/// A GET with exactly these headers, answered as sent (no decompression).
function rawGet(path, headers = {}) {
  return new Promise((ok, fail) => {
    httpGet(base + path, { headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on("error", fail);
  });
}

test("the binary started from an empty folder serves the UI built into it: log in, see the prompts", () =>
  withPage("embedded-ui", async (page) => {
    await page.goto(base + "/");
    assert.equal(new URL(page.url()).pathname, "/ui/");
    await login(page, "admin", ADMIN);
    assert.match(await page.getByTestId("whoami").innerText(), /admin \(admin\)/);
    await page.getByRole("button", { name: "Create prompt" }).waitFor();
    // Nothing but the database was written next to the binary: the UI came from inside it.
    assert.deepEqual(readdirSync(serverDir).filter((f) => !f.startsWith("promptos.db")), ["promptos"]);

    // index.html is revalidated on every load; it names its assets by content hash.
    const index = await rawGet("/ui/", { "accept-encoding": "br, gzip" });
    assert.equal(index.status, 200);
    assert.equal(index.headers["cache-control"], "no-cache");
    assert.match(index.headers["content-type"], /^text\/html/);
    const etag = index.headers.etag;
    assert.ok(etag, "index.html has an ETag");
    assert.equal((await rawGet("/ui/", { "accept-encoding": "br, gzip", "if-none-match": etag })).status, 304);
    const html = (await rawGet("/ui/")).body.toString();
    const assets = html.match(/\/ui\/assets\/[0-9a-f]{16}/)[0];

    // Hashed assets are cached for good, and sent compressed to whoever accepts it.
    const wasm = await rawGet(`${assets}/pkg/promptos_ui_bg.wasm`, { "accept-encoding": "gzip, deflate, br" });
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers["content-type"], "application/wasm");
    assert.equal(wasm.headers["content-encoding"], "br");
    assert.equal(wasm.headers["cache-control"], "public, max-age=31536000, immutable");
    const css = await rawGet(`${assets}/styles.css`, { "accept-encoding": "gzip" });
    assert.match(css.headers["content-type"], /^text\/css/);
    assert.equal(css.headers["content-encoding"], "gzip");
    assert.match(css.headers.vary, /accept-encoding/i);
    const plain = await rawGet(`${assets}/pkg/promptos_ui_bg.wasm`);
    assert.equal(plain.headers["content-encoding"], undefined);
    assert.ok(plain.body.length > wasm.body.length, "brotli made the wasm smaller");
    assert.deepEqual([...plain.body.subarray(0, 4)], [0, 0x61, 0x73, 0x6d], "uncompressed, it is WebAssembly");
    // A stale or unknown asset is a 404, not the app's HTML.
    assert.equal((await rawGet(`${assets}/nope.js`)).status, 404);
  }));

test("log in, create a prompt with inline name checking, and open it by deep link", () =>
  withPage("create-prompt", async (page) => {
    await page.goto(base + "/");
    await page.getByLabel("Username").fill("admin");
    await page.getByLabel("Password").fill("wrong password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").filter({ hasText: "Wrong username or password" }).waitFor();

    await login(page, "admin", ADMIN);
    assert.match(await page.getByTestId("whoami").innerText(), /admin \(admin\)/);

    const name = page.getByLabel("Name", { exact: true });
    await name.fill("Greeting Prompt");
    await page.getByText("Use lowercase letters").waitFor();
    assert.equal(await page.getByRole("button", { name: "Create prompt" }).isDisabled(), true);
    await name.fill("greeting");
    await page.getByLabel("Description").fill("Says hello");
    await page.getByRole("button", { name: "Create prompt" }).click();
    await page.getByRole("heading", { name: "greeting" }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/prompts/greeting");

    // A deep link survives a reload.
    await page.reload();
    await page.getByRole("heading", { name: "greeting" }).waitFor();
    await page.getByText("Says hello").waitFor();

    await page.getByRole("link", { name: "← All prompts" }).click();
    await page.getByRole("link", { name: "greeting" }).waitFor();
    // A name that exists is refused by the server, shown inline.
    await name.fill("greeting");
    await page.getByRole("button", { name: "Create prompt" }).click();
    await page.getByRole("alert").filter({ hasText: "already exists" }).waitFor();
  }));

test("the seed workflow in the browser: versions, deploy, roll back", () =>
  withPage("workflow", async (page) => {
    await login(page, "admin", ADMIN);
    await page.getByLabel("Name", { exact: true }).fill("support-agent");
    await page.getByRole("button", { name: "Create prompt" }).click();
    await page.getByRole("heading", { name: "support-agent" }).waitFor();

    // A template error shows inline, with its place, before anything is sent.
    await page.getByLabel("Version", { exact: true }).fill("v1");
    await page.getByLabel("Template").fill("Hello {{ customer_name }");
    await page.getByText(/Line 1, column \d+/).waitFor();
    assert.equal(await page.getByRole("button", { name: "Create version" }).isDisabled(), true);
    await page.getByLabel("Template").fill("Hello {{ customer_name }}, how can I help?");
    await page.getByText("Variables: customer_name").waitFor();
    await page.getByRole("button", { name: "Create version" }).click();
    await page.getByRole("cell", { name: "v1", exact: true }).waitFor();
    await page.getByLabel("Version", { exact: true }).fill("v2");
    await page.getByLabel("Template").fill("Hi {{ customer_name }}! I am {{ agent }}.");
    await page.getByRole("button", { name: "Create version" }).click();
    await page.getByRole("cell", { name: "v2", exact: true }).waitFor();

    await page.getByRole("tab", { name: "Deployments" }).click();
    const deploy = async (version) => {
      await page.getByLabel("Environment", { exact: true }).selectOption("staging");
      await page.getByLabel("Version", { exact: true }).selectOption(version);
      await page.getByRole("button", { name: "Deploy" }).click();
      await page.locator('tr[data-env="staging"] .live-version', { hasText: version }).waitFor();
    };
    await deploy("v1");
    const { access_token } = await api("/auth/token", { method: "POST", body: JSON.stringify({ username: "admin", password: ADMIN }) });
    const live = await api("/prompts/support-agent/deployed/?environment=staging", {}, access_token);
    assert.equal(live.version_string, "v1");
    assert.equal(live.prompt_text, "Hello {{ customer_name }}, how can I help?");
    await deploy("v2");

    page.once("dialog", (d) => d.accept());
    await page.getByRole("button", { name: "Roll back staging" }).click();
    await page.locator('tr[data-env="staging"] .live-version', { hasText: "v1" }).waitFor();
    // The deployment history lists every step with its actor.
    const deployments = page.locator("table.history tbody tr");
    await until("three deployment history rows", async () => (await deployments.count()) === 3);
    assert.match(await deployments.first().innerText(), /rollback\s+v1\s+v2\s+user:admin/);

    // Arrow keys move between tabs; each tab has its own address.
    await page.getByRole("tab", { name: "Deployments" }).focus();
    await page.keyboard.press("ArrowRight");
    await page.getByRole("tab", { name: "Settings", selected: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/prompts/support-agent/settings");
    await page.keyboard.press("ArrowRight");
    await page.getByRole("tab", { name: "History", selected: true }).waitFor();

    // History: every event of the prompt, newest first, each with its actor and payload.
    const events = page.locator("table.timeline tbody tr");
    const expected = ["DeploymentRolledBack", "VersionDeployed", "VersionDeployed", "VersionCreated", "VersionCreated", "PromptCreated"];
    await until("six events", async () => (await events.count()) === expected.length);
    for (const [i, type] of expected.entries()) {
      const row = events.nth(i);
      assert.equal(await row.getAttribute("data-type"), type);
      assert.match(await row.innerText(), /user:admin/);
    }
    assert.match(await events.first().innerText(), /Rolled staging back from v2 to v1/);
    await events.nth(3).getByText("Payload").click();
    await events.nth(3).getByText('"text": "Hi {{ customer_name }}! I am {{ agent }}."').waitFor();
    // Filtered by type, then exported as the auditor's file.
    await page.getByLabel("Event type").selectOption("VersionDeployed");
    await until("two deploy events", async () => (await events.count()) === 2);
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export JSON Lines" }).click()]);
    assert.equal(download.suggestedFilename(), "support-agent-history-VersionDeployed.jsonl");
    const lines = (await readFile(await download.path(), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((e) => [e.type, e.payload.version_string, e.actor]),
      [["VersionDeployed", "v1", "user:admin"], ["VersionDeployed", "v2", "user:admin"]]);
    const [csv] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
    const csvText = await readFile(await csv.path(), "utf8");
    assert.match(csvText.split("\n")[0], /^position,recorded_at,actor,type,/);
    assert.equal(csvText.trim().split("\n").length, 3);

    // Versions: read a version's text and compare two versions as a diff.
    await page.getByRole("tab", { name: "Versions" }).click();
    await page.getByRole("button", { name: "Show the text of v1" }).click();
    await page.getByTestId("version-detail").getByText("Hello {{ customer_name }}, how can I help?").waitFor();
    await page.getByLabel("From").selectOption("v1");
    await page.getByLabel("To").selectOption("v2");
    await page.getByTestId("diff-summary").getByText("v1 → v2: 1 line added, 1 removed.").waitFor();
    assert.equal(await page.locator(".diff del").innerText(), "Hello {{ customer_name }}, how can I help?");
    assert.equal(await page.locator(".diff ins").innerText(), "Hi {{ customer_name }}! I am {{ agent }}.");
    assert.ok((await page.locator(".diff ins mark").count()) > 0, "changed words are emphasised");
    // A version can seed the editor for the next one.
    await page.getByRole("button", { name: "Edit as a new version" }).click();
    assert.equal(await page.getByLabel("Template").inputValue(), "Hello {{ customer_name }}, how can I help?");
  }));

test("settings: edit the description, delete only after typing the name", () =>
  withPage("settings", async (page) => {
    const token = await adminToken();
    await api("/prompts/", { method: "POST", body: JSON.stringify({ name: "old-faq", description: "Old FAQ" }) }, token);
    await login(page, "admin", ADMIN);
    await page.goto(base + "/ui/prompts/old-faq/settings");
    const description = page.getByLabel("Description", { exact: true });
    await until("the stored description", async () => (await description.inputValue()) === "Old FAQ");
    await description.fill("Answers questions about the 2024 catalogue");
    await page.getByRole("button", { name: "Save description" }).click();
    await page.getByText("Description saved.").waitFor();
    await page.locator("p.description", { hasText: "Answers questions about the 2024 catalogue" }).waitFor();
    assert.equal((await api("/prompts/old-faq", {}, token)).description, "Answers questions about the 2024 catalogue");

    const remove = page.getByRole("button", { name: "Delete this prompt" });
    assert.equal(await remove.isDisabled(), true);
    await page.getByLabel("Type old-faq to confirm").fill("old-fa");
    assert.equal(await remove.isDisabled(), true);
    await page.getByLabel("Type old-faq to confirm").fill("old-faq");
    await remove.click();
    await page.getByRole("heading", { name: "Prompts" }).waitFor();
    const list = await api("/prompts/", {}, token);
    assert.ok(!list.items.some((p) => p.name === "old-faq"), "the prompt is gone from the list");
  }));

test("A/B test: start a three-way split, adjust its weights, promote the winner; History shows every step", () =>
  withPage("ab-test", async (page) => {
    const token = await adminToken();
    await api("/prompts/", { method: "POST", body: JSON.stringify({ name: "checkout-copy" }) }, token);
    for (const v of ["v1", "v2", "v3"]) {
      await api("/prompts/checkout-copy/versions/", { method: "POST",
        body: JSON.stringify({ version_string: v, text: `Buy now (${v}), {{ name }}` }) }, token);
    }
    await api("/deployments/", { method: "POST",
      body: JSON.stringify({ prompt_name: "checkout-copy", environment: "staging", version_string: "v1" }) }, token);
    await login(page, "admin", ADMIN);
    await page.goto(base + "/ui/prompts/checkout-copy/deployments");

    const card = page.getByRole("region", { name: "A/B test" });
    await card.getByLabel("Run the test in").selectOption("staging");
    await card.getByLabel("Variant 1 version").selectOption("v1");
    await card.getByLabel("Variant 2 version").selectOption("v2");
    await card.getByLabel("Variant 1 weight (%)").fill("60");
    await card.getByLabel("Variant 2 weight (%)").fill("30");
    await card.getByRole("button", { name: "Start A/B test" }).click();
    // The server's refusal is shown as it is, naming what is wrong.
    await card.getByRole("alert").getByText("the weights must add up to 100 (they add up to 90)").waitFor();
    // A third variant, on a row of its own.
    assert.equal(await card.getByLabel("Variant 3 version").count(), 0, "two rows to start with");
    await card.getByRole("button", { name: "Add a variant" }).click();
    await card.getByLabel("Variant 3 version").selectOption("v3");
    await card.getByLabel("Variant 3 weight (%)").fill("10");
    await card.getByRole("button", { name: "Start A/B test" }).click();
    const live = page.locator('tr[data-env="staging"] .live-version');
    await live.getByText("A/B test: v1 60 % · v2 30 % · v3 10 %").waitFor();
    const deployed = await api("/prompts/checkout-copy/deployed/?environment=staging", {}, token);
    assert.deepEqual(deployed.experiment.variants.map((v) => [v.version_string, v.weight]),
      [["v1", 60], ["v2", 30], ["v3", 10]]);
    assert.equal(deployed.prompt_text, "Buy now (v1), {{ name }}", "clients unaware of the test get the first variant");

    // Adjust the weights of the running test.
    await card.getByLabel("Weight of v1 (%)").fill("10");
    await card.getByLabel("Weight of v2 (%)").fill("90");
    await card.getByLabel("Weight of v3 (%)").fill("0");
    await card.getByRole("button", { name: "Save weights" }).click();
    await live.getByText("A/B test: v1 10 % · v2 90 % · v3 0 %").waitFor();

    // Promote the winner: v2 serves everyone, the test is over.
    await card.getByRole("button", { name: "Promote v2" }).click();
    await until("v2 alone in staging", async () => (await live.innerText()).trim() === "v2");
    const after = await api("/prompts/checkout-copy/deployed/?environment=staging", {}, token);
    assert.equal(after.version_string, "v2");
    assert.equal(after.experiment, undefined);
    await card.getByRole("button", { name: "Start A/B test" }).waitFor();

    await page.getByRole("tab", { name: "History" }).click();
    const events = page.locator("table.timeline tbody tr");
    await until("the test's events", async () => (await events.count()) >= 4);
    assert.match(await events.nth(0).innerText(), /Deployed v2 to staging \(was v1\)/);
    assert.match(await events.nth(1).innerText(), /Stopped the A\/B test in staging: promoted v2/);
    assert.match(await events.nth(2).innerText(), /Changed the A\/B test weights in staging to v1 10 % · v2 90 % · v3 0 %/);
    assert.match(await events.nth(3).innerText(), /Started an A\/B test in staging: v1 60 % · v2 30 % · v3 10 %/);
  }));

test("chat prompts: compose, reorder and remove messages, validate the config, compare message by message; tags filter the list", () =>
  withPage("chat-and-tags", async (page) => {
    const token = await adminToken();
    await api("/prompts/", { method: "POST", body: JSON.stringify({ name: "support-chat" }) }, token);
    await api("/prompts/", { method: "POST", body: JSON.stringify({ name: "untagged-notes" }) }, token);
    await login(page, "admin", ADMIN);
    await page.goto(base + "/ui/prompts/support-chat/versions");

    const form = page.getByRole("form", { name: "Create a version" });
    await form.getByLabel("Version", { exact: true }).fill("v1");
    await form.getByLabel("Kind").selectOption("chat");
    await form.getByLabel("Message 1 content").fill("You answer for ACME.");
    await form.getByRole("button", { name: "Add message" }).click();
    assert.equal(await form.getByLabel("Message 2 role").inputValue(), "user");
    await form.getByLabel("Message 2 content").fill("{{ question }}");
    await form.getByRole("button", { name: "Add message" }).click();
    await form.getByLabel("Message 3 role").selectOption("assistant");
    await form.getByLabel("Message 3 content").fill("Hello!");
    // Reorder: the assistant message moves above the user's, then goes away.
    await form.getByRole("button", { name: "Move message 3 up" }).click();
    assert.equal(await form.getByLabel("Message 2 content").inputValue(), "Hello!");
    assert.equal(await form.getByLabel("Message 2 role").inputValue(), "assistant");
    await form.getByRole("button", { name: "Remove message 2" }).click();
    assert.equal(await form.getByLabel("Message 2 content").inputValue(), "{{ question }}");

    // The config is checked as you type.
    const config = form.getByLabel("Model configuration (JSON object, optional)");
    await config.fill("[1, 2]");
    await form.getByText("Model configuration: must be a JSON object").waitFor();
    assert.equal(await form.getByRole("button", { name: "Create version" }).isDisabled(), true);
    await config.fill('{"model": "gpt-4o-mini", "temperature": 0.2}');
    await form.getByText("Variables: question.").waitFor();
    await form.getByRole("button", { name: "Create version" }).click();
    await page.locator("table.versions td.version", { hasText: "v1" }).waitFor();
    const v1 = await api("/prompts/support-chat/versions/v1", {}, token);
    assert.equal(v1.kind, "chat");
    assert.deepEqual(v1.messages.map((m) => [m.role, m.content]), [["system", "You answer for ACME."], ["user", "{{ question }}"]]);
    assert.deepEqual(v1.config, { model: "gpt-4o-mini", temperature: 0.2 });

    // A second version changes the user message and the temperature; the comparison
    // shows each message and the configuration.
    await api("/prompts/support-chat/versions/", { method: "POST", body: JSON.stringify({ version_string: "v2",
      messages: [{ role: "system", content: "You answer for ACME." }, { role: "user", content: "Customer asks: {{ question }}" }],
      config: { model: "gpt-4o-mini", temperature: 0.7 } }) }, token);
    await page.reload();
    await page.getByLabel("From", { exact: true }).selectOption("v1");
    await page.getByLabel("To", { exact: true }).selectOption("v2");
    const diff = page.getByTestId("diff");
    await diff.getByRole("heading", { name: "Message 2: user" }).waitFor();
    await diff.getByRole("heading", { name: "Model configuration" }).waitFor();
    await diff.locator("ins", { hasText: "0.7" }).waitFor();
    await diff.locator("ins", { hasText: "Customer asks:" }).waitFor();

    // The version detail shows the messages and the configuration.
    await page.getByRole("button", { name: "Show the text of v1" }).click();
    const messages = page.getByTestId("version-messages");
    await messages.getByText("You answer for ACME.").waitFor();
    assert.match(await page.getByTestId("version-config").innerText(), /"temperature": 0.2/);

    // Tags: set in Settings, shown on the prompt, and they filter the list.
    await page.getByRole("tab", { name: "Settings" }).click();
    await page.getByLabel("Tags (comma-separated, e.g. team:support, pii)").fill("team:support, pii");
    await page.getByRole("button", { name: "Save tags" }).click();
    await page.getByText("Tags saved.").waitFor();
    await page.getByTestId("prompt-tags").getByText("team:support").waitFor();
    await page.goto(base + "/ui/");
    await page.getByRole("link", { name: "untagged-notes" }).waitFor();
    await page.getByLabel("Filter prompts by tag").fill("team:support");
    await until("only the tagged prompt listed", async () =>
      (await page.locator("table.prompts tbody tr").count()) === 1
      && (await page.getByRole("link", { name: "support-chat" }).count()) === 1);
  }));

test("a second session sees a deploy without reloading; a viewer gets no deploy controls", () =>
  withPage("live", async (page) => {
    const token = await adminToken();
    await api("/users/", { method: "POST", body: JSON.stringify({ username: "vera", role: "viewer", password: "viewer-password-2" }) }, token);
    await api("/prompts/", { method: "POST", body: JSON.stringify({ name: "live-demo" }) }, token);
    for (const v of ["v1", "v2"]) {
      await api("/prompts/live-demo/versions/", { method: "POST", body: JSON.stringify({ version_string: v, text: `Text ${v}` }) }, token);
    }
    // The watcher: a viewer in a separate browser session (its own storage and connection).
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const watcher = await context.newPage();
    const watcherCrashes = watchForCrashes(watcher);
    try {
      await login(watcher, "vera", "viewer-password-2");
      await watcher.goto(base + "/ui/prompts/live-demo/deployments");
      await watcher.getByTestId("live-status").getByText("Live").waitFor();
      assert.equal(await watcher.getByRole("button", { name: "Deploy" }).count(), 0);
      await watcher.getByText("Viewers can see deployments but not change them.").waitFor();
      await watcher.goto(base + "/ui/prompts/live-demo/settings");
      await watcher.getByText("Viewers cannot delete prompts.").waitFor();
      assert.equal(await watcher.getByRole("button", { name: "Delete this prompt" }).isDisabled(), true);
      await watcher.getByRole("tab", { name: "Deployments" }).click();
      await watcher.getByTestId("live-status").getByText("Live").waitFor();

      // The deployer: an admin in this page.
      await login(page, "admin", ADMIN);
      await page.goto(base + "/ui/prompts/live-demo/deployments");
      await page.getByLabel("Environment", { exact: true }).selectOption("staging");
      await page.getByLabel("Version", { exact: true }).selectOption("v2");
      const clicked = Date.now();
      await page.getByRole("button", { name: "Deploy" }).click();
      // No reload on the watcher's side: the change feed brings it.
      await watcher.locator('tr[data-env="staging"] .live-version', { hasText: "v2" }).waitFor({ timeout: 5000 });
      console.log(`# deploy seen by the second session ${Date.now() - clicked} ms after the click`);
      await watcher.getByRole("tab", { name: "History" }).click();
      await watcher.locator("table.timeline tbody tr").first().getByText("Deployed v2 to staging").waitFor();
      watcherCrashes();
    } catch (e) {
      mkdirSync(artifacts, { recursive: true });
      await watcher.screenshot({ path: join(artifacts, "live-watcher.png"), fullPage: true }).catch(() => {});
      throw e;
    } finally {
      await context.close();
    }
  }));

test("a viewer sees prompts but no create form", () =>
  withPage("viewer", async (page) => {
    const { access_token } = await api("/auth/token", { method: "POST", body: JSON.stringify({ username: "admin", password: ADMIN }) });
    await api("/users/", { method: "POST", body: JSON.stringify({ username: "vic", role: "viewer", password: "viewer-password-1" }) }, access_token);
    await login(page, "vic", "viewer-password-1");
    await page.getByText("Viewers can read prompts").waitFor();
    assert.equal(await page.getByRole("button", { name: "Create prompt" }).count(), 0);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { name: "Log in to PromptOS" }).waitFor();
  }));

test("optimize a version with an LLM: progress, side-by-side review, edit, accept; History records the origin", () =>
  withPage("optimize", async (page) => {
    const token = await adminToken();
    await api("/prompts/", { method: "POST", body: JSON.stringify({ name: "welcome" }) }, token);
    const original = "Hello {{ customer_name }}. You can ask me about your order or about returns and I will try to help you.";
    await api("/prompts/welcome/versions/", { method: "POST", body: JSON.stringify({ version_string: "v1", text: original }) }, token);
    await login(page, "admin", ADMIN);
    await page.goto(base + "/ui/prompts/welcome/versions");
    await page.getByRole("button", { name: "Show the text of v1" }).click();
    const dialog = page.getByRole("dialog", { name: "Optimize v1 of welcome" });

    // Discard leaves nothing behind.
    llmReplies.push({ text: "Hi {{ customer_name }}, ask me about orders or returns." });
    await page.getByRole("button", { name: "Optimize v1 with an LLM" }).click();
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Run" }).click();
    await dialog.getByTestId("optimize-diff").waitFor();
    await dialog.getByRole("button", { name: "Discard" }).click();
    await dialog.waitFor({ state: "hidden" });
    assert.equal((await api("/prompts/welcome", {}, token)).versions.length, 1);

    // A run shows progress while the model works. Both answers (the first and the one
    // asked again with a reminder) drop the variable, so the suggestion comes back flagged.
    let release;
    const gate = new Promise((r) => { release = r; });
    const dropped = "Hi there. Ask me about orders or returns.";
    llmReplies.push({ text: dropped, gate }, { text: dropped });
    const sentBefore = llmRequests.length;
    await page.getByRole("button", { name: "Optimize v1 with an LLM" }).click();
    await dialog.getByLabel("Goal").selectOption("clarity_conciseness");
    await dialog.getByRole("button", { name: "Run" }).click();
    await dialog.getByText("The model is rewriting the prompt").waitFor();
    assert.equal(await dialog.getByRole("button", { name: "Run" }).isDisabled(), true);
    release();
    await dialog.getByTestId("optimize-original").getByText(original).waitFor();
    assert.equal(await dialog.getByRole("textbox", { name: /^Suggestion/ }).inputValue(), dropped);
    // What was sent is the live clarity_conciseness meta-prompt with v1's text in it.
    const sent = llmRequests[sentBefore].messages.map((m) => m.content).join("\n");
    assert.match(sent, /rewrite the following user-provided prompt to be clearer, more concise/);
    assert.ok(sent.includes(original), "the meta-prompt carries the original text");
    assert.equal(llmRequests.length, sentBefore + 2, "a suggestion that drops a variable is asked for once more");
    const check = dialog.getByTestId("optimize-check");
    assert.match(await check.innerText(), /Drops \{\{customer_name\}\}/);
    const removed = (await dialog.getByTestId("optimize-diff").locator("del").allInnerTexts()).join("");
    assert.match(removed, /Hello \{\{ customer_name/, "the diff marks the dropped words");

    // The expert mends the suggestion; the check and the diff follow the edit.
    const mended = "Hi {{ customer_name }}. Ask me about orders or returns.";
    await dialog.getByRole("textbox", { name: /^Suggestion/ }).fill(mended);
    await check.getByText("Keeps every variable: {{customer_name}}.").waitFor();
    assert.equal(await dialog.getByLabel("New version").inputValue(), "v2");
    await dialog.getByRole("button", { name: "Accept as a new version" }).click();
    await dialog.waitFor({ state: "hidden" });
    await page.getByRole("cell", { name: "v2", exact: true }).waitFor();
    const detail = page.getByTestId("version-detail");
    await detail.getByRole("heading", { name: "Version v2" }).waitFor();
    await detail.getByText(mended).waitFor();
    const origin = "LLM suggestion: goal clarity_conciseness, by compatible (fake-model) from v1, edited before it was accepted.";
    await detail.getByTestId("version-origin").getByText(origin).waitFor();
    const v2 = (await api("/prompts/welcome", {}, token)).versions.find((v) => v.version_string === "v2");
    assert.equal(v2.text, mended);
    assert.equal(v2.author, "user:admin");

    // Auditors see in History which text an LLM wrote.
    await page.getByRole("tab", { name: "History" }).click();
    const created = page.locator('table.timeline tbody tr[data-type="VersionCreated"]').first();
    await created.getByText(origin).waitFor();
    assert.match(await created.innerText(), /Created version v2/);
  }));

test("change requests: an editor asks for a production deploy; an admin reviews its diff, approves and applies it", () =>
  withPage("change-request", async (page) => {
    const token = await adminToken();
    await api("/users/", { method: "POST", body: JSON.stringify({ username: "edna", role: "editor", password: "editor-password-3" }) }, token);
    await api("/prompts/", { method: "POST", body: JSON.stringify({ name: "refund-policy" }) }, token);
    for (const [v, days, temperature] of [["v1", 14, 0.2], ["v2", 30, 0.5]]) {
      await api("/prompts/refund-policy/versions/", { method: "POST", body: JSON.stringify({ version_string: v,
        text: `Refunds within ${days} days, {{ name }}.`, config: { model: "gpt-4o-mini", temperature } }) }, token);
    }
    // v1 serves production, put there by an admin past the policy (recorded as forced).
    await api("/deployments/", { method: "POST", body: JSON.stringify({ prompt_name: "refund-policy",
      environment: "production", version_string: "v1", force: true }) }, token);
    const deployed = async () => (await api("/prompts/refund-policy/deployed/?environment=production", {}, token)).version_string;

    // The editor asks for v2 in production: the deploy form opens a change request.
    await login(page, "edna", "editor-password-3");
    await page.goto(base + "/ui/prompts/refund-policy/deployments");
    await page.locator('tr[data-env="production"] .live-version', { hasText: "v1" }).waitFor();
    await page.getByLabel("Environment", { exact: true }).selectOption("production");
    await page.getByLabel("Version", { exact: true }).selectOption("v2");
    await page.getByText("production changes through change requests (1 approval needed).").waitFor();
    assert.equal(await page.getByRole("button", { name: "Deploy", exact: true }).count(), 0);
    await page.getByRole("button", { name: "Request deploy" }).click();
    const form = page.getByRole("region", { name: "Change request" });
    assert.equal(await form.getByLabel("Title").inputValue(), "Deploy v2 of refund-policy to production");
    await form.getByLabel("Description (optional)").fill("Customers asked for a longer refund window.");
    await form.getByRole("button", { name: "Open change request" }).click();
    const link = page.getByTestId("request-opened").getByRole("link", { name: "Deploy v2 of refund-policy to production" });
    await link.waitFor();
    assert.equal(await deployed(), "v1", "a request changes nothing by itself");
    const id = (await link.getAttribute("href")).split("/").pop();

    // Her own request: she may apply or withdraw it, not approve it; applying it now is
    // refused with the server's reason.
    await link.click();
    await page.getByRole("heading", { name: "Deploy v2 of refund-policy to production" }).waitFor();
    assert.equal(new URL(page.url()).pathname, `/ui/change-requests/${id}`);
    await page.getByRole("button", { name: "Withdraw" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Approve" }).count(), 0);
    await page.getByRole("button", { name: "Apply now" }).click();
    await page.getByTestId("action-error").getByText("The change request has 0 of the 1 approvals it needs").waitFor();
    await page.getByRole("button", { name: "Log out" }).click();

    // An admin finds it in the inbox, through the top bar.
    await login(page, "admin", ADMIN);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Change requests" }).click();
    await page.getByRole("heading", { name: "Change requests" }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/change-requests");
    const row = page.locator(`tr[data-request-id="${id}"]`);
    await row.locator("ul.change-list").getByText("deploy v2 of refund-policy", { exact: true }).waitFor();
    await row.locator("td.approvals", { hasText: "0 of 1" }).waitFor();
    assert.match(await row.innerText(), /production\s+user:edna/);
    await row.getByRole("link", { name: "Deploy v2 of refund-policy to production" }).click();
    // The request's page is an address of its own: it survives a reload.
    await page.getByRole("heading", { name: "Deploy v2 of refund-policy to production" }).waitFor();
    await page.reload();

    // The diff: v1 (live) against v2 (proposed), the text and the model configuration.
    const change = page.getByRole("region", { name: "Change 1: deploy v2 of refund-policy" });
    await change.getByTestId("change-diff-summary").getByText(/^v1 \(live\) → v2 \(proposed\)/).waitFor();
    const diff = change.getByTestId("change-diff");
    assert.equal(await diff.locator("del").first().innerText(), "Refunds within 14 days, {{ name }}.");
    assert.equal(await diff.locator("ins").first().innerText(), "Refunds within 30 days, {{ name }}.");
    await diff.getByRole("heading", { name: "Model configuration" }).waitFor();
    await diff.locator("ins", { hasText: '"temperature": 0.5' }).waitFor();
    await page.getByText("Customers asked for a longer refund window.").waitFor();

    // Approve with a comment; then it is ready, and the admin applies it.
    await page.getByLabel("Comment").fill("Legal agreed to 30 days.");
    await page.getByRole("button", { name: "Approve" }).click();
    await page.getByTestId("approvals-count").getByText("1 of 1").waitFor();
    await page.getByRole("region", { name: "Approvals" }).getByText("Legal agreed to 30 days.").waitFor();
    await page.getByTestId("change-request").locator(".cr-status.ready").waitFor();
    await page.getByRole("button", { name: "Apply now" }).click();
    await page.getByTestId("change-request").locator(".cr-status.applied").waitFor();
    assert.equal(await page.getByRole("button", { name: "Apply now" }).count(), 0, "a closed request has no actions");
    const steps = page.locator("table.activity tbody tr");
    assert.deepEqual(await steps.evaluateAll((rows) => rows.map((r) => r.dataset.kind)), ["opened", "approved", "applied"]);
    assert.match(await steps.nth(0).innerText(), /user:edna/);
    assert.match(await steps.nth(1).innerText(), /user:admin\s+Approved\s+Legal agreed to 30 days\./);
    assert.equal(await deployed(), "v2");

    // The Deployments tab shows v2 live in production; History lists the request, applied.
    await change.getByRole("link", { name: "Open refund-policy" }).click();
    await page.locator('tr[data-env="production"] .live-version', { hasText: "v2" }).waitFor();
    await page.getByRole("tab", { name: "History" }).click();
    const listed = page.getByTestId("prompt-change-requests").locator(`tr[data-request-id="${id}"]`);
    await listed.locator(".cr-status", { hasText: "applied" }).waitFor();
    await listed.getByRole("link", { name: "Deploy v2 of refund-policy to production" }).waitFor();
  }));

// The Rust example chatbot (sdk/examples/chatbot.rs), built by scripts/test; it reports to
// the fleet view as the application support-chatbot.
const chatbotBinary = process.env.PROMPTOS_CHATBOT_BIN;
const chatbots = [];
after(() => { for (const c of chatbots) c.kill(); });

/// Starts one chatbot instance; its output is kept to explain a failure.
function startChatbot(key) {
  // Staging: production takes changes only through change requests in these tests.
  const env = { ...process.env, PROMPTOS_URL: base, PROMPTOS_API_KEY: key, PROMPTOS_HEARTBEAT_SECONDS: "1", PROMPTOS_ENV: "staging" };
  for (const name of ["PROMPTOS_NATS_URL", "PROMPTOS_APP_NAME", "PROMPTOS_PROMPT", "PROMPTOS_CHATBOT_ROUNDS"]) delete env[name];
  const child = spawn(chatbotBinary, [], { env, stdio: ["ignore", "ignore", "pipe"] });
  child.log = "";
  child.stderr.on("data", (d) => { child.log = (child.log + d).slice(-4000); });
  chatbots.push(child);
  return child;
}

test("fleet: two running chatbots pick up a deploy made in the UI; the rollout line and the Fleet page show it", async () => {
  assert.ok(chatbotBinary, "PROMPTOS_CHATBOT_BIN is not set: build the example (cargo build -p promptos-sdk "
    + "--example chatbot) and point PROMPTOS_CHATBOT_BIN at target/debug/examples/chatbot");
  assert.ok(existsSync(chatbotBinary), `PROMPTOS_CHATBOT_BIN=${chatbotBinary} does not exist`);
  const token = await adminToken();
  await api("/prompts/", { method: "POST", body: JSON.stringify({ name: "customer-support-agent" }) }, token);
  for (const [v, text] of [["v1", "Hello {{ customer_name }}, how can I help?"], ["v2", "Hi {{ customer_name }}! What can I do for you?"]]) {
    await api("/prompts/customer-support-agent/versions/", { method: "POST", body: JSON.stringify({ version_string: v, text }) }, token);
  }
  await api("/deployments/", { method: "POST",
    body: JSON.stringify({ prompt_name: "customer-support-agent", environment: "staging", version_string: "v1" }) }, token);
  const { key } = await api("/api-keys/", { method: "POST",
    body: JSON.stringify({ name: "support-chatbot", environments: ["staging"] }) }, token);
  const running = [startChatbot(key), startChatbot(key)];
  try {
    await withPage("fleet", async (page) => {
      await login(page, "admin", ADMIN);
      await page.goto(base + "/ui/prompts/customer-support-agent/deployments");
      const rollout = page.getByTestId("rollout-staging");
      await until("both chatbots serving v1", async () =>
        (await rollout.innerText()).includes("2 of 2 instances of support-chatbot serve v1"), 20000);

      await page.getByLabel("Environment", { exact: true }).selectOption("staging");
      await page.getByLabel("Version", { exact: true }).selectOption("v2");
      const clicked = Date.now();
      await page.getByRole("button", { name: "Deploy" }).click();
      await page.locator('tr[data-env="staging"] .live-version', { hasText: "v2" }).waitFor();
      // No reload: the line follows the instances as they apply the change.
      await until("both chatbots serving v2", async () =>
        (await rollout.innerText()).includes("2 of 2 instances of support-chatbot serve v2"), 15000);
      console.log(`# rollout line: "${(await rollout.innerText()).replace(/\s+/g, " ")}" ${Date.now() - clicked} ms after the click`);
      assert.equal(await rollout.locator(".rollout-behind").count(), 0, "no instance is left behind");

      // The Fleet page, through the top bar: one application, its two instances, both current.
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Fleet" }).click();
      await page.getByRole("heading", { name: "Fleet" }).waitFor();
      assert.equal(new URL(page.url()).pathname, "/ui/fleet");
      const app = page.getByRole("region", { name: "Application support-chatbot" });
      await app.getByText("2 instances: 2 current, 0 behind, 0 stale").waitFor();
      const rows = app.locator("table.fleet tbody tr");
      assert.equal(await rows.count(), 2);
      const pids = running.map((c) => String(c.pid)).sort();
      assert.deepEqual((await rows.locator("td:nth-child(2)").allInnerTexts()).sort(), pids);
      for (let i = 0; i < 2; i++) {
        const row = rows.nth(i);
        assert.equal(await row.locator(".status").innerText(), "current");
        assert.match(await row.innerText(), /rust \S+/);
        await row.getByText("customer-support-agent in staging → v2").waitFor();
      }

      // It refreshes by itself: a chatbot that stops is gone after three missed heartbeats.
      running[1].kill();
      await until("one instance left", async () => (await rows.count()) === 1, 15000);
      assert.equal(await rows.locator("td:nth-child(2)").innerText(), String(running[0].pid));
    });
  } catch (e) {
    for (const c of running) console.log(`# chatbot ${c.pid} said:\n${c.log}`);
    throw e;
  } finally {
    for (const c of running) c.kill();
  }
});

/// A webhook receiver on this machine: keeps every request (path, headers, body) and
/// answers 200.
async function startReceiver() {
  const requests = [];
  const server = createHttpServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    requests.push({ path: req.url, headers: req.headers, body });
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("thanks, got it");
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { server, requests, url: `http://127.0.0.1:${server.address().port}/hook` };
}

/// The `v1,` signatures of a delivery that `secret` (whsec_…) made, as the Standard
/// Webhooks specification computes them: HMAC-SHA256 over "id.timestamp.body".
function signedBy(request, secret) {
  const { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": header } = request.headers;
  const expected = createHmac("sha256", Buffer.from(secret.slice("whsec_".length), "base64"))
    .update(`${id}.${timestamp}.${request.body}`).digest("base64");
  return header.split(" ").filter((s) => s.startsWith("v1,")).map((s) => s.slice(3)).includes(expected);
}

test("webhooks: an admin adds one and sees its secret once; a test ping reaches the receiver signed with it, and the delivery log shows it delivered", async () => {
  const token = await adminToken();
  await api("/users/", { method: "POST", body: JSON.stringify({ username: "wendy", role: "editor", password: "editor-password-5" }) }, token);
  const receiver = await startReceiver();
  try {
    await withPage("webhooks", async (page) => {
      await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
      // Only admins see the page in the top bar; others are told it is for admins.
      await login(page, "wendy", "editor-password-5");
      const nav = page.getByRole("navigation", { name: "Main" });
      await nav.getByRole("link", { name: "Change requests" }).waitFor();
      assert.equal(await nav.getByRole("link", { name: "Webhooks" }).count(), 0);
      await page.goto(base + "/ui/webhooks");
      await page.getByTestId("webhooks-admins-only").waitFor();
      await page.getByRole("button", { name: "Log out" }).click();

      await login(page, "admin", ADMIN);
      await nav.getByRole("link", { name: "Webhooks" }).click();
      await page.getByRole("heading", { name: "Webhooks", exact: true }).waitFor();
      assert.equal(new URL(page.url()).pathname, "/ui/webhooks");
      const form = page.getByRole("form", { name: "Add a webhook" });
      await form.getByLabel("URL").fill(receiver.url);
      await form.getByLabel("Description (optional)").fill("Tells CI about deploys");
      // An unknown event type is caught as it is typed.
      const types = form.getByLabel("Event types (optional)");
      await types.fill("prompt.version.deployed, prompt.deployd");
      await form.getByText('"prompt.deployd" is not an event type').waitFor();
      assert.ok(await form.getByRole("button", { name: "Add webhook" }).isDisabled());
      await types.fill("prompt.version.deployed");
      await form.getByText("Known event types").click();
      await form.getByRole("button", { name: "prompt.deployment.rolled_back", exact: true }).click();
      assert.equal(await types.inputValue(), "prompt.version.deployed, prompt.deployment.rolled_back");
      await form.getByRole("button", { name: "Add webhook" }).click();

      // The secret, once, with a warning and a Copy button that fills the clipboard.
      const reveal = page.getByTestId("webhook-secret");
      await reveal.getByText("you will not see it again").waitFor();
      const secret = await reveal.getByTestId("webhook-secret-value").innerText();
      assert.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/);
      await reveal.getByRole("button", { name: "Copy" }).click();
      await reveal.getByText("Copied to the clipboard.").waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);

      const card = page.getByRole("region", { name: `Webhook ${receiver.url}` });
      await card.getByTestId("webhook-state").getByText("enabled", { exact: true }).waitFor();
      assert.equal(await card.getByTestId("webhook-filter").innerText(), "prompt.version.deployed, prompt.deployment.rolled_back");
      await card.getByText("Tells CI about deploys").waitFor();
      await card.getByTestId("deliveries-empty").waitFor();

      // After a reload the secret is nowhere: not on the page, not in what the API lists.
      await page.reload();
      await card.getByTestId("webhook-state").waitFor();
      assert.equal(await page.getByTestId("webhook-secret").count(), 0);
      assert.ok(!(await page.content()).includes(secret.slice(6)), "the secret is not on the page after a reload");
      const listed = await api("/webhooks/", {}, token);
      assert.ok(!JSON.stringify(listed).includes(secret.slice(6)), "the API does not list the secret");
      const webhookId = listed.items.find((w) => w.url === receiver.url).id;

      // Send test: the receiver gets a webhook.test ping signed with that secret.
      await card.getByRole("button", { name: "Send test" }).click();
      await card.getByTestId("webhook-notice").getByText(/^Test ping queued/).waitFor();
      await until("the receiver to get the test ping", async () => receiver.requests.length === 1);
      const [ping] = receiver.requests;
      assert.equal(ping.path, "/hook");
      assert.match(ping.body, /"type":"webhook.test"/);
      assert.equal(JSON.parse(ping.body).data.webhook_id, webhookId);
      assert.ok(signedBy(ping, secret), `signature ${ping.headers["webhook-signature"]} verifies with the secret shown`);
      assert.ok(Math.abs(Date.now() / 1000 - Number(ping.headers["webhook-timestamp"])) < 300);

      // The delivery log shows it delivered, with the receiver's answer in its attempts.
      const row = card.locator(`tr[data-delivery-id="${ping.headers["webhook-id"]}"]`);
      await card.locator(`tr[data-delivery-id="${ping.headers["webhook-id"]}"][data-status="delivered"]`).waitFor();
      assert.equal(await row.locator("td.event-type").innerText(), "webhook.test");
      assert.equal(await row.locator("td.last-answer").innerText(), "200");
      assert.equal(await row.locator("td.attempt-count").innerText(), "1");
      await row.getByRole("button", { name: "Attempts" }).click();
      const attempts = card.getByTestId("attempts");
      assert.equal(await attempts.locator("tbody tr").count(), 1);
      assert.equal(await attempts.locator("td.status-code").innerText(), "200");
      await attempts.getByText("thanks, got it").waitFor();

      // Redeliver: the same webhook-id again, a second attempt in the log.
      await row.getByRole("button", { name: "Redeliver" }).click();
      await until("the redelivery", async () => receiver.requests.length === 2);
      assert.equal(receiver.requests[1].headers["webhook-id"], ping.headers["webhook-id"]);
      await until("two attempts in the log", async () => (await row.locator("td.attempt-count").innerText()) === "2");
      await card.locator(`tr[data-delivery-id="${ping.headers["webhook-id"]}"][data-status="delivered"]`).waitFor();
      await until("the open row to list both attempts", async () => (await attempts.locator("tbody tr").count()) === 2);

      // Rotate: a new secret, shown once in the card; pings are signed with both for a day.
      await card.getByRole("button", { name: "Rotate secret" }).click();
      const rotated = card.getByTestId("webhook-secret");
      await rotated.getByText("you will not see it again").waitFor();
      const second = await rotated.getByTestId("webhook-secret-value").innerText();
      assert.match(second, /^whsec_/);
      assert.notEqual(second, secret);
      await card.getByTestId("webhook-notice").getByText(/previous secret signs deliveries too until/).waitFor();
      await card.getByRole("button", { name: "Send test" }).click();
      await until("the second test ping", async () => receiver.requests.length === 3);
      assert.ok(signedBy(receiver.requests[2], second), "signed with the new secret");
      assert.ok(signedBy(receiver.requests[2], secret), "and with the previous one, during the overlap");

      // Disable and enable again; delete after confirming.
      await card.getByRole("button", { name: "Disable" }).click();
      await card.getByTestId("webhook-state").getByText("disabled", { exact: true }).waitFor();
      assert.equal((await api(`/webhooks/${webhookId}`, {}, token)).enabled, false);
      await card.getByRole("button", { name: "Enable" }).click();
      await card.getByTestId("webhook-state").getByText("enabled", { exact: true }).waitFor();
      page.once("dialog", (d) => d.accept());
      await card.getByRole("button", { name: "Delete" }).click();
      await card.waitFor({ state: "detached" });
      assert.deepEqual((await api("/webhooks/", {}, token)).items.filter((w) => w.id === webhookId), []);
    });
  } finally {
    receiver.server.close();
  }
});
