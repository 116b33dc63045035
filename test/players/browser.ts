/**
 * Debian's Chromium driven by playwright-core (no browser download). Console errors, page errors
 * and failed requests are collected per page for the test to assert on or print.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from './media.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-artifacts');

/** Without the background-networking flags Chromium keeps calling home on a closed network: slow and noisy. */
const ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}

/** What the page exposes as window.__qoe (pages/common.js). */
export interface PageState {
  errors: string[];
  steering: Array<{ atMs: number; priority: string[] | undefined }>;
  reports: { posts: number; records: number; failed: number; statuses: Record<string, number>; events: Record<string, number>; droppedTtfb: number };
  playingAtMs: number | undefined;
  stoppedAtMs: number | undefined;
}

export interface PlayerPage {
  page: Page;
  /** console.error lines, uncaught page errors and failed requests, in order. */
  problems: string[];
  state(): Promise<PageState>;
  currentTime(): Promise<number>;
  playing(): Promise<boolean>;
  pathway(): Promise<string | undefined>;
  /** Pauses (a `sta=a` report), tears the player down and waits for the reports in flight. */
  stop(): Promise<void>;
  screenshot(name: string): Promise<string>;
}

interface QoeWindow {
  __qoe: PageState & {
    currentTime(): number;
    playing(): boolean;
    pathway(): string | undefined;
    stop(): Promise<void>;
  };
}

export async function openPlayer(browser: Browser, url: string): Promise<PlayerPage> {
  const page = await browser.newPage({ viewport: { width: 660, height: 400 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
  await page.goto(url);
  await page.waitForFunction(() => (globalThis as unknown as Partial<QoeWindow>).__qoe !== undefined, undefined, { timeout: 10_000 });
  return {
    page,
    problems,
    state: () => page.evaluate(() => {
      const s = (globalThis as unknown as QoeWindow).__qoe;
      return { errors: s.errors, steering: s.steering, reports: s.reports, playingAtMs: s.playingAtMs, stoppedAtMs: s.stoppedAtMs };
    }),
    currentTime: () => page.evaluate(() => (globalThis as unknown as QoeWindow).__qoe.currentTime()),
    playing: () => page.evaluate(() => (globalThis as unknown as QoeWindow).__qoe.playing()),
    pathway: () => page.evaluate(() => (globalThis as unknown as QoeWindow).__qoe.pathway()),
    stop: () => page.evaluate(() => (globalThis as unknown as QoeWindow).__qoe.stop()),
    async screenshot(name) {
      await mkdir(ARTIFACTS_DIR, { recursive: true });
      const path = join(ARTIFACTS_DIR, name);
      await page.screenshot({ path });
      return path;
    },
  };
}
