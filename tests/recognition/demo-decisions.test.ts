/**
 * The demo's year of recognition decisions (issue 13, item 8) through the real workflow and database: every
 * planned decision is recorded, and the statistics by month and by category equal what the plan says,
 * computed here independently from the plan and the catalog.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planDemoDecisions, seedDemoDecisions, seedDemoRecognition } from '../../src/demo/recognition.ts';
import { seedDemoConsortium } from '../../src/demo/seed.ts';
import { catalogCodeSystem, catalogItems } from '../../src/recognition/catalog.ts';
import { RecognitionDecisions } from '../../src/recognition/decisions.ts';
import { freshDatabase, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
const now = new Date('2026-11-20T10:00:00+08:00');

beforeAll(async () => {
  database = await freshDatabase('recognition-demo-decisions');
  await seedDemoConsortium(database.store);
  await seedDemoRecognition(database.store, now);
});
afterAll(async () => {
  await database.drop();
});

describe('the demo year of recognition decisions', () => {
  it('records every planned decision once, and the statistics show them by month and category', async () => {
    const plans = planDemoDecisions(now);
    expect(await seedDemoDecisions(database.store, database.collections, now)).toBe(plans.length);
    expect(await seedDemoDecisions(database.store, database.collections, now)).toBe(0);

    const items = catalogItems(catalogCodeSystem());
    const itemOf = (loinc: string) => items.find((item) => item.codes.includes(`http://loinc.org|${loinc}`))!;
    const expectedByMonth = new Map<string, { decisions: number; recognized: number; fees: number; repeats: number }>();
    const expectedByCategory = new Map<string, { recognized: number; fees: number }>();
    for (const plan of plans) {
      const month = new Date(plan.decidedAt.getTime() + 8 * 3600_000).toISOString().slice(0, 7);
      const item = itemOf(plan.result.code!.coding![0]!.code!);
      const row = expectedByMonth.get(month) ?? { decisions: 0, recognized: 0, fees: 0, repeats: 0 };
      row.decisions++;
      if (plan.input.accepted) {
        row.recognized++;
        row.fees += item.feeYuan;
        const category = expectedByCategory.get(item.category) ?? { recognized: 0, fees: 0 };
        category.recognized++;
        category.fees += item.feeYuan;
        expectedByCategory.set(item.category, category);
      } else if (plan.input.orderRepeat !== false) row.repeats++;
      expectedByMonth.set(month, row);
    }
    expect(expectedByMonth.size).toBe(12);

    const statistics = new RecognitionDecisions(database.store, database.collections, 'HR');
    const from = new Date('2025-11-01T00:00:00+08:00');
    const byMonth = await statistics.statistics({ from, to: now, groupBy: 'MONTH' });
    expect(Object.fromEntries(byMonth.rows.map((row) => [row.key, { decisions: row.decisions, recognized: row.recognized, fees: row.feesSavedYuan, repeats: row.repeatsOrdered }]))).toEqual(Object.fromEntries(expectedByMonth));
    const byCategory = await statistics.statistics({ from, to: now, groupBy: 'CATEGORY' });
    const recognisedByCategory = Object.fromEntries(byCategory.rows.filter((row) => row.recognized > 0).map((row) => [row.key, { recognized: row.recognized, fees: row.feesSavedYuan }]));
    expect(recognisedByCategory).toEqual(Object.fromEntries(expectedByCategory));
    expect(Object.keys(recognisedByCategory)).toEqual(expect.arrayContaining(['LAB', 'CT', 'DR', 'MR']));
  });
});
