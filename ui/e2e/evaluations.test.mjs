// Issue 26 in the browser: the Playground (fill in a version's variables, watch the
// answer stream in token by token, save the inputs as a test case with an expectation),
// the Tests tab (add a case, run an evaluation with live progress, see the gate open,
// compare two runs) and the evaluation gate on the Deployments tab (a gated deploy
// accepted with a passing run, refused without one with the cases listed, and an admin's
// override with a reason). The server gates production (PROMPTOS_GATED_ENVIRONMENTS)
// and talks to the fake OpenAI-compatible provider of fake_llm.mjs, which answers what
// follows `ANSWER:` in the prompt it is sent, so each template chooses its answer.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ADMIN, base, until, api, startServer, stopServer, withPage, adminToken, login } from "./harness.mjs";
import { startFakeLlm, gate } from "./fake_llm.mjs";

let llm;
let token;

before(async () => {
  llm = await startFakeLlm();
  await startServer({ PROMPTOS_GATED_ENVIRONMENTS: "production", PROMPTOS_LLM_COMPATIBLE_BASE_URL: llm.url,
    PROMPTOS_LLM_COMPATIBLE_MODEL: "fake-model", PROMPTOS_LLM_MAX_RETRIES: "0" });
  token = await adminToken();
});

after(async () => {
  await stopServer();
  llm?.close();
});

const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body) }, token);

/// A prompt with text versions, each `[version, template]`.
async function promptWith(name, versions) {
  await post("/prompts/", { name });
  for (const [version_string, text] of versions) await post(`/prompts/${name}/versions/`, { version_string, text });
}

async function openTab(page, prompt, tab) {
  await page.goto(`${base}/ui/prompts/${prompt}/${tab.toLowerCase()}`);
  await page.getByRole("tab", { name: tab, selected: true }).waitFor();
}

test("playground: fill the variables, see the answer stream in token by token, save it as a test case with an expectation", () =>
  withPage("playground", async (page) => {
    await promptWith("support-bot", [
      ["v1", "Reply to {{ customer }} about {{ topic }}. ANSWER: Your refund for {{ customer }} is on its way."],
      ["v2", "Be brief with {{ customer }}. ANSWER: Refund sent."],
    ]);
    await login(page, "admin", ADMIN);
    await openTab(page, "support-bot", "Playground");
    // The newest version is chosen first; try the older one.
    await until("v2 chosen", async () => (await page.getByLabel("Version", { exact: true }).inputValue()) === "v2");
    await page.getByLabel("Version", { exact: true }).selectOption("v1");

    await page.getByLabel("Variable customer").fill("Ada");
    await page.getByLabel("Variable topic").fill("refunds");
    // What the provider will be sent, rendered as the inputs change.
    await page.getByTestId("rendered-a").getByText("Reply to Ada about refunds.", { exact: false }).waitFor();

    await page.getByRole("button", { name: "Add expectation" }).click();
    await page.getByLabel("Expectation 1 kind").selectOption("contains");
    await page.getByLabel("Expectation 1 — Text the answer contains").fill("REFUND");
    await page.getByLabel("Expectation 1 ignores case").check();

    // The provider sends its first word, then holds the rest: the word shows at once.
    const held = gate();
    llm.replies.push({ gate: held.promise });
    const sentBefore = llm.requests.length;
    await page.getByRole("button", { name: "Run", exact: true }).click();
    const answer = page.getByTestId("answer-a");
    await until("the first token in the browser", async () => (await answer.innerText()) === "Your ");
    assert.equal(await page.getByTestId("run-facts-a").innerText(), "", "the run has not finished yet");
    held.open();
    await until("the whole answer", async () => (await answer.innerText()) === "Your refund for Ada is on its way.");
    await page.getByTestId("run-checks-a").getByText(/^contains: passed/).waitFor();
    await page.getByTestId("run-facts-a").getByText(/compatible · fake-model · \d+ tokens in, \d+ out · first token after/).waitFor();
    const sent = llm.requests[sentBefore];
    assert.equal(sent.stream, true, "the playground streams");
    assert.equal(sent.messages.at(-1).content, "Reply to Ada about refunds. ANSWER: Your refund for Ada is on its way.");

    // Save the inputs and the expectation as a test case, in one click.
    await page.getByLabel("Test case name").fill("refund for Ada");
    await page.getByRole("button", { name: "Save as test case" }).click();
    await page.getByTestId("saved-case").getByText("Saved as the test case “refund for Ada”.").waitFor();
    const { items } = await api("/prompts/support-bot/test-cases/", {}, token);
    assert.equal(items.length, 1);
    assert.deepEqual(items[0].variables, { customer: "Ada", topic: "refunds" });
    assert.deepEqual(items[0].expectations, [{ kind: "contains", value: "REFUND", case_insensitive: true }]);

    // Two versions side by side on the same inputs, each with its own answer.
    await page.getByLabel("Side by side with").selectOption("v2");
    await page.getByTestId("rendered-b").getByText("Be brief with Ada.", { exact: false }).waitFor();
    await page.getByRole("button", { name: "Run both" }).click();
    await until("both answers", async () => (await answer.innerText()) === "Your refund for Ada is on its way."
      && (await page.getByTestId("answer-b").innerText()) === "Refund sent.");
    await page.getByTestId("run-checks-b").getByText(/^contains: passed/).waitFor();

    // The saved case is on the Tests tab, with its expectation in words.
    await page.getByRole("link", { name: "Open the Tests tab" }).click();
    await page.getByRole("tab", { name: "Tests", selected: true }).waitFor();
    const row = page.locator('table.cases tr[data-case="refund for Ada"]');
    await row.getByText('contains "REFUND" (any case)').waitFor();
    await row.getByText("customer = Ada · topic = refunds").waitFor();
  }));

