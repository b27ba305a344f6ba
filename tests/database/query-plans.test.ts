import { readFileSync } from 'node:fs';
import type { Bundle } from '@medplum/fhirtypes';
import type { CommandStartedEvent, Document } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { ferretDbStorageOf } from '../../src/database/ferretdb-storage.ts';
import { BundleImporter } from '../../src/fhir/bundles.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, postgresUrl, type TestDatabase } from '../support/hub.ts';
import { syntheaFiles } from '../support/sample-data.ts';

/**
 * Every query the bench's requests send (npm run bench: read by id, patient summary, code + date search,
 * history pages, a Bundle import) is answered by an index — asserted from the plans, not from timings:
 *
 * - what the hub asks FerretDB: FerretDB's `explain` must report the filter pushed down to PostgreSQL, and
 *   PostgreSQL's EXPLAIN of the pushed-down condition (FerretDB's `_jsonb->'k' @> '<value>'` for each top-level
 *   equality) must use an index;
 * - what the hub reads from PostgreSQL directly (database/ferretdb-storage.ts): PostgreSQL's EXPLAIN of the very
 *   statement, with its parameters, must use an index.
 *
 * Sequential scans are switched off for the EXPLAINs: on tables as small as a test's, a scan is cheaper and
 * PostgreSQL would rightly choose it; the question here is whether an index can answer, which it then shows.
 */
const postgres = postgresUrl();

/** Maintenance queries, not sent per request: once a minute per hub instance, over collections kept small. */
const maintenance = [
  { collection: 'rate_limit_slots', keys: 'until', why: 'removing the slots of past minutes (once a minute per instance)' },
  { collection: 'write_intents', keys: '', why: 'the pass over half-done writes (at start and once a minute)' },
];

let database: TestDatabase;
let hub: Hub;
let client: pg.Client;

interface Sent {
  label: string;
  command: string;
  collection: string;
  filter: Document;
}

/** The filters of the commands a hub sends while `work` runs (inserts have none), and its direct SQL reads. */
async function capture(label: string, work: () => Promise<unknown>, commands: Sent[], statements: { label: string; text: string; values: unknown[] }[]): Promise<void> {
  const listener = (event: CommandStartedEvent): void => {
    const c = event.command;
    const name = event.commandName;
    const collection = String(c[name]);
    const add = (filter: Document | undefined): void => void (filter && commands.push({ label, command: name, collection, filter }));
    if (name === 'find') add(c.filter ?? {});
    else if (name === 'count') add(c.query ?? {});
    else if (name === 'findAndModify') add(c.query);
    else if (name === 'aggregate') add((c.pipeline as Document[])[0]?.$match ?? {});
    else if (name === 'update') for (const update of c.updates as Document[]) add(update.q);
    else if (name === 'delete') for (const deletion of c.deletes as Document[]) add(deletion.q);
  };
  hub.database.client.on('commandStarted', listener);
  const unsubscribe = ferretDbStorageOf(hub.database.db)!.onStatement((text, values) => statements.push({ label, text, values }));
  try {
    await work();
  } finally {
    hub.database.client.off('commandStarted', listener);
    unsubscribe();
  }
}

async function tableOf(collection: string): Promise<string> {
  const { rows } = await client.query<{ table: string }>(`SELECT _jsonb->>'table' AS table FROM "${database.name}"._ferretdb_database_metadata WHERE _jsonb->>'_id' = $1`, [collection]);
  if (!rows[0]) throw new Error(`no table for ${collection}`);
  return rows[0].table;
}

/** The plan's node types, depth first. */
function nodeTypes(plan: Document): string[] {
  return [plan['Node Type'] as string, ...((plan.Plans as Document[] | undefined) ?? []).flatMap(nodeTypes)];
}

async function explain(text: string, values: unknown[]): Promise<string[]> {
  await client.query('BEGIN');
  try {
    await client.query('SET LOCAL enable_seqscan = off');
    const { rows } = await client.query<{ 'QUERY PLAN': Document[] }>(`EXPLAIN (FORMAT JSON) ${text}`, values);
    return nodeTypes(rows[0]!['QUERY PLAN'][0]!.Plan as Document);
  } finally {
    await client.query('ROLLBACK');
  }
}

const usesIndex = (types: string[]): boolean => !types.includes('Seq Scan') && types.some((type) => /Index/.test(type));

