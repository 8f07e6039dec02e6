// What every browser test file needs: the real server started from an empty folder,
// headless Chromium, a logged-in page, the API from Node, and waiting on a condition with
// a deadline. Each test file runs in its own process with its own server, started by
// `startServer` in its `before` hook; `base`, `browser` and `serverDir` are set then.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, existsSync, copyFileSync, chmodSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR || join(root, "target");
/// The server binary the tests start (also for its other commands, e.g. `keygen`).
export const binary = resolve(process.env.PROMPTOS_BIN || join(targetDir, "release", "promptos"));
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
/// The password of the server's first admin (`admin`).
export const ADMIN = "ui-tests-admin-password";
/// Where a failing test leaves its screenshot.
export const artifacts = join(here, "artifacts");

/// The server's address (`http://127.0.0.1:<port>`), the browser, and the folder the
/// server runs in; set by `startServer`.
export let base, browser, serverDir;
let server;

export function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

/// Waits until `check()` is true (exceptions count as false), failing after `ms`.
export async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { if (await check()) return; } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/// A JSON call to the API; throws with the status and body unless it succeeds.
export async function api(path, options = {}, token) {
  const headers = { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const r = await fetch(base + path, { ...options, headers });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

// The server is the binary a user runs (scripts/test passes the release build), copied
// into an empty folder and started there with the defaults plus `env`: no
// PROMPTOS_UI_DIR, the SQLite file ./promptos.db. The UI it serves is the one built into
// it.
export async function startServer(env = {}) {
  assert.ok(existsSync(binary), `${binary} is missing: cargo build --release --bin promptos`);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  serverDir = mkdtempSync(join(tmpdir(), "promptos-ui-"));
  copyFileSync(binary, join(serverDir, "promptos"));
  chmodSync(join(serverDir, "promptos"), 0o755);
  assert.deepEqual(readdirSync(serverDir), ["promptos"]);
  const all = { ...process.env, PROMPTOS_ADMIN_PASSWORD: ADMIN, PROMPTOS_LOG: "warn", ...env };
  delete all.PROMPTOS_UI_DIR;
  delete all.PROMPTOS_DATABASE_URL;
  server = spawn("./promptos", ["serve", "--bind", `127.0.0.1:${port}`], { cwd: serverDir, env: all, stdio: "ignore" });
  await until("the server", async () => (await fetch(base + "/readyz")).ok);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export async function stopServer() {
  await browser?.close();
  server?.kill();
}

/// Fails the test if the app panics or throws, or the page breaks its Content-Security-Policy:
/// a broken page must not pass unnoticed.
export function watchForCrashes(page) {
  const crashes = [];
  page.on("pageerror", (e) => crashes.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" && /panicked|Content Security Policy/.test(m.text())) crashes.push(m.text());
  });
  return () => assert.deepEqual(crashes, [], "the app crashed in the browser");
}

/// Runs `body` with a fresh page in a browser context of its own (its own session
/// storage: a person at their own computer), with `options` for the context (e.g. a
/// `timezoneId`); saves a screenshot if it fails.
export async function withPage(name, body, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  const noCrashes = watchForCrashes(page);
  try {
    await body(page);
    noCrashes();
  } catch (e) {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

export async function adminToken() {
  const { access_token } = await api("/auth/token", { method: "POST", body: JSON.stringify({ username: "admin", password: ADMIN }) });
  return access_token;
}

export async function login(page, username, password) {
  await page.goto(base + "/");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Prompts" }).waitFor();
}
