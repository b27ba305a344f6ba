/**
 * What the hub adds to results on ingest, against the real database (issue 13, items 3 and 6): the standard
 * coding beside a member's local code, the UCUM-normalised value, the recognition mark in `meta.tag`; the
 * administrator's unmapped codes and `translateCode`; a member uploading its own code map; a map edit and a QC
 * failure re-applied to stored results by a background job (with its lease race and takeover); ImagingStudy.
 */
import type { ConceptMap, ImagingStudy, Observation, VerificationResult } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { demoCodeMap, seedDemoRecognition, TAOLIN_LIS } from '../../src/demo/recognition.ts';
import { MAPPED_BY_EXTENSION, NORMALIZED_VALUE_EXTENSION, RECOGNITION_MARK_SYSTEM, convertQuantity, normalisedValueOf } from '../../src/recognition/normalise.ts';
import { queueReapply, reapplyJob, ReapplyRunner } from '../../src/recognition/reapply-jobs.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let admin: string;
let taolin: string;
const now = new Date();
const TAOLIN = 'Organization/org-taolin-township';

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('recognition-ingest'));
  await seedDemoRecognition(database.store, now);
  [admin, taolin] = await Promise.all([token(hub.url, 'consortium-admin'), token(hub.url, 'his-taolin-township')]);
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const read = (type: string, id: string) => database.store.read(type, id);
const runner = (instance: string, batch = 200) => new ReapplyRunner(database.store, database.collections, { instance, markText: 'HR', batch });
const markOf = (resource: { meta?: { tag?: { system?: string; code?: string; display?: string }[] } }) => resource.meta?.tag?.find((tag) => tag.system === RECOGNITION_MARK_SYSTEM);

describe('UCUM normalisation', () => {
  it.each([
    [12.8, 'g/dL', 'g/L', undefined, 128],
    [142, 'mg/dL', 'mmol/L', 180.156, 7.88206],
    [1.1, 'mg/dL', 'umol/L', 113.12, 97.2419],
    [6.2, '10*3/uL', '10*9/L', undefined, 6.2],
    [7.9, 'mmol/L', 'mmol/L', undefined, 7.9],
  ])('%s %s is %s %s', (value, from, to, molarMass, expected) => {
    expect(convertQuantity(value, from, to, molarMass)).toBe(expected);
  });

  it('gives no value where UCUM cannot convert (mass to moles without a molar mass, unknown units)', () => {
    expect(convertQuantity(142, 'mg/dL', 'mmol/L')).toBeUndefined();
    expect(convertQuantity(4, 'mEq/L', 'mmol/L')).toBeUndefined();
  });
});

