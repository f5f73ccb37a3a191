// Two Chromium pages on the chat example: what one page sends appears in the other.
// Then, against echo servers with each permessage-deflate memory setting
// (ECHO_URLS="label=ws://...,label=ws://..."): Chromium negotiates
// permessage-deflate, and text and binary messages of 0 B, 125 B, 64 KiB and
// 4 MiB go out and come back intact. Against echo servers whose limit is
// LIMIT bytes (LIMIT_URLS, same form): exactly LIMIT bytes pass compressed,
// random (larger on the wire) and text, and one byte more closes with 1009.
import { chromium } from "playwright-core";

const url = process.env.CHAT_URL;
const shot = process.env.CHAT_SCREENSHOT;
const targets = (list) => (list || "").split(",").filter(Boolean).map((t) => t.split("="));
const echoes = targets(process.env.ECHO_URLS);
const limits = targets(process.env.LIMIT_URLS);
const limit = Number(process.env.LIMIT || 0);
if (!url) throw new Error("CHAT_URL is not set");
if (!echoes.length) throw new Error("ECHO_URLS is not set");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  // Each context is a fresh, empty profile.
  const pageA = await (await browser.newContext()).newPage();
  const pageB = await (await browser.newContext()).newPage();
  for (const page of [pageA, pageB]) {
    await page.goto(url);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 10_000 });
  }
  const says = async (from, to, text) => {
    await from.fill("#text", text);
    await from.press("#text", "Enter");
    await to.waitForFunction(
      (t) => [...document.querySelectorAll("#log li")].some((li) => li.textContent === t),
      text,
      { timeout: 10_000 },
    );
  };
  await says(pageA, pageB, "hello from A: ünïcödé ✓ 🦀");
  await says(pageB, pageA, "and back from B");
  if (shot) await pageB.screenshot({ path: shot });
  const version = browser.version();
  console.log(`chromium ${version}: a message typed in one page appeared in the other, both ways`);

  for (const [label, echoUrl] of echoes) {
  // Runs in the page: every size, text and binary, through the echo server.
  const report = await pageA.evaluate(async (echoUrl) => {
    const ws = new WebSocket(echoUrl);
    ws.binaryType = "arraybuffer";
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error("no connection")); });
    const extensions = ws.extensions;
    const replies = [];
    let wake = null;
    ws.onmessage = (e) => { replies.push(e.data); if (wake) wake(); };
    const next = () => replies.length ? Promise.resolve(replies.shift())
      : new Promise((ok) => { wake = () => { wake = null; ok(replies.shift()); }; });
    // Text of exactly `n` UTF-8 bytes, mixing 1-, 2-, 3- and 4-byte characters;
    // binary that is half repetitive, half pseudo-random.
    const text = (n) => {
      const parts = ["a", "é", "✓", "🦀"]; let s = "", len = 0, i = 0;
      while (len < n) { const p = parts[i++ % 4]; const b = new TextEncoder().encode(p).length;
        if (len + b > n) { s += "a"; len += 1; } else { s += p; len += b; } }
      return s;
    };
    const binary = (n) => { const a = new Uint8Array(n); let x = 12345;
      for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; a[i] = i % 2 ? x >>> 24 : i & 0xff; }
      return a; };
    const results = [];
    for (const n of [0, 125, 65536, 4 * 1024 * 1024]) {
      const t = text(n);
      ws.send(t);
      const gotText = await next();
      results.push({ kind: "text", n, ok: typeof gotText === "string" && gotText === t });
      const b = binary(n);
      ws.send(b);
      const got = await next();
      const g = got instanceof ArrayBuffer ? new Uint8Array(got) : null;
      results.push({ kind: "binary", n, ok: g !== null && g.length === n && g.every((v, i) => v === b[i]) });
    }
    ws.close(1000, "done");
    return { extensions, results };
  }, echoUrl);
  if (!/^permessage-deflate\b/.test(report.extensions)) {
    throw new Error(`Chromium did not negotiate permessage-deflate: extensions = "${report.extensions}"`);
  }
  const failed = report.results.filter((r) => !r.ok);
  if (failed.length) throw new Error(`echo mismatch: ${JSON.stringify(failed)}`);
  console.log(`chromium, ${label}: negotiated "${report.extensions}"; echoed intact: ` +
    report.results.map((r) => `${r.kind} ${r.n} B`).join(", "));
  }

  for (const [label, limitUrl] of limits) {
    const outcome = await pageA.evaluate(async ({ limitUrl, limit }) => {
      const ws = new WebSocket(limitUrl);
      ws.binaryType = "arraybuffer";
      await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error("no connection")); });
      const replies = [];
      let wake = null;
      const closed = new Promise((ok) => { ws.onclose = (e) => ok(e.code); });
      ws.onmessage = (e) => { replies.push(e.data); if (wake) wake(); };
      const next = () => replies.length ? Promise.resolve(replies.shift())
        : new Promise((ok) => { wake = () => { wake = null; ok(replies.shift()); }; });
      const random = (n) => { const a = new Uint8Array(n);
        for (let i = 0; i < n; i += 65536) crypto.getRandomValues(a.subarray(i, Math.min(n, i + 65536)));
        return a; };
      const same = (got, want) => { const g = new Uint8Array(got);
        return g.length === want.length && g.every((v, i) => v === want[i]); };
      const b = random(limit);
      ws.send(b);
      const binaryOk = same(await next(), b);
      const t = "the quick brown fox jumps over the lazy dog ".repeat(limit / 44 + 1).slice(0, limit);
      ws.send(t);
      const textOk = (await next()) === t;
      ws.send(random(limit + 1));
      const code = await closed;
      return { extensions: ws.extensions, binaryOk, textOk, code };
    }, { limitUrl, limit });
    if (!outcome.binaryOk || !outcome.textOk || outcome.code !== 1009) {
      throw new Error(`limits, ${label}: ${JSON.stringify(outcome)}`);
    }
    console.log(`chromium, ${label} (${outcome.extensions}): ${limit} bytes of random data and text ` +
      `pass compressed; ${limit + 1} close with 1009`);
  }
  console.log(`${1 + echoes.length + limits.length} passed, 0 failed`);
} catch (e) {
  console.error(e);
  console.log("browser test failed");
  process.exitCode = 1;
} finally {
  await browser.close();
}
