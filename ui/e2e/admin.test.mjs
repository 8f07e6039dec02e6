// The admin's pages in a real browser against a real server (harness.mjs): Users, API
// keys and the Environments matrix, and what a viewer sees of them. Production is
// protected (the default) and takes changes through change requests with one approval
// (PROMPTOS_APPROVALS), so the tests deploy there with `force`, as an admin may.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ADMIN, base, api, startServer, stopServer, withPage, adminToken, login } from "./harness.mjs";

before(() => startServer({ PROMPTOS_APPROVALS: "production:1" }));
after(() => stopServer());

const post = (path, body, token) => api(path, { method: "POST", body: JSON.stringify(body) }, token);

/// A prompt with these versions (text `<name> <version>`).
async function promptWithVersions(token, name, versions) {
  await post("/prompts/", { name }, token);
  for (const v of versions) {
    await post(`/prompts/${name}/versions/`, { version_string: v, text: `${name} ${v}` }, token);
  }
}

test("an admin adds a user, changes their role and resets their password, which then logs in; once disabled they cannot log in", () =>
  withPage("users", async (page) => {
    const token = await adminToken();
    await login(page, "admin", ADMIN);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users", exact: true }).click();
    await page.getByRole("heading", { name: "Users", exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/users");
    // Admins cannot disable themselves: their own row has no such button.
    const own = page.locator('tr[data-username="admin"]');
    await own.getByText("Your own account").waitFor();
    assert.equal(await own.getByRole("button", { name: "Disable" }).count(), 0);

    // The name is checked by the server's rule as it is typed.
    const form = page.getByRole("form", { name: "Add a user" });
    await form.getByLabel("Username").fill("Dana");
    await form.getByText("A username may contain only lowercase letters").waitFor();
    assert.ok(await form.getByRole("button", { name: "Add user" }).isDisabled());
    await form.getByLabel("Username").fill("dana");
    await form.getByLabel("Role").selectOption("viewer");
    await form.getByLabel("Password (optional)").fill("first-password-1");
    await form.getByRole("button", { name: "Add user" }).click();
    await page.getByTestId("user-added").getByText("Added dana as a viewer.").waitFor();
    const row = page.locator('tr[data-username="dana"]');
    await row.getByTestId("user-state").getByText("active", { exact: true }).waitFor();
    assert.equal(await row.getByLabel("Role of dana").inputValue(), "viewer");
    // A taken name: the server's refusal, as it says it.
    await form.getByLabel("Username").fill("dana");
    await form.getByLabel("Password (optional)").fill("");
    await form.getByRole("button", { name: "Add user" }).click();
    await form.getByTestId("user-form-error").getByText('A user named "dana" already exists').waitFor();

    await row.getByLabel("Role of dana").selectOption("editor");
    await row.getByRole("button", { name: "Change role" }).click();
    await page.getByTestId("user-notice").getByText("dana is now an editor.").waitFor();
    assert.equal((await api("/users/dana", {}, token)).role, "editor");
    assert.ok(await row.getByRole("button", { name: "Change role" }).isDisabled(), "nothing left to change");

    // Reset: a typed password is checked as it is typed; a generated one is shown once.
    await row.getByRole("button", { name: "Reset password" }).click();
    const reset = page.getByRole("form", { name: "Reset the password of dana" });
    await reset.getByLabel("New password for dana").fill("too-short");
    await reset.getByText("A password has at least 12 characters (9 now).").waitFor();
    assert.ok(await reset.getByRole("button", { name: "Set password" }).isDisabled());
    await reset.getByRole("button", { name: "Generate one" }).click();
    await page.getByTestId("user-notice").getByText("The password of dana is changed").waitFor();
    const reveal = page.getByTestId("user-password");
    await reveal.getByText("you will not see it again").waitFor();
    const password = await reveal.getByTestId("user-password-value").innerText();
    assert.ok(password.length >= 12, `a strong generated password (${password.length} characters)`);

    // The new password logs in, at another computer; the old one no longer does.
    await withPage("users-dana", async (other) => {
      await other.goto(base + "/");
      await other.getByLabel("Username").fill("dana");
      await other.getByLabel("Password").fill("first-password-1");
      await other.getByRole("button", { name: "Log in" }).click();
      await other.getByRole("alert").getByText("Wrong username or password").waitFor();
      await login(other, "dana", password);
      assert.equal(await other.getByTestId("whoami").innerText(), "dana (editor)");
      await other.getByRole("button", { name: "Log out" }).click();
      await other.getByRole("heading", { name: "Log in to PromptOS" }).waitFor();

      // Disabled (after a confirm): the row says so, and dana cannot log in any more.
      page.once("dialog", (d) => d.accept());
      await row.getByRole("button", { name: "Disable" }).click();
      await row.getByTestId("user-state").getByText("disabled", { exact: true }).waitFor();
      await row.getByText("Cannot be enabled again.").waitFor();
      assert.equal((await api("/users/dana", {}, token)).disabled, true);
      await other.getByLabel("Username").fill("dana");
      await other.getByLabel("Password").fill(password);
      await other.getByRole("button", { name: "Log in" }).click();
      await other.getByRole("alert").getByText("Wrong username or password").waitFor();
      assert.equal(new URL(other.url()).pathname, "/ui/login");
    });
  }));

test("an admin creates an API key for staging and sees it once; it reads staging only, shows in use once an application reports with it, and fails with 401 once revoked", async () => {
  const token = await adminToken();
  await promptWithVersions(token, "faq", ["v1"]);
  await post("/deployments/", { prompt_name: "faq", environment: "staging", version_string: "v1" }, token);
  await withPage("api-keys", async (page) => {
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    await login(page, "admin", ADMIN);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "API keys", exact: true }).click();
    await page.getByRole("heading", { name: "API keys", exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/api-keys");

    const form = page.getByRole("form", { name: "Create an API key" });
    await form.getByLabel("Name").fill("faq-bot");
    assert.ok(await form.getByRole("button", { name: "Create key" }).isDisabled(), "an environment is needed");
    await form.getByLabel("staging", { exact: true }).check();
    await form.getByRole("button", { name: "Create key" }).click();

    // The key, once, with a warning and a Copy button that fills the clipboard.
    const reveal = page.getByTestId("api-key-secret");
    await reveal.getByText("you will not see it again").waitFor();
    const key = await reveal.getByTestId("api-key-secret-value").innerText();
    assert.match(key, /^pos_[0-9a-f]{12}_[0-9a-f]{64}$/);
    await reveal.getByRole("button", { name: "Copy" }).click();
    await reveal.getByText("Copied to the clipboard.").waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
    const row = page.locator(`tr[data-key-id="${key.slice(4, 16)}"]`);
    assert.equal(await row.locator("td.key-name").innerText(), "faq-bot");
    assert.equal(await row.locator("td.key-environments").innerText(), "staging");
    await row.getByTestId("key-state").getByText("active", { exact: true }).waitFor();
    await row.getByTestId("key-use").getByText("No running instance reports with it.").waitFor();

    // After a reload the key is nowhere: not on the page, not in what the API lists.
    await page.reload();
    await row.getByTestId("key-state").waitFor();
    assert.equal(await page.getByTestId("api-key-secret").count(), 0);
    assert.ok(!(await page.content()).includes(key.slice(17)), "the key is not on the page after a reload");
    assert.ok(!JSON.stringify(await api("/api-keys/", {}, token)).includes(key.slice(17)), "the API does not list the key");

    // The key works from outside the browser, for staging only.
    const withKey = (path, init = {}) =>
      fetch(base + path, { ...init, headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" } });
    const live = await withKey("/prompts/faq/deployed/?environment=staging");
    assert.equal(live.status, 200);
    assert.equal((await live.json()).prompt_text, "faq v1");
    assert.equal((await withKey("/prompts/faq/deployed/?environment=production")).status, 403);

    // An application reporting with it, as the SDKs do, shows in the list without a reload.
    const now = new Date().toISOString();
    const report = await withKey("/fleet/reports", { method: "POST", body: JSON.stringify({
      instance_id: "faq-bot-instance-1", app_name: "faq-bot", host: "test-host", pid: 4242, sdk: "node",
      sdk_version: "0.0.0", started_at: now, heartbeat_seconds: 30, applied_position: 0, stale: false,
      serving: [{ prompt: "faq", environment: "staging", version_string: "v1", applied_at: now }] }) });
    assert.equal(report.status, 204);
    await row.getByTestId("key-use")
      .getByText(/^In use by 1 running instance; last report \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/).waitFor();

    // Revoked after a confirm: it stops working at once.
    page.once("dialog", (d) => d.accept());
    await row.getByRole("button", { name: "Revoke faq-bot" }).click();
    await row.getByTestId("key-state").getByText(/^revoked .+ by user:admin$/).waitFor();
    assert.equal(await row.getByRole("button", { name: "Revoke faq-bot" }).count(), 0);
    const refused = await withKey("/prompts/faq/deployed/?environment=staging");
    assert.equal(refused.status, 401);
    assert.match((await refused.json()).error.message, /revoked/);
  });
});

test("the Environments matrix shows the live version of each prompt in each environment, an A/B split, and the protected environment with its approval policy", async () => {
  const token = await adminToken();
  await promptWithVersions(token, "welcome-mail", ["v1", "v2"]);
  await promptWithVersions(token, "order-help", ["v1", "v2"]);
  await post("/deployments/", { prompt_name: "welcome-mail", environment: "staging", version_string: "v1" }, token);
  await post("/deployments/", { prompt_name: "welcome-mail", environment: "production", version_string: "v2", force: true }, token);
  await post("/deployments/", { prompt_name: "order-help", environment: "staging", version_string: "v1" }, token);
  await post("/deployments/split", { prompt_name: "order-help", environment: "staging",
    variants: [{ version_string: "v1", weight: 50 }, { version_string: "v2", weight: 50 }] }, token);
  await withPage("environments", async (page) => {
    await login(page, "admin", ADMIN);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Environments", exact: true }).click();
    await page.getByRole("heading", { name: "Environments", exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/environments");

    const cell = (prompt, env) => page.locator(`tr[data-prompt="${prompt}"] td[data-env="${env}"]`);
    await cell("welcome-mail", "staging").getByText("v1", { exact: true }).waitFor();
    assert.equal(await cell("welcome-mail", "production").innerText(), "v2");
    const split = cell("order-help", "staging");
    assert.equal(await split.getAttribute("class"), "cell split-cell");
    await split.getByRole("link", { name: "order-help in staging: A/B test v1 50 % · v2 50 %" }).waitFor();
    assert.match(await split.innerText(), /A\/B test\s+v1 50 % · v2 50 %/i);
    assert.equal(await cell("order-help", "production").innerText(), "—");
    assert.equal(await cell("order-help", "development").innerText(), "—");

    // Production is marked protected, with its change-request policy; staging is not.
    const production = page.locator('th[data-env="production"]');
    await production.getByTestId("protected").waitFor();
    assert.equal(await production.getByTestId("policy").innerText(),
      "Protected: changes need a change request approved by 1 admin.");
    const staging = page.locator('th[data-env="staging"]');
    assert.equal(await staging.getByTestId("protected").count(), 0);
    assert.equal(await staging.getByTestId("policy").innerText(), "Editors and admins deploy directly.");

    // A deploy made elsewhere shows without a reload.
    await page.getByTestId("live-status").getByText("Live").waitFor();
    await post("/deployments/", { prompt_name: "welcome-mail", environment: "staging", version_string: "v2" }, token);
    await cell("welcome-mail", "staging").getByText("v2", { exact: true }).waitFor({ timeout: 5000 });

    // A cell opens the prompt's deployments.
    await cell("welcome-mail", "production").getByRole("link").click();
    await page.getByRole("heading", { name: "welcome-mail" }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/ui/prompts/welcome-mail/deployments");
  });
});

test("a viewer sees Environments but no Users or API keys links, and opening those pages says they are for admins", async () => {
  const token = await adminToken();
  await post("/users/", { username: "vivian", role: "viewer", password: "viewer-password-9" }, token);
  await withPage("viewer-admin-pages", async (page) => {
    await login(page, "vivian", "viewer-password-9");
    const nav = page.getByRole("navigation", { name: "Main" });
    await nav.getByRole("link", { name: "Environments", exact: true }).click();
    await page.getByRole("heading", { name: "Environments", exact: true }).waitFor();
    await page.getByTestId("matrix-summary").waitFor();
    for (const link of ["Users", "API keys", "Webhooks"]) {
      assert.equal(await nav.getByRole("link", { name: link, exact: true }).count(), 0, `no ${link} link for a viewer`);
    }

    await page.goto(base + "/ui/users");
    await page.getByRole("heading", { name: "Users", exact: true }).waitFor();
    assert.equal(await page.getByTestId("admins-only").innerText(),
      "Only admins manage users and their roles. You are logged in as a viewer.");
    assert.equal(await page.getByRole("form", { name: "Add a user" }).count(), 0);

    await page.goto(base + "/ui/api-keys");
    await page.getByRole("heading", { name: "API keys", exact: true }).waitFor();
    assert.equal(await page.getByTestId("admins-only").innerText(),
      "Only admins create and revoke API keys. You are logged in as a viewer.");
  });
});
