/**
 * npm run bench: loads the Synthea data and measures, at concurrency 1 and 16,
 *   (a) a patient summary query (Patient with encounters, observations, diagnostic reports with their
 *       results and performers) through the hub's HTTP GraphQL endpoint,
 *   (b) an observation search by code and date range across all patients,
 *   (c) import throughput,
 *   (d) patient history pages for a person with records at four members and 640 entries,
 * printing throughput, p50/p95 latency, database round trips per request, peak RSS, and for (a) and (c) the
 * ratio to a raw-driver floor that does the same work in-process with the fewest driver calls
 * (for (a), (c) and (d)).
 *
 * Environment: MONGODB_URI (default: a throwaway FerretDB started for the run), BENCH_REPLICAS (copies of the
 * Synthea patients with fresh ids, default 1), BENCH_REQUESTS (requests per measurement, default 32).
 */
import { catalogCodeSystem } from '../src/recognition/catalog.ts';
import { MEMBER_LEVEL_SYSTEM } from '../src/recognition/recognition-service.ts';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { startHub } from '../src/app.ts';
import { loadConfig, projectRoot } from '../src/config.ts';
import { openDatabase, type DatabaseConnection } from '../src/database/connection.ts';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../src/database/embedded-database.ts';
import { BundleImporter } from '../src/fhir/bundles.ts';
import { bundleFiles } from '../src/fhir/import-files.ts';
import { viewOf } from '../src/fhir/document-layout.ts';
import { extractSearchValues } from '../src/fhir/search-index.ts';
import { createHubStore } from '../src/hub-store.ts';
import { MemberSync } from '../src/sync/member-sync.ts';
import { ReadingService } from '../src/reading/reading-service.ts';
import { createLogger } from '../src/log.ts';
import { makeNationalId } from '../src/identity/national-id.ts';
import { DEFAULT_NATIONAL_ID_SYSTEM, nationalIdPersonId } from '../src/identity/patient-identity.ts';

const replicas = Number(process.env.BENCH_REPLICAS ?? 1);
const requestsPerRun = Number(process.env.BENCH_REQUESTS ?? 32);
const syntheaDir = join(projectRoot, '..', 'shared', 'data', 'synthea-r4');

interface Measurement {
  label: string;
  concurrency: number;
  requests: number;
  seconds: number;
  latencies: number[];
  roundTrips?: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function measure(label: string, concurrency: number, requests: number, work: (i: number) => Promise<void>, connection?: DatabaseConnection): Promise<Measurement> {
  const latencies: number[] = [];
  let next = 0;
  const commandsBefore = connection?.commandsSent() ?? 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const i = next++;
        const t = performance.now();
        await work(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { label, concurrency, requests, seconds, latencies: latencies.sort((a, b) => a - b), roundTrips: connection ? (connection.commandsSent() - commandsBefore) / requests : undefined };
}

function report(m: Measurement, unit = 'req'): string {
  const rt = m.roundTrips === undefined ? '' : `  round trips/${unit} ${m.roundTrips.toFixed(1)}`;
  return `${m.label.padEnd(34)} c=${String(m.concurrency).padStart(2)}  ${(m.requests / m.seconds).toFixed(2).padStart(8)} ${unit}/s  p50 ${percentile(m.latencies, 50).toFixed(0).padStart(6)} ms  p95 ${percentile(m.latencies, 95).toFixed(0).padStart(6)} ms${rt}`;
}

const summaryQueryText = `query Summary($id: ID!) {
    Patient(id: $id) {
      id name { family given } birthDate
      EncounterList(_reference: "patient") { id status period { start end } type { text } }
      ObservationList(_reference: "patient") { id code { coding { system code } } valueQuantity { value unit } effectiveDateTime }
      DiagnosticReportList(_reference: "patient") {
        id code { text } effectiveDateTime
        result { resource { ... on Observation { id code { text } valueQuantity { value unit } } } }
        performer { resource { ... on Organization { organizationName: name } ... on Practitioner { name { family } } } }
      }
    }
  }`;

let failures: string[] = [];
async function postTo(url: string, accessToken: string | undefined, query: string, variables: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}) }, body: JSON.stringify({ query, variables }) });
  const body = (await response.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
  if (body.errors) failures.push(`${body.errors[0]?.extensions?.code}: ${body.errors[0]?.message}`);
}
function failedText(): string {
  const text = failures.length > 0 ? `  FAILED ${failures.length} (${[...new Set(failures)].slice(0, 2).join('; ')})` : '';
  failures = [];
  return text;
}
const patientIdsOf = (bundles: Bundle[]): string[] => bundles.map((bundle) => bundle.entry!.find((entry) => entry.resource?.resourceType === 'Patient')!.resource!.id as string);

