/**
 * The cockpit (issue 15, item 3) in Debian's Chromium against a hub with the demo consortium and a year of demo
 * referrals, recognition decisions and remote readings: the administrator signs in on the page, every chart has
 * data, no request leaves the hub, the English toggle works, and a 1920×1080 screenshot
 * (`<tmpdir>/hub-cockpit.png`) is checked for drawn charts.
 */
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, waitForPage } from '../support/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { seedDemoDecisions, seedDemoRecognition } from '../../src/demo/recognition.ts';
import { seedDemoReadings } from '../../src/demo/readings.ts';
import { seedDemoReferrals } from '../../src/demo/referrals.ts';
import { authenticatedDemoHub, demoSecret } from '../support/auth.ts';
import type { TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let browser: Browser;

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('cockpit'));
  const { store, collections } = database;
  await seedDemoReferrals(store, collections, 60);
  await seedDemoRecognition(store);
  await seedDemoDecisions(store, collections);
  await seedDemoReadings(store, collections);
  browser = await launchChromium();
}, 240_000);
afterAll(async () => {
  await browser?.close();
  await hub?.stop();
  await database?.drop();
});

describe('the cockpit', () => {
  it('signs in, draws every chart from the hub alone, switches to English, and looks alive at 1920×1080', async () => {
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${hub.url}/cockpit`);
    await page.locator('#login-form').waitFor({ timeout: 30_000 });
    await page.fill('#client-id', 'consortium-admin');
    await page.fill('#client-secret', demoSecret('consortium-admin'));
    await page.press('#client-secret', 'Enter');
    await waitForPage(page, 'window.cockpitData !== undefined', 60_000);
    await expect(page.locator('header h1').innerText()).resolves.toBe('医联体数字驾驶舱');
    // Every chart has data: the series of each ECharts instance hold values.
    const series = (await page.evaluate(`Object.fromEntries(['c-referrals','c-members','c-green','c-savings','c-reading','c-queue','c-critical'].map((id) => {
      const chart = echarts.getInstanceByDom(document.getElementById(id));
      const values = chart ? chart.getOption().series.flatMap((s) => s.data.map((d) => typeof d === 'object' ? d.value : d)) : [];
      return [id, values.filter((v) => Number(v) > 0).length];
    }))`)) as Record<string, number>;
    for (const [id, nonZero] of Object.entries(series)) expect(nonZero, id).toBeGreaterThan(0);
    const kpis = await page.locator('#kpis .kpi b').allInnerTexts();
    expect(kpis).toHaveLength(6);
    expect(kpis.every((value) => value !== '—' && value !== '0')).toBe(true);
    // Nothing but the hub.
    expect(requested.filter((url) => !url.startsWith(hub.url))).toEqual([]);
    expect(pageErrors).toEqual([]);
    const picture = join(tmpdir(), 'hub-cockpit.png');
    const png = await page.screenshot({ path: picture });
    expect(statSync(picture).size).toBeGreaterThan(60_000);
    // A drawn chart is far from one colour: many distinct byte values in the picture's compressed data.
    expect(new Set(png.subarray(0, 20_000)).size).toBeGreaterThan(200);
    await page.evaluate("document.getElementById('toggle-lang').click()");
    await expect(page.locator('header h1').innerText()).resolves.toBe('Consortium cockpit');
    await page.close();
  });

  it('asks for a sign-in again when the token is refused, and says why a sign-in fails', async () => {
    const page = await browser.newPage();
    await page.goto(`${hub.url}/cockpit`);
    await page.evaluate("sessionStorage.setItem('cockpit-token', 'not-a-token')");
    await page.reload();
    await waitForPage(page, "document.getElementById('login').hidden === false", 15_000);
    await page.fill('#client-id', 'consortium-admin');
    await page.fill('#client-secret', 'wrong');
    await page.press('#client-secret', 'Enter');
    await waitForPage(page, "document.getElementById('login-error').textContent.length > 0", 15_000);
    expect(await page.evaluate("sessionStorage.getItem('cockpit-token')")).toBeNull();
    await page.close();
  });
});
