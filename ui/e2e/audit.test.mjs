// The auditor's pages in a real browser against a real server (harness.mjs): Audit (the
// whole log, filtered, expanded, exported; the verification panel with signed
// checkpoints) and Time travel (what was live at a moment, and what changed since).
// The server signs checkpoints with a key made by `promptos keygen`; only on demand
// (PROMPTOS_CHECKPOINT_INTERVAL=1h), so the tests know which checkpoint is the latest.
// The browsers run in Kathmandu's time zone (UTC+5:45), so a moment typed in local time
// must reach the server as the right UTC time.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADMIN, base, binary, until, api, startServer, stopServer, withPage, adminToken, login } from "./harness.mjs";

const ZONE = "Asia/Kathmandu";

before(() => {
  const keys = mkdtempSync(join(tmpdir(), "promptos-keys-"));
  execFileSync(binary, ["keygen", "--out", join(keys, "signing.key")], { stdio: "ignore" });
  return startServer({ PROMPTOS_SIGNING_KEY_FILE: join(keys, "signing.key"), PROMPTOS_CHECKPOINT_INTERVAL: "1h" });
});
after(() => stopServer());

const post = (path, body, token) => api(path, { method: "POST", body: JSON.stringify(body) }, token);

/// A user with this role, and their token.
async function user(admin, username, role) {
  const password = `${username}-password-1`;
  await post("/users/", { username, role, password }, admin);
  const { access_token } = await post("/auth/token", { username, password });
  return { username, password, token: access_token };
}

/// A prompt with these versions (text `<name> <version>`).
async function promptWithVersions(token, name, versions) {
  await post("/prompts/", { name }, token);
  for (const v of versions) {
    await post(`/prompts/${name}/versions/`, { version_string: v, text: `${name} ${v}` }, token);
  }
}

const deploy = (token, prompt, version) =>
  post("/deployments/", { prompt_name: prompt, environment: "staging", version_string: version }, token);

/// The newest event in the log.
async function lastEvent(token) {
  return (await api("/events?order=desc&limit=1", {}, token)).items[0];
}

/// A stored time (`2026-12-06T03:20:00.123456Z`) as the UI shows it.
const readable = (t) => `${t.slice(0, 10)} ${t.slice(11, 19)} UTC`;

/// Runs `body` with a page in a browser context in Kathmandu's time zone; saves a
/// screenshot if it fails.
function inKathmandu(name, body) {
  return withPage(name, body, { timezoneId: ZONE });
}

/// Clicks `button` and answers the file the page offers.
async function downloaded(page, button) {
  const [file] = await Promise.all([page.waitForEvent("download"), button.click()]);
  return { name: file.suggestedFilename(), text: await readFile(await file.path(), "utf8") };
}

test("an auditor filters the log by two event types and an actor, opens an event to its payload and hashes, exports what the filters select as JSON Lines and CSV, and follows the event to its prompt", async () => {
  const admin = await adminToken();
  const auditor = await user(admin, "audrey", "viewer");
  const editor = await user(admin, "eddie", "editor");
  await promptWithVersions(admin, "audit-faq", ["v1"]);
  await deploy(admin, "audit-faq", "v1");
  await promptWithVersions(editor.token, "audit-help", ["v1", "v2"]);
  await deploy(editor.token, "audit-help", "v1");
  // What the server selects for these filters, newest first.
  const expected = (await api("/events?type=VersionCreated,VersionDeployed&actor=user:eddie&order=desc", {}, admin)).items;
  assert.deepEqual(expected.map((e) => e.type), ["VersionDeployed", "VersionCreated", "VersionCreated"]);

  await inKathmandu("audit-log", async (page) => {
    await login(page, auditor.username, auditor.password);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit", exact: true }).click();
    await page.getByRole("heading", { name: "Audit", exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/audit");
    const rows = page.locator("table.audit tbody tr[data-position]");
    const shown = async () => (await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.position))));
    // The whole log, newest first.
    const head = await lastEvent(admin);
    await until("the newest event first", async () => (await shown())[0] === head.position);

    await page.getByText("Event types: all").click();
    await page.getByLabel("VersionCreated", { exact: true }).check();
    await page.getByLabel("VersionDeployed", { exact: true }).check();
    await page.getByText("Event types: VersionCreated, VersionDeployed").waitFor();
    await page.getByLabel("Actor").fill("user:eddie");
    await until("only eddie's versions and deploys", async () =>
      JSON.stringify(await shown()) === JSON.stringify(expected.map((e) => e.position)));
    await page.getByTestId("audit-count").getByText("3 events shown.").waitFor();

    // The files hold exactly the filtered events, oldest first.
    const jsonl = await downloaded(page, page.getByRole("button", { name: "Export JSON Lines" }));
    assert.equal(jsonl.name, "promptos-events-filtered.jsonl");
    const lines = jsonl.text.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines, [...expected].reverse());
    const csv = await downloaded(page, page.getByRole("button", { name: "Export CSV" }));
    assert.equal(csv.name, "promptos-events-filtered.csv");
    const [header, ...records] = csv.text.trim().split("\n");
    assert.equal(header, "position,recorded_at,actor,type,stream_version,payload,hash,prev_hash");
    assert.deepEqual(records.map((r) => r.split(",").slice(0, 4)),
      [...expected].reverse().map((e) => [String(e.position), e.recorded_at, "user:eddie", e.type]));

    // The deploy opens to its payload and its hashes.
    const deployEvent = expected[0];
    const row = page.locator(`tr[data-position="${deployEvent.position}"]`);
    assert.match(await row.innerText(), /VersionDeployed\s+user:eddie\s+audit-help\s+staging/);
    await page.getByRole("button", { name: `Details of event ${deployEvent.position}` }).click();
    const detail = page.getByTestId("event-detail");
    assert.deepEqual(JSON.parse(await detail.getByTestId("event-payload").innerText()), deployEvent.payload);
    assert.equal(await detail.getByTestId("event-hash").innerText(), deployEvent.hash);
    assert.equal(await detail.getByTestId("event-prev-hash").innerText(), deployEvent.prev_hash);
    assert.match(deployEvent.hash, /^[0-9a-f]{64}$/);

    // Its link opens the prompt.
    await row.getByRole("link", { name: "audit-help" }).click();
    await page.getByRole("heading", { name: "audit-help" }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/prompts/audit-help");
  });
});