describe.skipIf(!postgres)('query plans of the bench requests (FerretDB on PostgreSQL)', () => {
  const commands: Sent[] = [];
  const statements: { label: string; text: string; values: unknown[] }[] = [];

  beforeAll(async () => {
    ({ database, hub } = await authenticatedDemoHub('plans'));
    client = new pg.Client({ connectionString: postgres });
    await client.connect();
    const bearer = await token(hub.url, 'his-donghu-county');
    const observation = (await hub.store.search('Observation', { _count: 1 })).resources[0]!;
    const code = (observation as { code: { coding: { system: string; code: string }[] } }).code.coding[0]!;
    const patientId = (observation as { subject: { reference: string } }).subject.reference.split('/')[1]!;
    const ask = async (query: string, variables: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const answer = await graphql(hub.url, query, variables, bearer);
      expect(answer.errors).toBeUndefined();
      return answer.data!;
    };
    await capture('read by id', () => ask('query($id: ID!) { Observation(id: $id) { id status } }', { id: observation.id }), commands, statements);
    await capture(
      'patient summary',
      () =>
        ask(
          `query($id: ID!) { Patient(id: $id) { id EncounterList(_reference: "patient") { id } ObservationList(_reference: "patient") { id }
            DiagnosticReportList(_reference: "patient") { id result { resource { ... on Observation { id } } } performer { resource { ... on Organization { name } } } } } }`,
          { id: patientId },
        ),
      commands,
      statements,
    );
    await capture('code + date search', () => ask('query($code: String) { ObservationList(code: $code, date: "ge2000-01-01", _count: 50, _sort: "-date") { id } }', { code: `${code.system}|${code.code}` }), commands, statements);
    await capture(
      'history pages',
      async () => {
        const first = (await ask('query { patientHistory(identifier: "43062120021114011X", first: 5) { next entries { reference } } }', {})) as { patientHistory: { next: string } };
        await ask('query($after: String) { patientHistory(identifier: "43062120021114011X", first: 5, after: $after) { entries { reference } } }', { after: first.patientHistory.next });
      },
      commands,
      statements,
    );
    const rest = async (path: string): Promise<void> => {
      const response = await fetch(`${hub.url}/fhir/${path}`, { headers: { authorization: `Bearer ${bearer}` } });
      expect(response.status, path).toBe(200);
    };
    await capture(
      'REST searches',
      async () => {
        await rest(`Observation?subject=Patient/${patientId}&_count=1000`);
        // What a member's sync asks: changes since a time, in the order of the last update.
        await rest(`Observation?_lastUpdated=ge${encodeURIComponent(new Date(Date.now() - 3600_000).toISOString())}&_sort=_lastUpdated&_count=100`);
      },
      commands,
      statements,
    );
    const { providers, patients: [file] } = syntheaFiles();
    for (const provider of providers) await new BundleImporter(hub.store).import(JSON.parse(readFileSync(provider, 'utf8')) as Bundle);
    await capture('import', () => new BundleImporter(hub.store).import(JSON.parse(readFileSync(file!, 'utf8')) as Bundle), commands, statements);
  }, 120_000);
  afterAll(async () => {
    await client?.end();
    await hub?.stop();
    await database?.drop();
  });

  it('sends every request kind of the bench, and reads PostgreSQL directly for the resource queries', () => {
    expect(new Set([...commands, ...statements].map((sent) => sent.label))).toEqual(new Set(['read by id', 'patient summary', 'code + date search', 'history pages', 'REST searches', 'import']));
    for (const label of ['read by id', 'patient summary', 'code + date search', 'history pages', 'REST searches']) expect(statements.some((statement) => statement.label === label)).toBe(true);
  });

  it('FerretDB pushes every filter down, and PostgreSQL answers it from an index', async () => {
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const sent of commands) {
      const keys = Object.keys(sent.filter).sort().join(',');
      if (maintenance.some((entry) => entry.collection === sent.collection && entry.keys === keys)) continue;
      const key = `${sent.collection}(${keys})`;
      if (seen.has(key)) continue; // one of each shape
      seen.add(key);
      const plan = await hub.database.db.command({ explain: { find: sent.collection, filter: sent.filter } });
      const where = Object.entries(sent.filter)
        .filter(([field, value]) => !field.startsWith('$') && ['string', 'number', 'boolean'].includes(typeof value))
        .map(([field, value]) => `(_jsonb->'${field}') @> '${JSON.stringify(value).replace(/'/g, "''")}'::jsonb`);
      const types = where.length === 0 ? [] : await explain(`SELECT _jsonb FROM "${database.name}"."${await tableOf(sent.collection)}" WHERE ${where.join(' AND ')}`, []);
      if (plan.filterPushdown !== true || !usesIndex(types)) problems.push(`${sent.label}: ${sent.command} ${sent.collection} ${JSON.stringify(sent.filter)} pushdown=${plan.filterPushdown} plan=${types.join('>') || 'none'}`);
    }
    expect(problems).toEqual([]);
    // Among them: a person's manual links, and the write intent of an import.
    expect([...seen]).toEqual(expect.arrayContaining(['person_links(_id)', 'write_intents(_id)']));
  });

  it('PostgreSQL answers every direct read from an index', async () => {
    const problems: string[] = [];
    for (const statement of statements) {
      const types = await explain(statement.text, statement.values);
      if (!usesIndex(types)) problems.push(`${statement.label}: ${statement.text.slice(0, 300)} plan=${types.join('>')}`);
    }
    expect(problems).toEqual([]);
    expect(statements.length).toBeGreaterThan(4);
    // The client behind a token is read directly too, at every request (its rate-limit count is one upsert on the
    // primary key of the hub's counter table: not a read, and not listed here).
    const clients = await tableOf('clients');
    expect(statements.some((statement) => statement.label === 'read by id' && statement.text.includes(`"${clients}"`))).toBe(true);
  });
});