describe('a result on ingest', () => {
  it('gets the standard coding its issuer maps a local code to, beside the original, and the normalised value', async () => {
    const hgb = (await read('Observation', 'rec-hgb-local')) as Observation;
    const codings = hgb.code.coding!;
    expect(codings[0]).toMatchObject({ system: TAOLIN_LIS, code: 'XCG-HGB', display: '血红蛋白' });
    expect(codings[1]).toMatchObject({ system: 'http://loinc.org', code: '718-7', extension: [{ url: MAPPED_BY_EXTENSION, valueReference: { reference: 'ConceptMap/map-taolin-township-lis' } }] });
    expect(hgb.valueQuantity).toMatchObject({ value: 12.8, unit: 'g/dL' });
    expect(normalisedValueOf(hgb)).toEqual({ value: 128, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' });
    expect(markOf(hgb)).toEqual({ system: RECOGNITION_MARK_SYSTEM, code: 'RECOGNIZABLE', display: 'HR' });
    // No mark on what is not recognisable: unmapped, preliminary, reference only.
    expect(markOf(await read('Observation', 'rec-wbc-local'))).toBeUndefined();
    expect(markOf(await read('Observation', 'rec-crp-prelim'))).toBeUndefined();
    expect(markOf(await read('DiagnosticReport', 'rec-us-abdomen'))).toBeUndefined();
    expect(markOf(await read('DiagnosticReport', 'rec-ct-chest'))).toBeDefined();
  });

  it('is the same when written again: a re-import changes nothing', async () => {
    const before = await read('Observation', 'rec-hgb-local');
    const outcomes = await database.store.putMany([before]);
    expect(outcomes[0]!.outcome).toBe('unchanged');
    const seededAgain = await seedDemoRecognition(database.store, now);
    expect(seededAgain).toBeGreaterThan(0);
    expect((await read('Observation', 'rec-hgb-local')).meta!.versionId).toBe(before.meta!.versionId);
  });

  it('normalises a member\'s glucose in mg/dL written over GraphQL, and keeps its Chinese text', async () => {
    const answer = await graphql(
      hub.url,
      `mutation($res: ObservationInput!) { ObservationCreate(res: $res) { id valueQuantity { value unit extension { url valueQuantity { value unit code } } } meta { tag { system code display } } code { text } } }`,
      {
        res: {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: TAOLIN_LIS, code: 'SH-GLU', display: '葡萄糖' }], text: '空腹血糖（桃林）' },
          subject: { reference: 'Patient/pat-taolin-township-001' },
          effectiveDateTime: new Date(now.getTime() - 3600_000).toISOString(),
          performer: [{ reference: TAOLIN }],
          valueQuantity: { value: 142, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
        },
      },
      taolin,
    );
    expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
    const created = answer.data!.ObservationCreate;
    expect(created.code.text).toBe('空腹血糖（桃林）');
    expect(created.valueQuantity.value).toBe(142);
    expect(created.valueQuantity.extension).toEqual([{ url: NORMALIZED_VALUE_EXTENSION, valueQuantity: { value: 7.88206, unit: 'mmol/L', code: 'mmol/L' } }]);
    expect(created.meta.tag).toEqual([{ system: RECOGNITION_MARK_SYSTEM, code: 'RECOGNIZABLE', display: 'HR' }]);
    expect(((await read('Observation', created.id)) as Observation).code).toMatchObject({ coding: [{ code: 'SH-GLU' }, { system: 'http://loinc.org', code: '2345-7' }] });
  });

  it('on an ImagingStudy: recognition(at:) by its procedure code, acquisition time and performing member', async () => {
    const study = (await read('ImagingStudy', 'rec-ct-chest-study')) as ImagingStudy;
    expect(markOf(study)).toBeDefined();
    const answer = await graphql(hub.url, `{ ImagingStudy(id: "rec-ct-chest-study") { recognition(at: "org-donghu-county") { decision ageDays daysLeft item { id } issuer { name } } } }`, undefined, admin);
    expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
    expect(answer.data!.ImagingStudy.recognition).toEqual({ decision: 'RECOGNIZED', ageDays: 10, daysLeft: 20, item: { id: 'CT-CHEST' }, issuer: { name: '东湖县桃林镇卫生院' } });
  });
});