test("the verification panel shows the chain and read models intact and the latest signed checkpoint; an admin signs one now and the panel shows its position; a viewer has no sign button", async () => {
  const admin = await adminToken();
  const viewer = await user(admin, "vera", "viewer");
  await promptWithVersions(admin, "verified", ["v1"]);
  const signed = await post("/audit/checkpoints", {}, admin);
  assert.equal(signed.position, (await lastEvent(admin)).position);

  await inKathmandu("audit-verify-viewer", async (page) => {
    await login(page, viewer.username, viewer.password);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit", exact: true }).click();
    const panel = page.getByTestId("verification");
    await panel.getByTestId("verify-chain").getByText("Intact:").waitFor();
    assert.equal(await panel.getByTestId("verify-chain").getAttribute("data-ok"), "true");
    assert.equal(await panel.getByTestId("verify-read-models").getAttribute("data-ok"), "true");
    assert.match(await panel.getByTestId("verify-read-models").innerText(), /equal a fresh replay of the log/);
    assert.equal(await panel.getByTestId("verify-checkpoints").getAttribute("data-ok"), "true");
    assert.equal(await panel.getByTestId("checkpoint-position").innerText(), String(signed.position));
    assert.equal(await panel.getByTestId("checkpoint-time").innerText(), readable(signed.time));
    const verify = await api("/audit/verify", {}, admin);
    assert.equal(await panel.getByTestId("checkpoint-statement").innerText(), verify.checkpoints.statement);
    assert.equal(await panel.getByRole("button", { name: "Sign a checkpoint now" }).count(), 0, "no sign button for a viewer");

    // What an auditor needs to verify offline: the public key and the signed note, as files.
    const key = await downloaded(page, panel.getByRole("button", { name: "Download the public key" }));
    assert.equal(key.text, await (await fetch(`${base}/audit/public-key?format=text`,
      { headers: { Authorization: `Bearer ${viewer.token}` } })).text());
    assert.match(key.text, /^promptos\+[0-9a-f]{8}\+/);
    const note = await downloaded(page, panel.getByRole("button", { name: "Download the latest checkpoint" }));
    assert.equal(note.text, signed.note);
  });

  await inKathmandu("audit-verify-admin", async (page) => {
    await login(page, "admin", ADMIN);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit", exact: true }).click();
    const panel = page.getByTestId("verification");
    await panel.getByTestId("checkpoint-position").getByText(String(signed.position), { exact: true }).waitFor();
    // The log grows; signing now covers the new head.
    await post("/prompts/verified/versions/", { version_string: "v2", text: "verified v2" }, admin);
    const head = (await lastEvent(admin)).position;
    assert.ok(head > signed.position);
    await panel.getByRole("button", { name: "Sign a checkpoint now" }).click();
    await panel.getByTestId("verification-notice").getByText(`Signed a checkpoint at position ${head} (`).waitFor();
    await panel.getByTestId("checkpoint-position").getByText(String(head), { exact: true }).waitFor();
    const latest = await api("/audit/checkpoints/latest", {}, admin);
    assert.equal(latest.position, head);
    assert.equal(await panel.getByTestId("checkpoint-time").innerText(), readable(latest.time));
    assert.equal(await panel.getByTestId("verification-error").innerText(), "");
  });
});

