// Two Chromium pages on the chat example: what one page sends appears in the other.
import { chromium } from "playwright-core";

const url = process.env.CHAT_URL;
const shot = process.env.CHAT_SCREENSHOT;
if (!url) throw new Error("CHAT_URL is not set");

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
  console.log("1 passed, 0 failed");
} catch (e) {
  console.error(e);
  console.log("0 passed, 1 failed");
  process.exitCode = 1;
} finally {
  await browser.close();
}