describe('code maps', () => {
  it('lists the local codes no map translates for the administrator and the member, not for another member', async () => {
    const query = `query($org: ID!) { unmappedCodes(organization: $org) { complete codes { system code display results resourceTypes } } }`;
    const answer = await graphql(hub.url, query, { org: 'org-taolin-township' }, admin);
    expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
    expect(answer.data!.unmappedCodes).toEqual({ complete: true, codes: [{ system: TAOLIN_LIS, code: 'XCG-WBC', display: '白细胞', results: 1, resourceTypes: ['Observation'] }] });
    expect((await graphql(hub.url, query, { org: 'org-taolin-township' }, taolin)).data!.unmappedCodes.codes).toHaveLength(1);
    const other = await graphql(hub.url, query, { org: 'org-taolin-township' }, await token(hub.url, 'his-changtang-township'));
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('translates a code like $translate: a local code through its member\'s map, a standard one to its item', async () => {
    const query = `query($org: ID!, $system: String, $code: String!) { translateCode(organization: $org, system: $system, code: $code) { system code map item { id nameZh } } }`;
    const local = await graphql(hub.url, query, { org: 'org-taolin-township', system: TAOLIN_LIS, code: 'XCG-HGB' }, taolin);
    expect(local.data!.translateCode).toEqual([{ system: 'http://loinc.org', code: '718-7', map: 'ConceptMap/map-taolin-township-lis', item: { id: 'LAB-HGB', nameZh: '血红蛋白' } }]);
    const standard = await graphql(hub.url, query, { org: 'org-taolin-township', system: 'http://loinc.org', code: '2345-7' }, taolin);
    expect(standard.data!.translateCode).toEqual([{ system: 'http://loinc.org', code: '2345-7', map: null, item: { id: 'LAB-GLU', nameZh: '葡萄糖' } }]);
    const unknown = await graphql(hub.url, query, { org: 'org-taolin-township', system: TAOLIN_LIS, code: 'NOPE' }, taolin);
    expect(unknown.data!.translateCode).toEqual([]);
  });

  it('a member uploads its own code map, not another member\'s', async () => {
    const own: ConceptMap = { ...demoCodeMap(), id: undefined as never, url: 'https://demo.consortium-hub.cn/ConceptMap/taolin-pacs', title: '桃林镇卫生院 PACS 检查代码对照', group: [{ source: 'https://demo.consortium-hub.cn/CodeSystem/taolin-pacs', target: 'http://loinc.org', element: [{ code: 'CT-XB', display: '胸部CT', target: [{ code: '24627-2', equivalence: 'equivalent' }] }] }] };
    const create = `mutation($res: ConceptMapInput!) { ConceptMapCreate(res: $res) { id title } }`;
    const created = await graphql(hub.url, create, { res: own }, taolin);
    expect(created.errors, JSON.stringify(created.errors)).toBeUndefined();
    expect(created.data!.ConceptMapCreate.title).toBe('桃林镇卫生院 PACS 检查代码对照');
    const foreign = await graphql(hub.url, create, { res: { ...own, sourceUri: 'urn:consortium-hub:local-codes:org-changtang-township' } }, taolin);
    expect(foreign.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const stolen = await graphql(hub.url, `mutation($res: ConceptMapInput!) { ConceptMapUpdate(id: "map-taolin-township-lis", res: $res) { id } }`, { res: { ...demoCodeMap(), title: '改' } }, await token(hub.url, 'his-changtang-township'));
    expect(stolen.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('a map edit is re-applied to stored results by a job with progress: the unmapped code becomes recognisable', async () => {
    const map = demoCodeMap();
    map.group![0]!.element!.push({ code: 'XCG-WBC', display: '白细胞', target: [{ code: '6690-2', display: 'Leukocytes', equivalence: 'equivalent' }] });
    const edited = await graphql(hub.url, `mutation($res: ConceptMapInput!) { ConceptMapUpdate(id: "map-taolin-township-lis", res: $res) { id } }`, { res: map }, taolin);
    expect(edited.errors, JSON.stringify(edited.errors)).toBeUndefined();
    // The edit queued the job by itself; nothing changed in the request.
    const jobs = await graphql(hub.url, `{ recognitionJobs(organization: "org-taolin-township") { id state reason total done changed } }`, undefined, taolin);
    const queued = jobs.data!.recognitionJobs.find((job: { state: string }) => job.state === 'QUEUED');
    expect(queued, JSON.stringify(jobs.data)).toBeDefined();
    expect(markOf(await read('Observation', 'rec-wbc-local'))).toBeUndefined();
    // Due after its short delay; this instance's runner claims it.
    await database.connection.db.collection<{ _id: string }>('recognition_jobs').updateOne({ _id: queued.id }, { $set: { notBefore: new Date(0) } });
    expect(await runner('test-runner', 3).runDue()).toBeGreaterThanOrEqual(1);
    const done = await graphql(hub.url, `query($id: ID!) { recognitionJob(id: $id) { state total done changed error } }`, { id: queued.id }, admin);
    expect(done.data!.recognitionJob).toMatchObject({ state: 'DONE', error: null });
    const { total, done: looked, changed } = done.data!.recognitionJob;
    expect(looked).toBe(total);
    expect(total).toBeGreaterThanOrEqual(9);
    expect(changed).toBeGreaterThanOrEqual(1);
    const wbc = (await read('Observation', 'rec-wbc-local')) as Observation;
    expect(wbc.code.coding!.map((coding) => coding.code)).toEqual(['XCG-WBC', '6690-2']);
    expect(normalisedValueOf(wbc)).toEqual({ value: 6.2, unit: '10*9/L', system: 'http://unitsofmeasure.org', code: '10*9/L' });
    expect(markOf(wbc)).toBeDefined();
    expect((await graphql(hub.url, `{ unmappedCodes(organization: "org-taolin-township") { codes { code } } }`, undefined, admin)).data!.unmappedCodes.codes).toEqual([]);
    const candidate = await graphql(hub.url, `{ Observation(id: "rec-wbc-local") { recognition(at: "org-donghu-county") { decision item { id } } } }`, undefined, admin);
    expect(candidate.data!.Observation.recognition).toEqual({ decision: 'RECOGNIZED', item: { id: 'LAB-WBC' } });
  });

  it('a failed QC takes the mark away from the lab\'s stored results (a new version; the earlier one keeps it)', async () => {
    const before = await read('Observation', 'rec-hgb-local');
    const year = now.getUTCFullYear();
    const fail: VerificationResult = {
      resourceType: 'VerificationResult',
      id: 'qc-taolin-lab-fail-test',
      target: [{ reference: TAOLIN }],
      targetLocation: ['category:LAB'],
      status: 'val-fail',
      validationProcess: [{ coding: [{ system: 'https://demo.consortium-hub.cn/CodeSystem/qc-programme', code: 'NCCL' }] }],
      lastPerformed: new Date(now.getTime() - 24 * 3600_000).toISOString(),
      nextScheduled: `${year + 1}-12-31`,
    };
    await database.store.create(fail, { id: fail.id! });
    const job = (await database.connection.db.collection('recognition_jobs').find({ organization: TAOLIN, state: 'queued' }).toArray())[0];
    expect(job).toBeDefined();
    await database.connection.db.collection<{ _id: string }>('recognition_jobs').updateOne({ _id: job!._id as unknown as string }, { $set: { notBefore: new Date(0) } });
    await runner('test-runner').runDue();
    const after = await read('Observation', 'rec-hgb-local');
    expect(markOf(after)).toBeUndefined();
    expect(Number(after.meta!.versionId)).toBe(Number(before.meta!.versionId) + 1);
    expect(markOf(await database.store.readVersion('Observation', 'rec-hgb-local', before.meta!.versionId!))).toBeDefined();
    await database.store.delete('VerificationResult', fail.id!);
  });
});

describe('the re-apply job', () => {
  it('is claimed by one runner of two at once', async () => {
    const job = await queueReapply(database.collections, 'Organization/org-changtang-township', 'race test', 0);
    const [a, b] = await Promise.all([runner('instance-a').claim(), runner('instance-b').claim()]);
    expect([a, b].filter((claimed) => claimed?._id === job._id)).toHaveLength(1);
    await runner('instance-c').runDue(); // nothing due: the claimed one holds a lease
    expect((await reapplyJob(database.collections, job._id))!.state).toBe('running');
  });

  it('is taken over where it stood when its runner\'s lease lapses, and the old runner stops', async () => {
    const db = database.connection.db;
    for (const state of ['queued', 'running']) await db.collection('recognition_jobs').updateMany({ state }, { $set: { state: 'done' } });
    const job = await queueReapply(database.collections, TAOLIN, 'takeover test', 0);
    const first = runner('instance-old', 2);
    const claimed = (await first.claim())!;
    expect(claimed._id).toBe(job._id);
    // The old runner is stuck: its lease lapses and another instance claims the job.
    await db.collection<{ _id: string }>('recognition_jobs').updateOne({ _id: job._id }, { $set: { leaseUntil: new Date(Date.now() - 1000) } });
    expect(await runner('instance-new', 2).runDue()).toBe(1);
    const finished = (await reapplyJob(database.collections, job._id))!;
    expect(finished).toMatchObject({ state: 'done', attempts: 2 });
    expect(finished.done).toBe(finished.total);
    // The old runner wakes up: its first page's progress is refused (lease lost) and it stops.
    await first.run(claimed);
    expect((await reapplyJob(database.collections, job._id))!).toMatchObject({ state: 'done', done: finished.done });
  });
});
