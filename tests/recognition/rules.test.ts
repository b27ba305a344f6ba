/**
 * The decision rules of result recognition (issue 13, item 4), table-driven: every cause and its boundary —
 * validity day N vs N+1 counted from collection (China calendar days), the QC valid-until edge and a later
 * failure, amended vs preliminary, unmapped vs uncatalogued codes, reference-only items, scope and catalog
 * versions. Pure functions: nothing here touches the database (the decisions recorded through the store are
 * tested in tests/recognition/ against it).
 */
import { describe, expect, it } from 'vitest';
import { ageInDays, decide, type CatalogItem, type Candidate, type Qualification } from '../../src/recognition/rules.ts';

const cbc: CatalogItem = { id: 'LAB-CBC-HGB', version: 1, nameZh: '血红蛋白', nameEn: 'Haemoglobin', category: 'LAB', codes: ['http://loinc.org|718-7'], validityDays: 7, qcProgramme: 'NCCL', feeYuan: 20, scope: 'CONSORTIUM', referenceOnly: false, effectiveFrom: '2025-01-01' };
const glucoseV1: CatalogItem = { id: 'LAB-GLU', version: 1, nameZh: '葡萄糖', nameEn: 'Glucose', category: 'LAB', codes: ['http://loinc.org|2345-7'], validityDays: 14, qcProgramme: 'NCCL', feeYuan: 5, scope: 'CONSORTIUM', referenceOnly: false, effectiveFrom: '2025-01-01', effectiveTo: '2026-06-01' };
const glucoseV2: CatalogItem = { ...glucoseV1, version: 2, validityDays: 7, effectiveFrom: '2026-06-01', effectiveTo: undefined };
const abdomenUs: CatalogItem = { id: 'US-ABD', version: 1, nameZh: '腹部超声', nameEn: 'Abdominal ultrasound', category: 'US', codes: ['http://dicom.nema.org/resources/ontology/DCM|US+http://snomed.info/sct|818983003'], validityDays: 7, qcProgramme: 'IMAGING_QC', feeYuan: 120, scope: 'CONSORTIUM', referenceOnly: true, effectiveFrom: '2025-01-01' };
const chestCt: CatalogItem = { id: 'CT-CHEST', version: 1, nameZh: '胸部CT', nameEn: 'Chest CT', category: 'CT', codes: ['http://dicom.nema.org/resources/ontology/DCM|CT+http://snomed.info/sct|51185008'], validityDays: 30, qcProgramme: 'IMAGING_QC', feeYuan: 260, scope: 'SAME_OR_HIGHER_LEVEL', referenceOnly: false, effectiveFrom: '2025-01-01' };
const catalog = [cbc, glucoseV1, glucoseV2, abdomenUs, chestCt];

const lab = 'Organization/org-taolin-township';
const qualifications: Qualification[] = [
  { organization: lab, category: 'LAB', programme: 'NCCL', year: 2026, result: 'PASS', validFrom: '2026-01-01', validUntil: '2026-11-10' },
  { organization: lab, category: 'US', programme: 'IMAGING_QC', year: 2026, result: 'PASS', validFrom: '2026-01-01', validUntil: '2026-12-31' },
  { organization: lab, category: 'CT', programme: 'IMAGING_QC', year: 2026, result: 'PASS', validFrom: '2026-01-01', validUntil: '2026-12-31' },
  { organization: 'Organization/org-county', item: 'LAB-CBC-HGB', programme: 'NCCL', year: 2026, result: 'PASS', validFrom: '2026-01-01', validUntil: '2026-12-31' },
  { organization: 'Organization/org-county', category: 'LAB', programme: 'NCCL', year: 2026, result: 'FAIL', validFrom: '2026-11-15', validUntil: '2026-12-31' },
  { organization: 'Organization/org-old-fail', category: 'LAB', programme: 'NCCL', year: 2025, result: 'FAIL', validFrom: '2025-01-01', validUntil: '2025-12-31' },
  { organization: 'Organization/org-old-fail', category: 'LAB', programme: 'NCCL', year: 2026, result: 'PASS', validFrom: '2026-01-01', validUntil: '2026-12-31' },
];

const at = (iso: string): Date => new Date(iso);
const candidate = (extra: Partial<Candidate> = {}): Candidate => ({ status: 'final', standardCodes: ['http://loinc.org|718-7'], unmappedLocalCodes: false, collectedAt: at('2026-11-01T23:30:00+08:00'), issuer: lab, issuerLevel: 1, ...extra });
const context = (asOf: string, receiverLevel = 2) => ({ catalog, qualifications, receiverLevel, asOf: at(asOf), markText: '湘HR' });

describe('ageInDays', () => {
  it.each([
    ['2026-11-01T23:30:00+08:00', '2026-11-01T23:59:00+08:00', 0],
    ['2026-11-01T23:30:00+08:00', '2026-11-02T00:01:00+08:00', 1],
    // 17:00 UTC is already the next day in China.
    ['2026-11-01T17:00:00Z', '2026-11-02T09:00:00+08:00', 0],
    ['2026-02-27T08:00:00+08:00', '2026-03-01T08:00:00+08:00', 2],
  ])('collected %s, on %s: %i days', (collected, asOf, days) => {
    expect(ageInDays(at(collected), at(asOf))).toBe(days);
  });
});