test("Tests tab: add a case, run an evaluation with live progress, see the gate open, deploy to gated production; compare a worse version's run", () =>
  withPage("evaluate-and-deploy", async (page) => {
    await promptWith("order-bot", [["v1", "Order status for {{ customer }}. ANSWER: {{ customer }}, your order has shipped."]]);
    await post("/prompts/order-bot/test-cases/", { name: "short", variables: { customer: "Bo" },
      expectations: [{ kind: "max_chars", max: 200 }] });
    await login(page, "admin", ADMIN);
    await openTab(page, "order-bot", "Tests");
    const standing = page.locator('table.standing tr[data-version="v1"] [data-testid="gate-standing"]');
    await standing.getByText("v1: has not been evaluated; production needs a passing evaluation").waitFor();

    // Add a case from the form: a variable and an expectation.
    await page.getByLabel("Case name").fill("shipped");
    await page.getByLabel("Variable customer").fill("Ada");
    await page.getByRole("button", { name: "Add expectation" }).click();
    await page.getByLabel("Expectation 1 — Text the answer contains").fill("shipped");
    await page.getByRole("button", { name: "Add the test case" }).click();
    await page.locator('table.cases tr[data-case="shipped"]').getByText('contains "shipped"').waitFor();
    await page.getByTestId("render-checks").getByText("Every test case renders against v1", { exact: false }).waitFor();

    // Run it: each case's result shows as it lands.
    const first = gate();
    const second = gate();
    llm.replies.push({ gate: first.promise }, { gate: second.promise });
    await page.getByRole("button", { name: "Run evaluation of v1" }).click();
    const progress = page.getByTestId("evaluation-progress");
    await progress.getByText("Evaluating v1: 0 of 2 cases done.").waitFor();
    first.open();
    await progress.getByText("Evaluating v1: 1 of 2 cases done.").waitFor();
    assert.equal(await page.getByTestId("live-outcomes").locator("li").count(), 1);
    second.open();
    await progress.getByText("Evaluation of v1 finished: 2 of 2 cases passed.").waitFor();
    await standing.getByText("v1: evaluation passed 2/2, may deploy to production").waitFor();

    // The result per case, each check's reason on expanding.
    const outcome = page.locator('[data-testid="run-outcomes"] li[data-case="shipped"]');
    await outcome.getByText("✓ shipped — passed").click();
    await outcome.getByText("Ada, your order has shipped.").waitFor();
    await outcome.getByText(/^contains: passed — /).waitFor();

    // A worse version: evaluated, its gate stays closed, and the comparison says what broke.
    await post("/prompts/order-bot/versions/", { version_string: "v2", text: "Status for {{ customer }}. ANSWER: Delayed." });
    await page.reload();
    await page.getByRole("button", { name: "Run evaluation of v2" }).click();
    await page.getByTestId("evaluation-progress").getByText("Evaluation of v2 finished: 1 of 2 cases passed.").waitFor();
    await page.locator('table.standing tr[data-version="v2"] [data-testid="gate-standing"]')
      .getByText(/^v2: the latest evaluation passed 1\/2 cases of v2; 100% must pass; production needs a passing evaluation$/).waitFor();
    await page.locator('[data-testid="run-outcomes"] li[data-case="shipped"]').getByText("✗ shipped — failed").waitFor();
    const compared = page.locator("table.comparison");
    await compared.locator('tr[data-case="shipped"]').getByText("broke").waitFor();
    await compared.locator('tr[data-case="short"]').getByText("passes in both").waitFor();

    // Deploy v1 to production, which the gate now lets through.
    await page.getByRole("tab", { name: "Deployments" }).click();
    await page.locator('tr[data-env="production"] .badge.gated').getByText("gated").waitFor();
    await page.getByLabel("Environment", { exact: true }).selectOption("production");
    await page.getByLabel("Version", { exact: true }).selectOption("v1");
    await page.getByTestId("deploy-hint").getByText("v1: evaluation passed 2/2, may deploy to production").waitFor();
    await page.getByRole("button", { name: "Deploy", exact: true }).click();
    await page.locator('tr[data-env="production"] .live-version', { hasText: "v1" }).waitFor();
    const live = await api("/prompts/order-bot/deployed/?environment=production", {}, token);
    assert.equal(live.version_string, "v1");
  }));

