// Two Chromium pages on the chat example: they join by name, see each other
// join, online and leave, and what one page sends appears in the other.
// With REDIS_URL and CHAT_BIN: one room over several chat processes sharing
// a Redis pub/sub backplane (see scaledOut below).
// Then, against echo servers with each permessage-deflate memory setting
// (ECHO_URLS="label=ws://...,label=ws://..."): Chromium negotiates
// permessage-deflate, and text and binary messages of 0 B, 125 B, 64 KiB and
// 4 MiB go out and come back intact. Against echo servers whose limit is
// LIMIT bytes (LIMIT_URLS, same form): exactly LIMIT bytes pass compressed,
// random (larger on the wire) and text, and one byte more closes with 1009.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { once } from "node:events";

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
  // The chat page's own helpers: a page that joined as `name` (the page's
  // first message), a message typed in one page seen in others, a notice.
  const open = async (base, name) => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${base}?name=${encodeURIComponent(name)}`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 10_000 });
    return page;
  };
  const sees = (page, selector, text, timeout = 10_000) => page.waitForFunction(
    ([selector, text]) => [...document.querySelectorAll(selector)].some((el) => el.textContent === text),
    [selector, text],
    { timeout },
  );
  const says = async (from, text, ...to) => {
    await from.fill("#text", text);
    await from.press("#text", "Enter");
    for (const page of [from, ...to]) await sees(page, "#log li.message .text", text);
  };
  const onlineIs = (page, names) => page.waitForFunction(
    (names) => JSON.stringify([...document.querySelectorAll("#online li")].map((li) => li.textContent)) === JSON.stringify(names),
    names,
    { timeout: 10_000 },
  );

  // One process, no broker: the README's first command.
  const pageA = await open(url, "ann");
  const pageB = await open(url, "ben");
  await sees(pageA, "#log li.notice .text", "ben joined");
  await onlineIs(pageA, ["ann", "ben"]);
  await says(pageA, "hello from A: ünïcödé ✓ 🦀", pageB);
  await says(pageB, "and back from B", pageA);
  if (shot) await pageB.screenshot({ path: shot });
  const version = browser.version();
  console.log(`chromium ${version}: two pages joined one chat process, saw each other join and online, ` +
    "and a message typed in one appeared in the other, both ways");
  await pageB.context().close();
  await sees(pageA, "#log li.notice .text", "ben left");
  await onlineIs(pageA, ["ann"]);
  console.log("chromium: a page closed, the other saw it leave");
  await pageA.context().close();
  let passed = 1;

  if (process.env.REDIS_URL) {
    await scaledOut(open, sees, says, onlineIs);
    passed += 1;
  }

  // The echo and limit checks run in a page of the chat's origin that joins nothing.
  const echoPage = await (await browser.newContext()).newPage();
  await echoPage.goto(url);
  for (const [label, echoUrl] of echoes) {
  // Runs in the page: every size, text and binary, through the echo server.
  const report = await echoPage.evaluate(async (echoUrl) => {
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
    const outcome = await echoPage.evaluate(async ({ limitUrl, limit }) => {
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
  console.log(`${passed + echoes.length + limits.length} passed, 0 failed`);
} catch (e) {
  console.error(e);
  console.log("browser test failed");
  process.exitCode = 1;
} finally {
  await browser.close();
}

/// A port free now on 127.0.0.1.
async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/// Starts a chat process on `port` with the Redis backplane; resolves once it
/// listens.
async function chatProcess(port) {
  const child = spawn(process.env.CHAT_BIN, [`127.0.0.1:${port}`, "--redis", process.env.REDIS_URL], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`chat on ${port} did not start: ${out}`)), 30_000);
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("chat: open")) { clearTimeout(timer); ok(); }
    });
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`chat on ${port} exited ${code}: ${out}`)); });
  });
  child.removeAllListeners("exit");
  return { child, base: `http://127.0.0.1:${port}/`, port };
}

/// Stops a chat process the way Ctrl-C does (SIGINT), bounded.
async function stop(proc) {
  if (proc.child.exitCode !== null) return;
  const exited = once(proc.child, "exit");
  proc.child.kill("SIGINT");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), 10_000);
  const [code] = await exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`chat on ${proc.port} exited with ${code} after SIGINT`);
}

/// One room over chat processes that share Redis: pages on two processes
/// talk; a third process started late serves a page that gets the recent
/// messages, who is online, and every new message; a process stopped with
/// Ctrl-C closes its page with 1001, the others see that page leave, and the
/// page reconnects by itself (backoff) once the process is back.
async function scaledOut(open, sees, says, onlineIs) {
  const procs = [];
  try {
    const one = await chatProcess(await freePort());
    const two = await chatProcess(await freePort());
    procs.push(one, two);
    const alice = await open(one.base, "alice");
    const bob = await open(two.base, "bob");
    await sees(alice, "#log li.notice .text", "bob joined");
    await onlineIs(alice, ["alice", "bob"]);
    await onlineIs(bob, ["alice", "bob"]);
    await says(alice, "alice on process 1 → bob on process 2", bob);
    await says(bob, "bob on process 2 → alice on process 1", alice);
    console.log("chromium, Redis: pages on two chat processes saw each other online and talked, both ways");

    const three = await chatProcess(await freePort());
    procs.push(three);
    const carol = await open(three.base, "carol");
    // The recent messages, from before its process existed, and who is online.
    await sees(carol, "#log li.message .text", "alice on process 1 → bob on process 2");
    await onlineIs(carol, ["alice", "bob", "carol"]);
    await sees(alice, "#log li.notice .text", "carol joined");
    await says(alice, "news after carol joined", bob, carol);
    await says(carol, "carol on process 3, late", alice, bob);
    console.log("chromium, Redis: a third process started late served a page that got the recent " +
      "messages, who is online, and every new message");

    // Ctrl-C on process 2: bob's page sees 1001 and retries; the room sees bob leave.
    await stop(two);
    // The page's event list keeps the close (its status moves on to the
    // failed retries while the process is down).
    await bob.waitForFunction(
      () => [...document.querySelectorAll("#events li")].some((li) => li.textContent.includes("closed (1001: server shutting down)")),
      null,
      { timeout: 10_000 },
    );
    await sees(alice, "#log li.notice .text", "bob left");
    await onlineIs(alice, ["alice", "carol"]);
    const back = await chatProcess(two.port);
    procs.push(back);
    await bob.waitForSelector('body[data-ready="1"]', { timeout: 20_000 });
    await onlineIs(alice, ["alice", "bob", "carol"]);
    await says(bob, "bob is back", alice, carol);
    console.log("chromium, Redis: Ctrl-C closed a page with 1001, the room saw it leave, and the " +
      "page reconnected by itself when its process came back");
  } finally {
    for (const proc of procs) await stop(proc).catch((e) => console.error(e));
  }
}
