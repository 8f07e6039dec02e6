// The UI in a real browser against a real server: Debian's headless Chromium driven by
// playwright-core, `promptos serve` on a free port with a fresh SQLite database.
// Run by scripts/test (after scripts/build-ui). On failure a screenshot is saved in
// ui/e2e/artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR || join(root, "target");
const binary = process.env.PROMPTOS_BIN || join(targetDir, "debug", "promptos");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const ADMIN = "ui-tests-admin-password";
const artifacts = join(here, "artifacts");

let server, base, browser;

function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { if (await check()) return; } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function api(path, options = {}, token) {
  const headers = { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const r = await fetch(base + path, { ...options, headers });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

before(async () => {
  assert.ok(existsSync(binary), `${binary} is missing: cargo build --bin promptos`);
  assert.ok(existsSync(join(root, "ui/dist/index.html")), "the UI is not built: scripts/build-ui");
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), "promptos-ui-"));
  server = spawn(binary, ["serve", "--bind", `127.0.0.1:${port}`], {
    env: { ...process.env, PROMPTOS_DATABASE_URL: `sqlite://${dir}/promptos.db`, PROMPTOS_ADMIN_PASSWORD: ADMIN,
      PROMPTOS_UI_DIR: join(root, "ui/dist"), PROMPTOS_LOG: "warn" },
    stdio: "ignore",
  });
  await until("the server", async () => (await fetch(base + "/readyz")).ok);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
});

/// Runs `body` with a fresh page; saves a screenshot if it fails.
async function withPage(name, body) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    await body(page);
  } catch (e) {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await page.close();
  }
}

async function login(page, username, password) {
  await page.goto(base + "/");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Prompts" }).waitFor();
}

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
      await page.getByLabel("Environment", { exact: true }).selectOption("production");
      await page.getByLabel("Version", { exact: true }).selectOption(version);
      await page.getByRole("button", { name: "Deploy" }).click();
      await page.locator('tr[data-env="production"] .live-version', { hasText: version }).waitFor();
    };
    await deploy("v1");
    const { access_token } = await api("/auth/token", { method: "POST", body: JSON.stringify({ username: "admin", password: ADMIN }) });
    const live = await api("/prompts/support-agent/deployed/?environment=production", {}, access_token);
    assert.equal(live.version_string, "v1");
    assert.equal(live.prompt_text, "Hello {{ customer_name }}, how can I help?");
    await deploy("v2");

    page.once("dialog", (d) => d.accept());
    await page.getByRole("button", { name: "Roll back production" }).click();
    await page.locator('tr[data-env="production"] .live-version', { hasText: "v1" }).waitFor();
    // The deployment history lists every step with its actor.
    const history = page.locator("table.history tbody tr");
    await until("three history rows", async () => (await history.count()) === 3);
    assert.match(await history.first().innerText(), /rollback\s+v1\s+v2\s+user:admin/);
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
