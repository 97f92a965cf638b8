/**
 * A real browser for the page suites: Debian's `chromium` driven by playwright-core, headless
 * and offline. Screenshots go to `test-output/` (not committed).
 * @module
 */
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";

export type { Browser, Page };

/** Where Debian's `chromium` package installs the browser; `CHROMIUM` overrides it. */
export const CHROMIUM = Deno.env.get("CHROMIUM") || "/usr/bin/chromium";

/** Where each run leaves its screenshots. */
export const TEST_OUTPUT = new URL("../test-output/", import.meta.url).pathname;

/**
 * Starts the browser headless, with everything that would reach the internet turned off (the
 * machines that run the suites have none).
 */
export async function launchBrowser(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `No browser at ${CHROMIUM}: install Debian's chromium package ` +
        "(apt-get install chromium) or set CHROMIUM to a Chromium binary.",
    );
  }
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-gpu",
      "--disable-quic",
      "--disable-sync",
    ],
  });
}

/** Saves a full-page screenshot as `test-output/<name>.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await Deno.mkdir(TEST_OUTPUT, { recursive: true });
  const path = join(TEST_OUTPUT, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