test("a deploy of an unevaluated version to gated production is refused with the cases listed; an admin overrides it with a reason", () =>
  withPage("gate-refusal", async (page) => {
    await promptWith("refund-bot", [["v1", "Refund for {{ customer }}. ANSWER: Done."]]);
    for (const name of ["greets", "names the amount"]) {
      await post("/prompts/refund-bot/test-cases/", { name, variables: { customer: "Ada" },
        expectations: [{ kind: "contains", value: "Ada" }] });
    }
    await login(page, "admin", ADMIN);
    await openTab(page, "refund-bot", "Deployments");
    await page.getByLabel("Environment", { exact: true }).selectOption("production");
    await page.getByLabel("Version", { exact: true }).selectOption("v1");
    await page.getByTestId("deploy-hint").getByText("v1: has not been evaluated; production needs a passing evaluation").waitFor();
    await page.getByRole("button", { name: "Deploy", exact: true }).click();

    const refusal = page.getByTestId("gate-refusal");
    await refusal.getByText(/has not been evaluated/).first().waitFor();
    await refusal.getByRole("heading", { name: "Cases that failed or still have to run" }).waitFor();
    assert.deepEqual(await page.getByTestId("refused-cases").locator("li").allInnerTexts(), ["greets", "names the amount"]);
    assert.equal(await page.locator('tr[data-env="production"] .live-version').innerText(), "—");

    await refusal.getByLabel("Override with a reason (recorded in the log)").fill("Hotfix, checked by hand");
    await refusal.getByRole("button", { name: "Override the gate and deploy" }).click();
    await page.locator('tr[data-env="production"] .live-version', { hasText: "v1" }).waitFor();
    await until("the refusal to go", async () => (await page.getByTestId("gate-refusal").count()) === 0);
    const { items } = await api("/events?type=VersionDeployed&prompt=refund-bot", {}, token);
    assert.ok(JSON.stringify(items).includes("Hotfix, checked by hand"), "the override's reason is in the log");
  }));