test("time travel: at a noted moment both prompts were live at v1; the diff against now lists the version change, the split and the added prompt with their events; a row opens the version as it was", async () => {
  const admin = await adminToken();
  const viewer = await user(admin, "tim", "viewer");
  await promptWithVersions(admin, "tt-alpha", ["v1", "v2"]);
  await promptWithVersions(admin, "tt-beta", ["v1", "v2"]);
  await promptWithVersions(admin, "tt-gamma", ["v1"]);
  await deploy(admin, "tt-alpha", "v1");
  await deploy(admin, "tt-beta", "v1");
  // The noted moment: the next whole second after the last v1 deploy, on the server's
  // clock; what follows is recorded after it.
  const v1Deployed = Date.parse((await lastEvent(admin)).recorded_at.slice(0, 23) + "Z");
  const noted = Math.floor(v1Deployed / 1000) * 1000 + 1000;
  await until("the clock to pass the noted moment", () => Date.now() > noted + 5, 3000);
  await deploy(admin, "tt-alpha", "v2");
  await post("/deployments/split", { prompt_name: "tt-beta", environment: "staging",
    variants: [{ version_string: "v1", weight: 50 }, { version_string: "v2", weight: 50 }] }, admin);
  await deploy(admin, "tt-gamma", "v1");
  const notedIso = new Date(noted).toISOString();
  const since = (await api(`/events?from=${encodeURIComponent(notedIso)}&order=asc`, {}, admin)).items;
  assert.deepEqual(since.map((e) => [e.type, e.payload.name]),
    [["VersionDeployed", "tt-alpha"], ["ExperimentStarted", "tt-beta"], ["VersionDeployed", "tt-gamma"]]);

  await inKathmandu("time-travel", async (page) => {
    await login(page, viewer.username, viewer.password);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Time travel", exact: true }).click();
    await page.getByRole("heading", { name: "Time travel", exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/time-travel");
    await page.getByLabel("Environment").selectOption("staging");
    // The noted moment as a person in Kathmandu types it (seconds only when not zero,
    // as the field writes it).
    const local = await page.evaluate((ms) => {
      const d = new Date(ms);
      const p = (n) => String(n).padStart(2, "0");
      const seconds = d.getSeconds() ? `:${p(d.getSeconds())}` : "";
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}${seconds}`;
    }, noted);
    await page.getByLabel("Moment", { exact: true }).fill(local);
    await page.getByTestId("tt-sent").getByText(`In UTC: ${readable(notedIso)} compared with now.`).waitFor();

    // What was live then: both at v1, the third not yet.
    const live = page.getByTestId("live-table");
    await live.locator('tr[data-prompt="tt-alpha"] [data-testid="serving"]').getByText("v1", { exact: true }).waitFor();
    assert.equal(await live.locator('tr[data-prompt="tt-beta"] [data-testid="serving"]').innerText(), "v1");
    assert.equal(await live.locator('tr[data-prompt="tt-gamma"]').count(), 0);

    // What changed since, each with the events that caused it.
    const changes = page.getByTestId("changes-table");
    const change = (prompt) => changes.locator(`tr[data-prompt="${prompt}"]`);
    await change("tt-alpha").waitFor();
    const expectChange = async (prompt, kind, what, event) => {
      assert.equal(await change(prompt).getAttribute("data-change"), kind);
      assert.equal(await change(prompt).getByTestId("change-what").innerText(), what);
      assert.equal(await change(prompt).getByTestId("change-events").locator("li").count(), 1);
      assert.match(await change(prompt).getByTestId("change-events").innerText(),
        new RegExp(`^#${event.position} ${event.type} by user:admin at ${readable(event.recorded_at)}$`));
    };
    await expectChange("tt-alpha", "version_changed", "v1 → v2", since[0]);
    await expectChange("tt-beta", "split_changed", "v1 → A/B test v1 50 % · v2 50 %", since[1]);
    await expectChange("tt-gamma", "added", "now v1", since[2]);
    assert.equal(await changes.locator("tbody tr").count(), 3, "nothing else changed in staging");

    // A second moment: the same one, so nothing changed in between.
    await page.getByLabel("Compare with").selectOption("moment");
    await page.getByLabel("Second moment").fill(local);
    await page.getByTestId("changes-empty").waitFor();
    await page.getByLabel("Compare with").selectOption("now");
    await change("tt-gamma").waitFor();

    // A row opens the version as it was live then.
    await live.getByRole("button", { name: "View tt-alpha v1 as it was" }).click();
    await page.getByTestId("version-as-it-was").getByText("tt-alpha v1", { exact: true }).waitFor();
    // A change opens the prompt page (its versions; there is no address for one version).
    await change("tt-alpha").getByRole("link", { name: "Open tt-alpha v2" }).click();
    await page.getByRole("heading", { name: "tt-alpha" }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/prompts/tt-alpha");
  });
});
