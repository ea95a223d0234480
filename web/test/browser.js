// Drives the page in headless Chromium for tests/test_web.py: node test/browser.js JOB OUT
//
// JOB (JSON, written by the Python side): {url, chromium, screenshot, cases: [{name, file,
// lines}], refused: [{name, file}], speed: [{name, file, batch1, batch128}]}.
// OUT (JSON) receives what the page did: answers per case, the message per refused model,
// load times, queries/s, the page's weight and the browser's version. Nothing is judged here:
// the Python side compares it with its own runtime's answers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import puppeteer from "puppeteer-core";

const [jobPath, outPath] = process.argv.slice(2);
const job = JSON.parse(readFileSync(jobPath, "utf8"));
const profile = mkdtempSync(join(tmpdir(), "seqadd-chromium-"));
const browser = await puppeteer.launch({
  executablePath: job.chromium,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profile}`,
  ],
});
const out = { browser: await browser.version(), console: [] };
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(300_000);
  page.on("console", (message) => {
    if (message.type() === "error") out.console.push(message.text());
  });
  page.on("pageerror", (error) => out.console.push(String(error)));

  // The first visit: what a user downloads, and how long until the page answers.
  const weight = {};
  page.on("response", async (response) => {
    const path = new URL(response.url()).pathname;
    try {
      const body = await response.buffer();
      weight[path] = { raw: body.length, gzip: gzipSync(body, { level: 9 }).length };
    } catch {
      // a redirect or an aborted request has no body
    }
  });
  await page.setViewport({ width: 820, height: 640 });
  await page.goto(job.url, { waitUntil: "load" });
  const firstLoad = await page.evaluate(async () => {
    await window.seqadd.ready;
    return {
      readyMs: performance.now(),
      ortVersion: window.seqadd.ortVersion,
      crossOriginIsolated: window.seqadd.crossOriginIsolated,
    };
  });
  out.firstLoad = firstLoad;
  out.weight = weight;
  await page.screenshot({ path: job.screenshot });
  page.removeAllListeners("response");

  out.cases = [];
  for (const { name, file, lines } of job.cases) {
    const result = await page.evaluate(
      async (name, file, lines) => {
        const { info, loadMs } = await window.seqadd.load(name, file);
        const started = performance.now();
        const answers = await window.seqadd.answer(lines);
        return { info, loadMs, answerMs: performance.now() - started, answers };
      },
      name,
      file,
      lines,
    );
    out.cases.push({ name, file, ...result });
  }

  out.refused = [];
  for (const { name, file } of job.refused) {
    const message = await page.evaluate((n, f) => window.seqadd.loadError(n, f), name, file);
    const status = await page.$eval("#status", (element) => element.textContent);
    out.refused.push({ name, file, message, status });
  }

  // Queries per second: one line per call, and 128 lines per call (one model run each).
  out.speed = [];
  for (const { name, file, batch1, batch128 } of job.speed) {
    const result = await page.evaluate(
      async (name, file, batch1, batch128) => {
        await window.seqadd.load(name, file);
        await window.seqadd.answer(batch128.slice(0, 128)); // warm up
        let started = performance.now();
        for (const line of batch1) await window.seqadd.answer([line]);
        const single = batch1.length / ((performance.now() - started) / 1000);
        started = performance.now();
        for (let at = 0; at < batch128.length; at += 128) {
          await window.seqadd.answer(batch128.slice(at, at + 128));
        }
        const batched = batch128.length / ((performance.now() - started) / 1000);
        return { batch1: single, batch128: batched };
      },
      name,
      file,
      batch1,
      batch128,
    );
    out.speed.push({ name, file, ...result });
  }
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
writeFileSync(outPath, JSON.stringify(out));
