// Loads teiten serve's pages in headless Chromium (Debian's, driven by puppeteer-core) and
// reports, as JSON on stdout, what a test asserts: console errors, failed requests, dialogs
// (an executed attacker string would open one), each chart's state and point count, the
// language switch, and how planted attacker strings show.
//
//   node tests/web/browser_check.mjs BASE PERIOD PORT EVIL_BASE [SCREENSHOT_DIR]
import puppeteer from "puppeteer-core";

const [base, period, port, evilBase, shots] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--font-render-hinting=none"],
  headless: true,
});

async function visit(url, shot) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const out = { url, console_errors: [], failed: [], dialogs: [], charts: [] };
  page.on("console", (m) => { if (m.type() === "error") out.console_errors.push(m.text()); });
  page.on("pageerror", (e) => out.console_errors.push(String(e)));
  page.on("requestfailed", (r) => out.failed.push(r.url()));
  page.on("response", (r) => { if (r.status() >= 400) out.failed.push(r.status() + " " + r.url()); });
  page.on("dialog", async (d) => { out.dialogs.push(d.message()); await d.dismiss(); });
  const t0 = Date.now();
  const res = await page.goto(url, { waitUntil: "load" });
  out.status = res.status();
  await page.waitForFunction(
    () => [...document.querySelectorAll(".chart")].every((e) => e.dataset.state),
    { timeout: 15000 }).catch(() => {});
  out.ms = Date.now() - t0;
  out.lang = await page.evaluate(() => document.documentElement.lang);
  out.title = await page.title();
  out.charts = await page.evaluate(() => [...document.querySelectorAll(".chart")].map((e) => ({
    id: e.id, state: e.dataset.state || "", points: Number(e.dataset.points || 0),
    series: Number(e.dataset.series || 0), canvas: !!e.querySelector("canvas"),
  })));
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  return { page, out };
}

// One untimed page first: the browser's own start (its renderer process, the chart library's
// first compile) is not the page's time, as for a reader whose browser is already open.
{
  const { page } = await visit(base + "/sensors", null);
  await page.close();
}
const report = { pages: [] };
const q = "period=" + encodeURIComponent(period);
const urls = [
  [base + "/?" + q, "overview-en.png"],
  [base + "/?" + q + "&lang=ja", "overview-ja.png"],
  [base + "/port?port=" + encodeURIComponent(port) + "&" + q, "port-en.png"],
  [base + "/sensors", null],
];
for (const [url, name] of urls) {
  const { page, out } = await visit(url, shots && name ? shots + "/" + name : null);
  if (url === base + "/?" + q) {
    // The first source of the port's table links to its IP page; follow it.
    const ipLink = await page.evaluate(() => {
      const a = document.querySelector("#top-ports a");
      return a ? a.href : "";
    });
    out.port_link = ipLink;
    out.region_link = await page.evaluate(() => {
      const a = document.querySelector("#top-regions a");
      return a ? a.href : "";
    });
    // The language switch keeps the state (period) and turns the page Japanese.
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("#lang-switch")]);
    out.switched = { url: page.url(), lang: await page.evaluate(() => document.documentElement.lang) };
  }
  if (url.includes("/port?")) {
    out.source_link = await page.evaluate(() => {
      const a = document.querySelector("#top-sources a");
      return a ? a.href : "";
    });
  }
  report.pages.push(out);
  await page.close();
}
// The IP page of the port's top source.
const portPage = report.pages.find((p) => p.source_link);
if (portPage) {
  const { page, out } = await visit(portPage.source_link, shots ? shots + "/ip-en.png" : null);
  out.facts = await page.evaluate(() => document.querySelector("#ip-facts")?.textContent || "");
  report.pages.push(out);
  await page.close();
}
// Attacker strings planted in the config: shown as text, never run, never markup.
if (evilBase) {
  for (const path of ["/sensors", "/?period=2019-08-21"]) {
    const { page, out } = await visit(evilBase + path, null);
    out.evil = await page.evaluate(() => ({
      text: document.body.textContent,
      scripts: document.querySelectorAll("script:not([src])").length,
      imgs: document.querySelectorAll("img").length,
    }));
    report.pages.push(out);
    await page.close();
  }
}
// The first top region's page (followed from the overview), MUSTAN in Japanese, the findings.
const overview = report.pages[0];
const more = [
  [overview.region_link, "region-en.png", "#region-ports tbody tr"],
  [base + "/mustan?lang=ja", null, "table tbody tr"],
  [base + "/findings?" + q, null, "#findings tbody tr"],
];
for (const [url, name, rows] of more) {
  if (!url) continue;
  const { page, out } = await visit(url, shots && name ? shots + "/" + name : null);
  out.rows = await page.evaluate((sel) => document.querySelectorAll(sel).length, rows);
  out.heading = await page.evaluate(() => document.querySelector("h1")?.textContent || "");
  report.pages.push(out);
  await page.close();
}
await browser.close();
process.stdout.write(JSON.stringify(report, null, 1) + "\n");