describe('decide', () => {
  const table: [string, Partial<Candidate>, string, number, Record<string, unknown>][] = [
    ['day N of validity (7 days) is recognised, with the mark and no day left', {}, '2026-11-08T23:59:00+08:00', 2, { decision: 'RECOGNIZED', ageDays: 7, daysLeft: 0, mark: '湘HR' }],
    ['day N+1 has expired', {}, '2026-11-09T00:00:10+08:00', 2, { decision: 'NOT_ELIGIBLE', cause: 'EXPIRED', ageDays: 8, daysLeft: -1 }],
    ['amended is final', { status: 'amended' }, '2026-11-05T10:00:00+08:00', 2, { decision: 'RECOGNIZED' }],
    ['corrected is final', { status: 'corrected' }, '2026-11-05T10:00:00+08:00', 2, { decision: 'RECOGNIZED' }],
    ['preliminary is not final', { status: 'preliminary' }, '2026-11-05T10:00:00+08:00', 2, { decision: 'NOT_ELIGIBLE', cause: 'NOT_FINAL' }],
    ['registered is not final', { status: 'registered' }, '2026-11-05T10:00:00+08:00', 2, { decision: 'NOT_ELIGIBLE', cause: 'NOT_FINAL' }],
    ['a local code no map translates is NOT_MAPPED', { standardCodes: [], unmappedLocalCodes: true }, '2026-11-05T10:00:00+08:00', 2, { decision: 'NOT_ELIGIBLE', cause: 'NOT_MAPPED' }],
    ['a standard code outside the catalog is NOT_IN_CATALOG', { standardCodes: ['http://loinc.org|1558-6'] }, '2026-11-05T10:00:00+08:00', 2, { decision: 'NOT_ELIGIBLE', cause: 'NOT_IN_CATALOG' }],
    ['an ultrasound is reference only', { standardCodes: [abdomenUs.codes[0]!] }, '2026-11-05T10:00:00+08:00', 2, { decision: 'REFERENCE_ONLY', daysLeft: 3 }],
    ['an issuer outside the consortium is OUT_OF_SCOPE', { issuerLevel: undefined, issuer: 'Organization/elsewhere' }, '2026-11-05T10:00:00+08:00', 2, { decision: 'NOT_ELIGIBLE', cause: 'OUT_OF_SCOPE' }],
    ['a township CT at the county, for an item recognised only from the same level up, is OUT_OF_SCOPE', { standardCodes: [chestCt.codes[0]!] }, '2026-11-05T10:00:00+08:00', 2, { decision: 'NOT_ELIGIBLE', cause: 'OUT_OF_SCOPE' }],
    ['the same CT at another township is recognised', { standardCodes: [chestCt.codes[0]!] }, '2026-11-05T10:00:00+08:00', 1, { decision: 'RECOGNIZED', daysLeft: 26 }],
  ];
  it.each(table)('%s', (_name, extra, asOf, receiverLevel, expected) => {
    expect(decide(candidate(extra), context(asOf, receiverLevel))).toMatchObject(expected);
  });

  it('takes the QC valid-until day as the last qualified day', () => {
    const ct = candidate({ standardCodes: ['http://loinc.org|2345-7'], collectedAt: at('2026-11-05T08:00:00+08:00') });
    expect(decide(ct, context('2026-11-10T23:59:59+08:00'))).toMatchObject({ decision: 'RECOGNIZED' });
    expect(decide(ct, context('2026-11-11T00:00:00+08:00'))).toMatchObject({ decision: 'NOT_ELIGIBLE', cause: 'LAB_NOT_QUALIFIED' });
  });

  it('takes the mark away from new decisions once the lab fails its QC, and only then', () => {
    const county = candidate({ issuer: 'Organization/org-county', issuerLevel: 2, collectedAt: at('2026-11-12T08:00:00+08:00') });
    expect(decide(county, context('2026-11-14T12:00:00+08:00'))).toMatchObject({ decision: 'RECOGNIZED' });
    expect(decide(county, context('2026-11-15T00:00:00+08:00'))).toMatchObject({ decision: 'NOT_ELIGIBLE', cause: 'LAB_NOT_QUALIFIED' });
    // A failure of an earlier year, passed since, does not count.
    const recovered = candidate({ issuer: 'Organization/org-old-fail', issuerLevel: 2, collectedAt: at('2026-11-12T08:00:00+08:00') });
    expect(decide(recovered, context('2026-11-14T12:00:00+08:00'))).toMatchObject({ decision: 'RECOGNIZED' });
  });

  it('decides with the catalog version in force on the decision day', () => {
    const glucose = candidate({ standardCodes: ['http://loinc.org|2345-7'], collectedAt: at('2026-05-20T08:00:00+08:00') });
    expect(decide(glucose, context('2026-05-31T12:00:00+08:00'))).toMatchObject({ decision: 'RECOGNIZED', item: { version: 1 }, daysLeft: 3 });
    expect(decide(glucose, context('2026-06-01T12:00:00+08:00'))).toMatchObject({ decision: 'NOT_ELIGIBLE', cause: 'EXPIRED', item: { version: 2 } });
  });
});
