/**
 * The web UI on the cadvisor port, in Debian's Chromium driven by playwright-core: the machine panel
 * shows this machine, a busy container can be opened, and its CPU chart gains samples while we
 * watch. Screenshots (wide and phone) are kept under test-artifacts/.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { containerdUnavailableReason, repoRoot, startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { freePort, startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";
import { BUSY_POD } from "../support/stats.js";

const CHROMIUM = process.env.TSKUBELET_CHROMIUM ?? "/usr/bin/chromium";
const skip = containerdUnavailableReason() ?? (existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`);

/** Without the background-networking flags Chromium keeps calling home, which this closed network punishes. */
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

const artifacts = join(repoRoot(), "test-artifacts");

async function numberAttr(page: Page, selector: string, attr: string): Promise<number> {
  return Number((await page.getAttribute(selector, attr)) ?? "NaN");
}

/** Polls an attribute from Node (the tests are compiled without the DOM library). */
async function waitAttr(page: Page, selector: string, want: { attr: string; ok: (v: string | null) => boolean; what: string }): Promise<string | null> {
  const { attr, ok, what } = want;
  let last: string | null = null;
  await waitFor(async () => {
    last = await page.getAttribute(selector, attr, { timeout: 1000 }).catch(() => null);
    return ok(last);
  }, { timeoutMs: 20_000, intervalMs: 200, what: () => `${what} (${selector} ${attr}=${String(last)})` });
  return last;
}

/** Whether the page scrolls sideways, and how wide one element is. */
async function layout(page: Page, selector: string): Promise<{ doc: number; win: number; el: number }> {
  return page.evaluate(`({ doc: document.documentElement.scrollWidth, win: window.innerWidth, el: document.querySelector(${JSON.stringify(selector)})?.getBoundingClientRect().width ?? 0 })`);
}

describe("web UI in Chromium", { skip }, () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let base: string;
  let browser: Browser;
  const pageErrors: string[] = [];

  before(async () => {
    await mkdir(artifacts, { recursive: true });
    rt = await startContainerd({ cni: true });
    const port = await freePort();
    k = await startTskubelet(rt, { extraArgs: [`--cadvisor-port=${port}`] });
    base = `http://127.0.0.1:${port}`;
    await k.writeManifest("busy.yaml", BUSY_POD);
    await waitFor(async () => {
      const p = await k.pod("busy");
      return p?.status?.containerStatuses?.every((c) => c.state?.running) && p.status.containerStatuses.length === 2 ? p : undefined;
    }, { timeoutMs: 60_000, what: () => "the busy pod to run" });
    // playwright-core gives every launch a fresh, temporary user data directory.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await k?.cleanup();
    await rt?.stop();
  });

  const open = async (viewport: { width: number; height: number }, mobile: boolean): Promise<Page> => {
    const context = await browser.newContext({ viewport, deviceScaleFactor: mobile ? 2 : 1, isMobile: mobile, hasTouch: mobile });
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
    return page;
  };

  it("shows the machine, opens a container and watches its chart move (wide screen)", async () => {
    const page = await open({ width: 1440, height: 900 }, false);
    await page.goto(`${base}/`);
    await page.waitForSelector('#machine [data-field="num_cores"]');
    assert.equal((await page.textContent('#machine [data-field="num_cores"]'))?.trim(), String(cpus().length));
    assert.match((await page.textContent('#machine [data-field="memory_capacity"]')) ?? "", /GiB|MiB/);
    await page.waitForSelector('#machine-net .row, #machine-net p');
    await page.waitForSelector('#machine-fs .row');
    // The node's CPU chart fills up, the busy pod is listed with both containers.
    await waitAttr(page, "#node-cpu", { attr: "data-samples", ok: (v) => Number(v) >= 2, what: "the node's CPU chart to fill" });
    const link = page.locator('a.container-link[data-container="busy"]');
    await link.waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('a.container-link[data-container="web"]').count(), 1);
    await waitAttr(page, "#status", { attr: "data-state", ok: (v) => v === "live", what: "the page to be live" });
    await page.screenshot({ path: join(artifacts, "ui-wide-overview.png"), fullPage: true });

    await link.click();
    await page.waitForURL(/\/containers\/kubepods\/.+\/[0-9a-f]{64}$/);
    await page.waitForSelector("#chart-cpu");
    assert.equal((await page.textContent("#detail-title"))?.trim(), "busy");
    await waitAttr(page, "#chart-cpu", { attr: "data-samples", ok: (v) => Number(v) >= 2, what: "the container's CPU chart to have samples" });
    const before = await numberAttr(page, "#chart-cpu", "data-samples");
    const firstLast = await page.getAttribute("#chart-cpu", "data-last");
    // Watch a few seconds: more samples arrive and the newest value changes.
    await waitAttr(page, "#chart-cpu", { attr: "data-samples", ok: (v) => Number(v) > before, what: "more CPU samples" });
    await waitAttr(page, "#chart-cpu", { attr: "data-last", ok: (v) => v !== firstLast, what: "a new CPU value" });
    assert.ok((await numberAttr(page, "#chart-cpu", "data-last")) > 0, "the busy container uses CPU");
    assert.ok((await numberAttr(page, "#chart-memory", "data-last")) > 0, "and memory");
    await page.screenshot({ path: join(artifacts, "ui-wide-container.png"), fullPage: true });

    // Back to the overview through the link, as a user would.
    await page.click("nav.crumbs a");
    await page.waitForSelector("#overview:not([hidden])");
  });

  it("is usable on a phone: no sideways scrolling, charts fit, the container opens", async () => {
    const page = await open({ width: 390, height: 844 }, true);
    await page.goto(`${base}/`);
    const link = page.locator('a.container-link[data-container="busy"]');
    await link.waitFor({ timeout: 30_000 });
    await waitAttr(page, "#node-cpu", { attr: "data-samples", ok: (v) => Number(v) >= 2, what: "the node's CPU chart to fill" });
    const widths = await layout(page, "#node-cpu");
    assert.ok(widths.doc <= widths.win + 1, `no horizontal overflow (${widths.doc} > ${widths.win})`);
    assert.ok(widths.el > 200 && widths.el <= widths.win, `the chart spans the phone's width (${widths.el})`);
    await page.screenshot({ path: join(artifacts, "ui-phone-overview.png"), fullPage: true });
    await link.tap();
    await waitAttr(page, "#chart-cpu", { attr: "data-samples", ok: (v) => Number(v) >= 3, what: "the container's CPU chart on the phone" });
    const detail = await layout(page, "#chart-cpu");
    assert.ok(detail.doc <= detail.win + 1, `the detail view does not overflow either (${detail.doc} > ${detail.win})`);
    await page.screenshot({ path: join(artifacts, "ui-phone-container.png"), fullPage: true });
  });

  it("raised no errors in the page", () => {
    assert.deepEqual(pageErrors, []);
  });
});