/** Hospital and practitioner ids: shared by all replicas of the patients. */
const sharedIds = new Set<string>();

const HAPI = 'HAPI FHIR 8.8 (H2 file database), same Synthea data, this machine: patient with 125 observations via $graphql 11 ms, code + date search 84 ms, read by id 6 ms, import 441 resources/s';
const targets: Record<string, number> = { '(r) read by id': 10, '(a) patient summary': 50, '(b) observation search code+date': 100, '(d) patient history page (20)': 100 };

async function main(): Promise<void> {
  const files = await bundleFiles([syntheaDir]);
  for (const file of files.filter((f) => /Information/.test(f))) {
    for (const entry of (JSON.parse(readFileSync(file, 'utf8')) as Bundle).entry ?? []) if (entry.resource?.id) sharedIds.add(entry.resource.id);
  }
  const bundles: Bundle[] = [];
  for (let replica = 0; replica < replicas; replica++) {
    for (const file of files) {
      const shared = /Information/.test(file);
      if (replica > 0 && shared) continue;
      let text = readFileSync(file, 'utf8');
      if (replica > 0) {
        text = text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (uuid) =>
          sharedIds.has(uuid) ? uuid : `${uuid.slice(0, 24)}${(parseInt(uuid.slice(24, 28), 16) ^ replica).toString(16).padStart(4, '0')}${uuid.slice(28)}`,
        );
      }
      bundles.push(JSON.parse(text) as Bundle);
    }
  }
  const providers = bundles.filter((bundle) => bundle.entry?.every((entry) => ['Organization', 'Practitioner'].includes(entry.resource?.resourceType ?? '')));
  const patients = bundles.filter((bundle) => !providers.includes(bundle));
  const entryCount = bundles.reduce((sum, bundle) => sum + (bundle.entry?.length ?? 0), 0);

  let embedded: EmbeddedDatabase | undefined;
  let dataDir: string | undefined;
  let uri = process.env.MONGODB_URI;
  let postgresUrl = process.env.FERRETDB_POSTGRESQL_URL;
  if (!uri) {
    dataDir = mkdtempSync(join(tmpdir(), 'hub-bench-'));
    chmodSync(dataDir, 0o755); // the embedded PostgreSQL runs as its own user
    const port = 27000 + Math.floor(Math.random() * 900);
    embedded = await startEmbeddedDatabase({ dataDir, ferretdbPort: port, postgresPort: port + 1, backend: (process.env.BENCH_DB_BACKEND as 'sqlite' | 'postgresql' | undefined) ?? 'auto', warn: console.warn });
    uri = embedded.uri;
    postgresUrl = embedded.postgresUrl;
  }
  const open = (name: string): DatabaseConnection => openDatabase(uri!, name, 10_000, undefined, postgresUrl ? { url: postgresUrl, warn: console.warn } : undefined);
  const server = (await openDatabase(uri, 'admin', 5000).db.admin().command({ buildInfo: 1 }).catch(() => ({}))) as { version?: string; ferretdbVersion?: string };
  const databaseName = server.ferretdbVersion ? `FerretDB ${server.ferretdbVersion} on ${embedded?.backend ?? (postgresUrl ? 'postgresql' : 'its backend')}` : `MongoDB ${server.version ?? '?'}`;
  console.log(`consortium hub benchmark: ${bundles.length} Synthea Bundles (${replicas} replica(s)), ${entryCount} entries; database ${databaseName}; node ${process.version}, ${requestsPerRun} requests per measurement`);
  console.log(`reference: ${HAPI}\n`);

  const results = { push: (line: string): void => console.log(line) };
  const stamp = Date.now().toString(36);
  const p50s: Record<string, number> = {};
  const record = (m: Measurement): Measurement => {
    if (m.concurrency === 1) p50s[m.label] = percentile(m.latencies, 50);
    return m;
  };

  // (c) import throughput: at c=1 on the first 20 patient Bundles, at c=16 on all of them (the database the
  // other measurements read).
  const importRuns: Record<number, number> = {};
  const mainDb = `bench_${stamp}_main`;
  for (const concurrency of [1, 16]) {
    const name = concurrency === 16 ? mainDb : `bench_${stamp}_import_c1`;
    const connection = open(name);
    const store = createHubStore(connection.db, { listMaxResults: 100_000 });
    await store.ensureIndexes();
    for (const bundle of providers) await new BundleImporter(store).import(bundle);
    const sample = concurrency === 1 ? patients.slice(0, 20) : patients;
    const m = await measure('(c) import, patient Bundles', concurrency, sample.length, async (i) => {
      const result = await new BundleImporter(store).import(sample[i]!);
      if (result.summary.failed > 0) throw new Error('import failed');
    }, connection);
    const entries = sample.reduce((sum, bundle) => sum + (bundle.entry?.length ?? 0), 0);
    importRuns[concurrency] = entries / m.seconds;
    await connection.refreshStatistics();
    results.push(`${report(m, 'bundle')}  = ${(entries / m.seconds).toFixed(0)} resources/s (every one validated)`);
    if (concurrency === 1) await connection.db.dropDatabase();
    await connection.close();
  }
  {
    // The floor: one insertMany per collection of what the store writes (current documents with their search
    // fields and the history versions), prepared before the clock starts.
    const distinct = new Map<string, Map<string, Resource>>();
    for (const bundle of patients) for (const entry of bundle.entry ?? []) {
      const resource = entry.resource as Resource;
      const byId = distinct.get(resource.resourceType) ?? new Map<string, Resource>();
      byId.set(resource.id as string, resource);
      distinct.set(resource.resourceType, byId);
    }
    const entries = patients.reduce((sum, bundle) => sum + (bundle.entry?.length ?? 0), 0);
    const connection = open(`bench_${stamp}_floor`);
    const ts = new Date();
    const writes: [string, object[]][] = [];
    for (const [type, byId] of distinct) {
      const resources = [...byId.values()];
      writes.push([type, resources.map((r) => ({ _id: r.id, v: 1, ts, json: JSON.stringify(r), sp: extractSearchValues(r) }))]);
      writes.push([`${type}_history`, resources.map((r) => ({ _id: `${r.id}/1`, rid: r.id, v: 1, ts, json: JSON.stringify(r), op: 'create' }))]);
    }
    // Batches of 1,000 documents, 16 in flight (what the import's 16 clients have): all at once, at 10x the data,
    // sent FerretDB half a gigabyte in one go and it stopped answering.
    const batches: [string, object[]][] = writes.flatMap(([collection, docs]) => Array.from({ length: Math.ceil(docs.length / 1000) }, (_, i): [string, object[]] => [collection, docs.slice(i * 1000, (i + 1) * 1000)]));
    const started = performance.now();
    let nextBatch = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (nextBatch < batches.length) {
          const [collection, docs] = batches[nextBatch++]!;
          await connection.db.collection(collection).insertMany(docs as never[], { ordered: false });
        }
      }),
    );
    const floor = entries / ((performance.now() - started) / 1000);
    results.push(`(c) raw-driver floor (one insertMany per collection, no validation): ${floor.toFixed(0)} resources/s; import/floor c=16 ${(importRuns[16]! / floor).toFixed(2)}`);
    await connection.db.dropDatabase();
    await connection.close();
  }
  // (d) setup: one person with records at four members and at least 500 history entries, among the Synthea data.
  const historyPerson = await seedHistoryPerson(open, mainDb);
  {
    const statistics = open(mainDb);
    await statistics.refreshStatistics();
    await statistics.close();
  }
  const hubConfig = (extra: Record<string, string>) =>
    loadConfig({ PORT: '0', LOG_LEVEL: 'error', MONGODB_DB: mainDb, LIST_MAX_RESULTS: '10000', RATE_LIMIT_PER_MINUTE: '1000000', MAX_CONCURRENT_REQUESTS_PER_CLIENT: '64', REQUEST_TIMEOUT_MS: '3600000', ...extra });
  // (a) first without authentication and audit, for the cost of both.
  const summaryWithoutAuth: Record<number, number> = {};
  {
    const unauthenticated = await startHub(hubConfig({ AUTH_REQUIRED: 'false' }), uri, createLogger('error'), undefined, postgresUrl);
    await unauthenticated.indexesReady;
    for (const concurrency of [1, 16]) {
      const m = await measure('(a) summary, no auth, no audit', concurrency, requestsPerRun, (i) => postTo(unauthenticated.url, undefined, summaryQueryText, { id: patientIdsOf(patients)[i % patients.length] }), unauthenticated.database);
      summaryWithoutAuth[concurrency] = m.requests / m.seconds;
      results.push(report(m) + failedText());
    }
    await unauthenticated.stop();
  }
  const hub = await startHub(hubConfig({}), uri, createLogger('error'), undefined, postgresUrl);
  await hub.indexesReady;
  // A member hospital's HIS: reads go through the access policy, and every one is audited.
  const benchSecret = 'bench-secret-bench-secret-bench-secret';
  await hub.clients.register({ id: 'bench-his', name: 'bench HIS', kind: 'member', organization: 'bench-county', scopes: 'system/*.rs', secret: benchSecret });
  const tokenAnswer = await fetch(`${hub.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=bench-his&client_secret=${benchSecret}` });
  const accessToken = ((await tokenAnswer.json()) as { access_token: string }).access_token;
  const patientIds = patientIdsOf(patients);
  const post = (query: string, variables: Record<string, unknown>): Promise<void> => postTo(hub.url, accessToken, query, variables);
  const failed = failedText;
  const db = hub.database.db;

  // (r) read by id: one Observation, of any patient.
  const observationIds = (await db.collection('Observation').find({}, { projection: { _id: 1 } }).limit(5000).toArray()).map((document) => String(document._id));
  const readQuery = 'query Read($id: ID!) { Observation(id: $id) { id status code { coding { system code } } valueQuantity { value unit } effectiveDateTime } }';
  for (const concurrency of [1, 16]) {
    results.push(report(record(await measure('(r) read by id', concurrency, requestsPerRun * 4, (i) => post(readQuery, { id: observationIds[(i * 7919) % observationIds.length] }), hub.database))) + failed());
  }
  const summaryRuns: Record<number, number> = {};
  for (const concurrency of [1, 16]) {
    const m = record(await measure('(a) patient summary', concurrency, requestsPerRun, (i) => post(summaryQueryText, { id: patientIds[i % patientIds.length] }), hub.database));
    summaryRuns[concurrency] = m.requests / m.seconds;
    results.push(`${report(m)}  with/without auth+audit ${(summaryRuns[concurrency]! / summaryWithoutAuth[concurrency]!).toFixed(2)}${failed()}`);
  }
  // The floor: the same data straight from the driver, in-process, with the fewest calls, in the shapes the
  // server answers from its indexes (equalities; on FerretDB one per id instead of an `$in`).
  const byIds = async (collection: string, ids: string[]): Promise<Record<string, unknown>[]> =>
    server.ferretdbVersion
      ? (await Promise.all(ids.map((id) => db.collection(collection).findOne({ _id: id as never })))).filter((d): d is NonNullable<typeof d> => d !== null).map((document) => viewOf(document) as unknown as Record<string, unknown>)
      : db.collection(collection).find({ _id: { $in: ids as never[] } }, { projection: { json: 1 } }).toArray();
  // On FerretDB the documents are compact (document-layout.ts): the anchor `t`, the rest in one blob.
  const compact = Boolean(server.ferretdbVersion);
  const byAnchor = async (collection: string, field: string, value: string): Promise<Record<string, unknown>[]> =>
    compact
      ? (await db.collection(collection).find({ t: value }, { batchSize: 100_000 }).toArray()).map((document) => viewOf(document) as unknown as Record<string, unknown>)
      : db.collection(collection).find({ [field]: value }, { projection: { json: 1, sp: 1 } }).toArray();
  const floorSummary = async (id: string): Promise<void> => {
    const reference = `Patient/${id}`;
    const [patient, encounters, observations, reports] = await Promise.all([
      db.collection('Patient').findOne({ _id: id as never }).then((document) => (document ? viewOf(document) : null)),
      byAnchor('Encounter', 't_patient', reference),
      byAnchor('Observation', 't_patient', reference),
      byAnchor('DiagnosticReport', 't_patient', reference),
    ]);
    const parsedReports = reports.map((document) => JSON.parse(document.json as string) as { result?: { reference?: string }[]; performer?: { reference?: string }[] });
    const ids = (prefix: string, refs: (string | undefined)[]): string[] => [...new Set(refs.filter((r): r is string => !!r?.startsWith(prefix)).map((r) => r.slice(prefix.length)))];
    const performerRefs = parsedReports.flatMap((r) => r.performer?.map((x) => x.reference) ?? []);
    const [organizations, practitioners] = await Promise.all([byIds('Organization', ids('Organization/', performerRefs)), byIds('Practitioner', ids('Practitioner/', performerRefs))]);
    for (const document of [patient, ...encounters, ...observations, ...organizations, ...practitioners]) if (document) JSON.parse(document.json as string);
  };
  for (const concurrency of [1, 16]) {
    const m = await measure('(a) raw-driver floor', concurrency, requestsPerRun, (i) => floorSummary(patientIds[i % patientIds.length]!), hub.database);
    results.push(`${report(m)}  hub/floor ${(summaryRuns[concurrency]! / (m.requests / m.seconds)).toFixed(2)}`);
  }
  const searchQuery = `query Search($code: String, $date: String) { ObservationList(code: $code, date: $date, _count: 50, _sort: "-date") { id effectiveDateTime valueQuantity { value unit } subject { reference } } }`;
  const codes = ['http://loinc.org|8302-2', 'http://loinc.org|29463-7', 'http://loinc.org|2093-3', 'http://loinc.org|4548-4'];
  for (const concurrency of [1, 16]) {
    results.push(report(record(await measure('(b) observation search code+date', concurrency, requestsPerRun, (i) => post(searchQuery, { code: codes[i % codes.length], date: 'ge2012-01-01' }), hub.database))) + failed());
  }
  // (g) the same reads through the FHIR REST facade (issue 14): a patient's observations, and code + date.
  const restGet = async (path: string): Promise<void> => {
    const response = await fetch(`${hub.url}/fhir/${path}`, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/fhir+json' } });
    const body = (await response.json()) as { resourceType?: string; entry?: unknown[] };
    if (response.status !== 200 || body.resourceType !== 'Bundle') throw new Error(`REST ${path}: ${response.status}`);
  };
  for (const concurrency of [1, 16]) {
    results.push(report(record(await measure('(g) REST Observation?subject&_count=1000', concurrency, requestsPerRun, (i) => restGet(`Observation?subject=Patient/${patientIds[i % patientIds.length]}&_count=1000`), hub.database))) + failed());
  }
  for (const concurrency of [1, 16]) {
    results.push(report(record(await measure('(g) REST Observation?code&date', concurrency, requestsPerRun, (i) => restGet(`Observation?code=${encodeURIComponent(codes[i % codes.length]!)}&date=ge2012-01-01&_count=50&_sort=-date`), hub.database))) + failed());
  }
  // (d) patient history pages over GraphQL/HTTP, and the floor: the same page with the fewest driver calls.
  const historyQuery = `query History($identifier: String, $after: String) {
    patientHistory(identifier: $identifier, first: 20, after: $after) {
      next
      entries { date type reference display status referralStatus source { name alias level }
        resource { ... on Observation { valueQuantity { value unit } } ... on Encounter { period { start end } } ... on DiagnosticReport { conclusion } } }
    }
  }`;
  const cursors: (string | null)[] = [null];
  for (let page = 0; page < 4; page++) {
    const response = await fetch(`${hub.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` }, body: JSON.stringify({ query: historyQuery, variables: { identifier: historyPerson.nationalId, after: cursors[page] } }) });
    cursors.push(((await response.json()) as { data: { patientHistory: { next: string } } }).data.patientHistory.next);
  }
  const historyRuns: Record<number, number> = {};
  for (const concurrency of [1, 16]) {
    const m = record(await measure('(d) patient history page (20)', concurrency, requestsPerRun, (i) => post(historyQuery, { identifier: historyPerson.nationalId, after: cursors[i % cursors.length] }), hub.database));
    historyRuns[concurrency] = m.requests / m.seconds;
    results.push(report(m, 'page') + failed());
  }
  const historyTypes = ['Encounter', 'Observation', 'DiagnosticReport', 'ServiceRequest', 'Condition', 'MedicationRequest'];
  const floorHistory = async (): Promise<void> => {
    // The floor knows the person id and reads the first page: records, the entry types per record at once, then sources.
    const records = await byAnchor('Patient', 't_person', historyPerson.personId);
    const refs = records.map((record) => `Patient/${record._id}`);
    const newest = (documents: Record<string, unknown>[]): Record<string, unknown>[] =>
      documents.sort((a, b) => ((b.sp as { _when: Date })._when.getTime() - (a.sp as { _when: Date })._when.getTime())).slice(0, 21);
    const pages = await Promise.all(historyTypes.flatMap((type) => refs.map(async (ref) => newest(await byAnchor(type, 't_patient', ref)))));
    const page = newest(pages.flat()).slice(0, 20);
    const organizations = [...new Set(page.flatMap((document) => ((document.sp as { _org?: string[] })._org) ?? []))].map((ref) => ref.slice('Organization/'.length));
    const orgs = await byIds('Organization', organizations);
    for (const document of [...records, ...page, ...orgs]) JSON.parse(document.json as string);
  };
  for (const concurrency of [1, 16]) {
    const m = await measure('(d) raw-driver floor', concurrency, requestsPerRun, () => floorHistory(), hub.database);
    results.push(`${report(m, 'page')}  hub/floor ${(historyRuns[concurrency]! / (m.requests / m.seconds)).toFixed(2)}`);
  }
  // (e) referral: submit (a township) -> accept (the county) as one round trip of the workflow, and the county's
  // inbox page (20 referrals with their patients, forms and senders).
  {
    for (const [id, name] of [['bench-county', '基准县医院'], ['bench-township', '基准乡镇卫生院']] as const) {
      await hub.store.put({ resourceType: 'Organization', id, name, active: true });
    }
    const referralSecret = 'bench-secret-referral-bench-secret-x';
    for (const [client, organization] of [['bench-township-his', 'bench-township'], ['bench-county-his', 'bench-county']] as const) {
      await hub.clients.register({ id: client, name: client, kind: 'member', organization, scopes: 'system/*.cruds', secret: referralSecret });
    }
    const tokenOf = async (client: string): Promise<string> => {
      const answer = await fetch(`${hub.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=${client}&client_secret=${referralSecret}` });
      return ((await answer.json()) as { access_token: string }).access_token;
    };
    const township = await tokenOf('bench-township-his');
    const county = await tokenOf('bench-county-his');
    const ask = async (bearer: string, query: string, variables: Record<string, unknown>): Promise<Record<string, any>> => {
      const answer = await fetch(`${hub.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, body: JSON.stringify({ query, variables }) });
      const body = (await answer.json()) as { data?: Record<string, any>; errors?: unknown[] };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data!;
    };
    const submit = 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id version } }';
    const accept = 'mutation($id: ID!, $v: String) { referralAccept(id: $id, ifMatch: $v, department: "内科") { status } }';
    for (const concurrency of [1, 16]) {
      const m = await measure('(e) referral submit -> accept', concurrency, requestsPerRun, async (i) => {
        const { referralSubmit } = await ask(township, submit, { input: { type: i % 10 === 0 ? 'GREEN_CHANNEL' : 'UP', patient: patientIds[i % patientIds.length], to: 'bench-county', reason: '基准测试：胸闷待查', consent: true } });
        if (referralSubmit.version === '1' && i % 10 !== 0) await ask(county, accept, { id: referralSubmit.id, v: referralSubmit.version });
      }, hub.database);
      results.push(report(record(m)) + failed());
    }
    // Enough waiting referrals for full pages.
    for (let i = 0; i < 60; i++) await ask(township, submit, { input: { type: 'UP', patient: patientIds[i % patientIds.length], to: 'bench-county', reason: `基准测试 ${i}`, consent: true } });
    const inbox = 'query { referralInbox(organization: "bench-county", direction: INCOMING, _count: 20) { items { id type status dueAt overdue patient { id } form { id } from { id } } next } }';
    for (const concurrency of [1, 16]) {
      results.push(report(record(await measure('(e) referral inbox page (20)', concurrency, requestsPerRun, () => ask(county, inbox, {}).then(() => undefined), hub.database)), 'page') + failed());
    }
  }
  // (f) result recognition: every result of the person treated at four members (400 observations, 80 reports),
  // decided at the county member: catalog, QC records, code maps, organisations and results in a fixed number of reads.
  {
    const levelOf: Record<string, string> = { 'bench-provincial': 'provincial', 'bench-county': 'county', 'bench-township': 'township', 'bench-community': 'community' };
    const year = new Date().getFullYear();
    await hub.store.putMany([
      catalogCodeSystem(),
      ...Object.entries(levelOf).map(([id, level], m): Resource => ({ resourceType: 'Organization', id, name: `基准成员${m + 1}`, type: [{ coding: [{ system: MEMBER_LEVEL_SYSTEM, code: level }] }] })),
      ...Object.keys(levelOf).map((id): Resource => ({ resourceType: 'VerificationResult', id: `qc-${id}`, target: [{ reference: `Organization/${id}` }], targetLocation: ['category:LAB'], status: 'validated', validationProcess: [{ coding: [{ code: 'NCCL' }], text: 'NCCL' }], lastPerformed: `${year - 20}-01-01T00:00:00+08:00`, nextScheduled: `${year + 1}-12-31` })),
    ]);
    const candidates = 'query($p: ID!) { recognitionCandidates(patient: $p, at: "bench-county") { resultReference decision cause ageDays daysLeft item { id } } }';
    for (const concurrency of [1, 16]) {
      results.push(report(record(await measure('(f) recognition candidates, 4 members', concurrency, requestsPerRun, () => post(candidates, { p: 'bench-provincial-rec' }), hub.database))) + failed());
    }
  }
  // (i) remote reading: the centre's queue page and claims, over GraphQL as the centre's HIS.
  {
    const centreSecret = 'bench-centre-secret-bench-centre-secret';
    await hub.clients.register({ id: 'bench-centre', name: 'bench reading centre', kind: 'member', organization: 'bench-county', scopes: 'system/*.cruds', secret: centreSecret });
    const centreToken = ((await (await fetch(`${hub.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=bench-centre&client_secret=${centreSecret}` })).json()) as { access_token: string }).access_token;
    const setup = new ReadingService(hub.store, undefined, hub.database.db, { clientId: 'bench', anySide: true });
    const kinds = [['ECG', 'ROUTINE'], ['ECG', 'STAT'], ['DR', 'ROUTINE'], ['CT', 'URGENT']] as const;
    const waiting: string[] = [];
    for (let i = 0; i < requestsPerRun * 2 + 40; i++) {
      const [modality, urgency] = kinds[i % kinds.length]!;
      waiting.push((await setup.request({ patient: patientIds[i % patientIds.length]!, modality, urgency, centre: 'bench-county', from: 'bench-township' })).id);
    }
    const queue = 'query { readingQueue(centre: "bench-county", status: REQUESTED, _count: 20) { items { id modality urgency dueAt overdue requester { name } patient { id } } next } }';
    for (const concurrency of [1, 16]) {
      results.push(report(record(await measure('(i) reading queue page (20)', concurrency, requestsPerRun, () => postTo(hub.url, centreToken, queue, {}), hub.database)), 'page') + failed());
    }
    const claim = 'mutation($id: ID!) { claimReading(id: $id, reader: "基准医生") { status } }';
    let next = 0;
    for (const concurrency of [1, 16]) {
      results.push(report(record(await measure('(i) reading claim', concurrency, requestsPerRun, () => postTo(hub.url, centreToken, claim, { id: waiting[next++] }), hub.database))) + failed());
    }
  }
  // (h) member sync: this hub's FHIR REST as a member's server, pulled into a fresh database with fhir-kit-client.
  {
    const target = open(`bench_${stamp}_sync`);
    const targetStore = createHubStore(target.db, { listMaxResults: 100_000 });
    await targetStore.ensureIndexes();
    await targetStore.create({ resourceType: 'Organization', name: '基准同步成员' }, { id: 'bench-member' });
    const sync = new MemberSync(targetStore, target.db, { instance: 'bench', secret: benchSecret, pageSize: 500, requestTimeoutMs: 600_000 });
    await sync.ensureIndexes();
    await sync.register({ organization: 'bench-member', baseUrl: `${hub.url}/fhir`, auth: 'BEARER', bearerToken: accessToken, types: ['Patient', 'Encounter', 'Observation'] });
    const started = performance.now();
    const counts = await sync.sync('bench-member');
    const seconds = (performance.now() - started) / 1000;
    results.push(`(h) member sync over FHIR REST (Patient, Encounter, Observation): ${counts!.written} resources in ${seconds.toFixed(1)} s = ${(counts!.written / seconds).toFixed(0)} resources/s (invalid ${counts!.invalid})`);
    await target.db.dropDatabase();
    await target.close();
  }
  await hub.stop();
  results.push(`peak RSS of the process (hub and load generator): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  results.push(`\ntargets at c=1 (p50, ms): ${Object.entries(targets).map(([label, target]) => `${label.replace(/^\(\w\) /, '')} ${p50s[label]?.toFixed(0) ?? '?'} (≤ ${target})`).join(', ')}; import at c=16 ${importRuns[16]!.toFixed(0)}/s (≥ 1000)`);

  const cleanup = open(mainDb);
  await cleanup.db.dropDatabase();
  await cleanup.close();
  await embedded?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

/**
 * A resident treated at four members (four Patient records with one national ID), with 40 encounters, 100
 * observations and 20 reports at each: 640 history entries.
 */
async function seedHistoryPerson(open: (name: string) => DatabaseConnection, databaseName: string): Promise<{ nationalId: string; personId: string }> {
  const connection = open(databaseName);
  const store = createHubStore(connection.db, { listMaxResults: 100_000 });
  const nationalId = makeNationalId('430621', '1958-06-15', 77, 'female');
  const members = ['bench-provincial', 'bench-county', 'bench-township', 'bench-community'];
  const resources: Resource[] = [];
  members.forEach((member, m) => {
    resources.push({ resourceType: 'Organization', id: member, name: `基准成员${m + 1}`, alias: [`Bench member ${m + 1}`] });
    const patient = `${member}-rec`;
    resources.push({ resourceType: 'Patient', id: patient, identifier: [{ system: DEFAULT_NATIONAL_ID_SYSTEM, value: nationalId }, { system: `urn:bench:${member}:mrn`, value: `MRN${m}` }], name: [{ text: '刘桂兰' }], gender: 'female', birthDate: '1958-06-15', managingOrganization: { reference: `Organization/${member}` } });
    for (let e = 0; e < 40; e++) {
      const day = new Date(Date.UTC(2020, 0, 1) + (m * 40 + e) * 86_400_000 * 3).toISOString();
      resources.push({ resourceType: 'Encounter', id: `${member}-enc-${e}`, status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, type: [{ text: '门诊' }], subject: { reference: `Patient/${patient}` }, period: { start: day }, serviceProvider: { reference: `Organization/${member}` } });
      if (e % 2 === 0) resources.push({ resourceType: 'DiagnosticReport', id: `${member}-rep-${e}`, status: 'final', code: { text: '血常规' }, subject: { reference: `Patient/${patient}` }, effectiveDateTime: day, performer: [{ reference: `Organization/${member}` }] });
      for (let o = 0; o < (e < 20 ? 3 : 2); o++) {
        resources.push({ resourceType: 'Observation', id: `${member}-obs-${e}-${o}`, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '718-7' }], text: '血红蛋白' }, subject: { reference: `Patient/${patient}` }, effectiveDateTime: day, valueQuantity: { value: 120 + o, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' }, performer: [{ reference: `Organization/${member}` }] });
      }
    }
  });
  await store.putMany(resources);
  await connection.close();
  return { nationalId, personId: nationalIdPersonId(nationalId) };
}

await main();
process.exit(0);
