/**
 * What the hub does directly in the PostgreSQL database under FerretDB v1.24 (the embedded default).
 *
 * 1. Indexes. FerretDB pushes a top-level equality down to PostgreSQL as `_jsonb->'field' @> '<value>'` (which
 *    also matches an element of an array). Its own indexes are btree indexes on `_jsonb->'field'`, which cannot
 *    answer `@>`; a GIN index `USING gin ((_jsonb->'field') jsonb_path_ops)` can, in well under a millisecond.
 *    FerretDB cannot create those, so the hub does.
 * 2. Reads of current resource documents. FerretDB turns every document it reads from PostgreSQL into BSON
 *    in Go, at about 4 ms per query plus 0.1–0.4 ms per document on this machine, where PostgreSQL itself
 *    finds them through the GIN index in under a millisecond. So the store's hot reads (by id, by anchor; see
 *    fhir/storage/layout.ts) select the compact documents' few fields straight from PostgreSQL with the same
 *    condition FerretDB would push down, answered by the same indexes.
 * 3. Bulk inserts of new resource versions (the store's creates: an import, the audit trail). FerretDB spent
 *    more CPU on an import's inserts than PostgreSQL did (decoding BSON, re-encoding it, a transaction per
 *    command); the hub writes the same rows itself, in FerretDB's own JSON form (ferretdb-sjson.ts), one
 *    statement per collection, checked once per database by a probe written both ways that must come out the
 *    same. Updates, deletes and every other collection stay with FerretDB (it commits each write before it
 *    answers, so a read here sees it).
 *
 * Both couple the hub to FerretDB 1.24's storage layout: each MongoDB database is a PostgreSQL schema whose
 * `_ferretdb_database_metadata` table maps a collection name (`_jsonb->>'_id'`) to its table
 * (`_jsonb->>'table'`); each collection's table holds its documents in a `_jsonb` column, with the BSON type of
 * each field in `_jsonb->'$s'` (a binary field as base64 text, a date as milliseconds). The layout is checked
 * (the metadata table and column at first use, each read row's field types); where it does not match, one
 * warning is logged and the hub carries on without the indexes and reads through FerretDB: queries stay
 * correct, only slower.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Binary, type Db } from 'mongodb';
import { toFerretDbJson } from './ferretdb-sjson.ts';
import pg from 'pg';
import { Semaphore } from './semaphore.ts';

const METADATA_TABLE = '_ferretdb_database_metadata';
/** The collection of the direct-write check (directWrites); its documents live for the check only. */
const WRITE_PROBE = 'hub_write_probe';

/** A document with every kind of value the store writes, in the order it writes them. */
function writeProbe(): Record<string, unknown> {
  return {
    v: 1,
    ts: new Date(1_795_688_135_601),
    t: ['Patient/p1', 'urn:oid:1.2|01', '中文 "引号" \\ \n'],
    o_ts: 1_795_688_135_601,
    d: 0.1,
    n: -2_147_483_648,
    b: true,
    z: null,
    o: { a: [1, 2.5, 'x'], e: {} },
    x: new Binary(Buffer.from([0, 1, 2, 250, 255])),
    json: '{"resourceType":"Patient","name":[{"text":"张三"}]}',
  };
}

const quote = (identifier: string): string => `"${identifier.replace(/"/g, '""')}"`;
const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;

/** A current document as stored in the compact layout (src/fhir/storage/layout.ts), read from PostgreSQL. */
/** Reads through a whole table (no anchor) running at once on one instance. */
const HEAVY_READS = 1;

export interface CompactRow {
  _id: string;
  v: number;
  ts: Date;
  x: Buffer;
  /** the order key's value, in ordered reads (null where the document has none) */
  ord?: number | null;
  /** the uncommitted transaction it was written in (src/fhir/storage/transactions.ts) */
  p?: string;
}

/** Which compact documents to read: those whose `_id` is, or whose anchors `t` hold, one of the values; or all. */
export type CompactCondition = { field: '_id' | 't'; values: readonly string[] } | { all: true };

/**
 * An ordered read: a batch of documents by an order key (a top-level number; missing sorts as MongoDB sorts
 * it, first ascending and last descending), then `_id`, after the last document of the previous batch.
 */
export interface CompactOrder {
  key: string;
  direction: 1 | -1;
  limit: number;
  after?: { ord: number | null; id: string };
}

/** Field types readFields checks, as FerretDB names them (`array`: of strings). */
export type FieldType = 'string' | 'bool' | 'date' | 'array';

/** The hub's own table of exact counters in a database's schema (countersReady). */
const COUNTERS_TABLE = 'hub_counters';

/** The most values one read asks for (one SQL statement; more are split). */
const VALUES_PER_READ = 500;

export class FerretDbStorage {
  private readonly pool: pg.Pool;
  private readonly layouts = new Map<string, Promise<boolean>>();
  private readonly writeChecks = new Map<string, Promise<boolean>>();
  private readonly tables = new Map<string, string>();
  private warned = false;
  /** Set when a read row is not laid out as expected: reads go through FerretDB from then on. */
  private readsOff = false;
  private readonly statementListeners = new Set<(text: string, values: unknown[]) => void>();
  private readonly heavy = new Semaphore(HEAVY_READS);
  /** Direct reads sent (round trips to PostgreSQL), for the bench's round-trip counts. */
  statements = 0;

  constructor(
    url: string,
    private readonly warn: (message: string) => void = () => {},
    poolSize = 24,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: poolSize, idleTimeoutMillis: 30_000, application_name: 'consortium-hub' });
    this.pool.on('error', () => {}); // an idle client that lost its server; the next query reconnects
  }

  /** Whether the schema of a MongoDB database has FerretDB 1.24's metadata table with its `_jsonb` column. */
  private layoutMatches(schema: string): Promise<boolean> {
    let checked = this.layouts.get(schema);
    if (!checked) {
      checked = this.pool
        .query<{ n: string }>(`SELECT count(*) AS n FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = '_jsonb' AND data_type = 'jsonb'`, [schema, METADATA_TABLE])
        .then((result) => Number(result.rows[0]?.n) === 1);
      checked.catch(() => this.layouts.delete(schema));
      this.layouts.set(schema, checked);
    }
    return checked;
  }

  private notMatching(detail: string): void {
    if (this.warned) return;
    this.warned = true;
    this.warn(`FerretDB's PostgreSQL storage is not laid out as in FerretDB 1.24 (${detail}); carrying on without the hub's GIN indexes and direct reads: queries stay correct but slower`);
  }

  /** The PostgreSQL table of a collection, or undefined (not created yet). Known tables are remembered. */
  private async tableOf(schema: string, collection: string): Promise<string | undefined> {
    const key = `${schema}\0${collection}`;
    const known = this.tables.get(key);
    if (known) return known;
    const result = await this.pool.query<{ table: string }>(`SELECT _jsonb->>'table' AS table FROM ${quote(schema)}.${quote(METADATA_TABLE)} WHERE _jsonb->>'_id' = $1`, [collection]);
    const table = result.rows[0]?.table ?? undefined;
    if (table) this.tables.set(key, table);
    return table;
  }

  /**
   * Creates the missing GIN indexes on top-level fields of a collection (which must exist), and btree indexes on
   * its order keys (`ordered`), which give an ordered read its first page without sorting the collection.
   */
  async ensure(schema: string, collection: string, fields: string[], ordered: string[] = []): Promise<void> {
    if (!(await this.layoutMatches(schema))) return this.notMatching(`no ${schema}.${METADATA_TABLE} with a jsonb _jsonb column`);
    const table = await this.tableOf(schema, collection);
    if (!table) return this.notMatching(`no table for collection ${collection}`);
    // Documents up to 8 kB stay in the row uncompressed. PostgreSQL would otherwise compress every document over
    // 2 kB (most FHIR resources) and decompress it whole at each access to one of its fields: measured 4× slower
    // reads. Applies to rows written from now on.
    await this.pool.query(`ALTER TABLE ${quote(schema)}.${quote(table)} SET (toast_tuple_target = 8160)`);
    for (const field of fields) {
      const name = `hub_gin_${createHash('sha256').update(`${table}\0${field}`).digest('hex').slice(0, 20)}`;
      // fastupdate off: new entries go straight into the index instead of a pending list that every lookup
      // would scan until the next vacuum (measured: reads several times slower right after an import).
      await this.createIndex(`CREATE INDEX IF NOT EXISTS ${quote(name)} ON ${quote(schema)}.${quote(table)} USING gin ((_jsonb->${literal(field)}) jsonb_path_ops) WITH (fastupdate = off)`);
      await this.pool.query(`ALTER INDEX ${quote(schema)}.${quote(name)} SET (fastupdate = off)`);
    }
    for (const field of ordered) {
      // DESC NULLS LAST: ordered reads ask for exactly that, or for its mirror (ASC NULLS FIRST, the same index
      // read backwards), so the newest page of an anchor can be read in index order and stop at its limit. (An
      // index in the default order serves neither; the first one this hub made was such, and is dropped.)
      const hash = (suffix: string): string => createHash('sha256').update(`${table}\0${field}${suffix}`).digest('hex').slice(0, 20);
      await this.pool.query(`DROP INDEX IF EXISTS ${quote(schema)}.${quote(`hub_ord_${hash('')}`)}`);
      const name = `hub_ord_${hash('\0desc')}`;
      await this.createIndex(`CREATE INDEX IF NOT EXISTS ${quote(name)} ON ${quote(schema)}.${quote(table)} ((_jsonb->${literal(field)}) DESC NULLS LAST)`);
    }
  }

  /**
   * One document of a small collection by `_id`, straight from PostgreSQL (FerretDB's unique `_id` index), with
   * the named top-level fields: `null` when there is none; `undefined` when the storage, or a field's type as
   * FerretDB recorded it, is not as expected (the caller reads through FerretDB). For lookups on every request
   * (the client registry): a FerretDB round trip costs several times more.
   */
  async readFields(schema: string, collection: string, id: string, fields: Record<string, FieldType>): Promise<Record<string, unknown> | null | undefined> {
    if (this.readsOff || !(await this.layoutMatches(schema))) return undefined;
    const table = await this.tableOf(schema, collection);
    if (!table) return null;
    const names = Object.keys(fields);
    const text = `SELECT j->'$s'->'p' AS types, ${names.map((name, i) => `j->${literal(name)} AS f${i}`).join(', ')} FROM (SELECT _jsonb AS j FROM ${quote(schema)}.${quote(table)} WHERE _jsonb->'_id' = $1::jsonb OFFSET 0) AS found`;
    const values = [JSON.stringify(id)];
    this.statements++;
    for (const listener of this.statementListeners) listener(text, values);
    const { rows } = await this.pool.query<Record<string, unknown>>({ text, values, query_timeout: 10_000 } as pg.QueryConfig);
    const row = rows[0];
    if (!row) return null;
    const types = (row.types ?? {}) as Record<string, { t?: string } | undefined>;
    const document: Record<string, unknown> = {};
    for (const [i, name] of names.entries()) {
      const value = row[`f${i}`];
      const type = types[name]?.t;
      if (value === null || value === undefined) {
        if (type !== undefined && type !== 'null') return undefined;
        continue;
      }
      const expected = fields[name]!;
      const fits =
        type === expected &&
        (expected === 'string' ? typeof value === 'string' : expected === 'bool' ? typeof value === 'boolean' : expected === 'date' ? typeof value === 'number' : Array.isArray(value) && value.every((item) => typeof item === 'string'));
      if (!fits) {
        this.notMatching(`a ${collection} document's field ${name} is typed ${type ?? 'unknown'}`);
        return undefined;
      }
      document[name] = expected === 'date' ? new Date(value as number) : value;
    }
    return document;
  }

  /**
   * Prepares exact counters in FerretDB's PostgreSQL database, beside a MongoDB database's collections: an
   * UNLOGGED table `hub_counters` in its schema (counts that a crash of PostgreSQL may forget). False when the
   * schema is not FerretDB 1.24's (the caller counts with documents instead). The schema must exist already.
   */
  async countersReady(schema: string): Promise<boolean> {
    if (!(await this.layoutMatches(schema))) return false;
    await this.createIndex(`CREATE UNLOGGED TABLE IF NOT EXISTS ${quote(schema)}.${COUNTERS_TABLE} (k text PRIMARY KEY, n bigint NOT NULL, t bigint NOT NULL, until timestamptz NOT NULL)`);
    return true;
  }

  /**
   * Takes up to `units` of a key's count, never past `limit`, in one statement that PostgreSQL makes atomic
   * (an upsert that adds only while the count is under the limit): exact for any number of concurrent callers
   * and hub instances. Returns how many were taken and whether they were the key's first.
   */
  async takeUnits(schema: string, key: string, units: number, limit: number, until: Date): Promise<{ taken: number; first: boolean }> {
    const cap = Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : Number.MAX_SAFE_INTEGER;
    const text =
      `INSERT INTO ${quote(schema)}.${COUNTERS_TABLE} AS c (k, n, t, until) VALUES ($1, LEAST($2::bigint, $3::bigint), LEAST($2::bigint, $3::bigint), $4) ` +
      `ON CONFLICT (k) DO UPDATE SET n = LEAST(c.n + $2::bigint, $3::bigint), t = LEAST(c.n + $2::bigint, $3::bigint) - c.n, until = GREATEST(c.until, $4) WHERE c.n < $3::bigint ` +
      'RETURNING n, t';
    const run = (): Promise<pg.QueryResult<{ n: string; t: string }>> => this.pool.query({ text, values: [key, units, cap, until], query_timeout: 10_000 } as pg.QueryConfig);
    let result;
    try {
      result = await run();
    } catch (error) {
      // The table went with its database (dropDatabase drops the schema): make it again, once.
      if ((error as { code?: string }).code !== '42P01' || !(await this.countersReady(schema))) throw error;
      result = await run();
    }
    const row = result.rows[0];
    if (!row) return { taken: 0, first: false };
    const taken = Number(row.t);
    return { taken, first: taken > 0 && Number(row.n) === taken };
  }

  /** Removes the counters whose time is over. */
  async dropExpiredUnits(schema: string, now: Date): Promise<void> {
    await this.pool.query(`DELETE FROM ${quote(schema)}.${COUNTERS_TABLE} WHERE until < $1`, [now]);
  }

  /**
   * CREATE INDEX IF NOT EXISTS, where two processes creating the same index at once (two hubs starting, or a hub
   * and a seed) is success: PostgreSQL lets both pass the "if not exists" and refuses the second with a unique
   * violation on its catalog (23505) or duplicate relation (42P07).
   */
  private async createIndex(statement: string): Promise<void> {
    try {
      await this.pool.query(statement);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== '23505' && code !== '42P07') throw error;
    }
  }

  /**
   * The compact documents of a collection matching a condition (`_id` as FerretDB's own unique index has it,
   * an anchor with `@>` through the GIN index, as FerretDB's pushdown would), straight from PostgreSQL, each at
   * most once; `[]` for a collection not created yet; undefined when the storage is not laid out as expected
   * (the caller reads through FerretDB). With `order`, one batch of them in that order.
   */
  async readCompact(schema: string, collection: string, condition: CompactCondition, timeoutMs: number, order?: CompactOrder): Promise<CompactRow[] | undefined> {
    if (this.readsOff) return undefined;
    if (!(await this.layoutMatches(schema))) {
      this.notMatching(`no ${schema}.${METADATA_TABLE} with a jsonb _jsonb column`);
      return undefined;
    }
    // Reads without an anchor go through the whole table (in order, or all of it): at most HEAVY_READS of them
    // run at once on this instance, so that a client sending many cannot take every core of the database from
    // the reads by id and by anchor of everyone else (which never wait for this lane).
    if ('all' in condition) {
      const started = Date.now();
      return this.heavy.run(() => this.selectCompact(schema, collection, condition, timeoutMs - (Date.now() - started), order, true));
    }
    if (order) return this.selectCompact(schema, collection, condition, timeoutMs, order, true);
    const rows: CompactRow[] = [];
    const seen = new Set<string>();
    for (let start = 0; start < condition.values.length; start += VALUES_PER_READ) {
      const chunk = { field: condition.field, values: condition.values.slice(start, start + VALUES_PER_READ) };
      const found = await this.selectCompact(schema, collection, chunk, timeoutMs, undefined, true);
      if (!found) return undefined;
      for (const row of found) if (!seen.has(row._id)) rows.push(row), seen.add(row._id);
    }
    return rows;
  }

  private async selectCompact(schema: string, collection: string, condition: CompactCondition, timeoutMs: number, order: CompactOrder | undefined, retry: boolean): Promise<CompactRow[] | undefined> {
    const table = await this.tableOf(schema, collection);
    if (!table) return [];
    const values: unknown[] = [];
    const parameter = (value: unknown): string => `$${values.push(value)}`;
    const conditions: string[] = [];
    if (!('all' in condition)) {
      if (condition.values.length > VALUES_PER_READ) throw new Error(`readCompact: at most ${VALUES_PER_READ} values`);
      const json = condition.values.map((value) => JSON.stringify(value));
      conditions.push(condition.field === '_id' ? `_jsonb->'_id' = ANY(${parameter(json)}::jsonb[])` : `(${json.map((value) => `(_jsonb->'t') @> ${parameter(value)}::jsonb`).join(' OR ')})`);
    }
    let orderBy = '';
    if (order) {
      const key = `(_jsonb->${literal(order.key)})`;
      const after = order.after;
      if (after) {
        const id = parameter(JSON.stringify(after.id));
        const nextId = `(_jsonb->'_id') > ${id}::jsonb`;
        if (after.ord === null) conditions.push(order.direction === -1 ? `(${key} IS NULL AND ${nextId})` : `((${key} IS NULL AND ${nextId}) OR ${key} IS NOT NULL)`);
        else {
          const ord = parameter(JSON.stringify(after.ord));
          const beyond = order.direction === -1 ? `${key} < ${ord}::jsonb OR ${key} IS NULL` : `${key} > ${ord}::jsonb`;
          conditions.push(`(${beyond} OR (${key} = ${ord}::jsonb AND ${nextId}))`);
        }
      }
      orderBy = ` ORDER BY ${key} ${order.direction === -1 ? 'DESC NULLS LAST' : 'ASC NULLS FIRST'}, (_jsonb->'_id') ASC LIMIT ${Math.max(1, Math.floor(order.limit))}`;
    }
    // The document is taken once (OFFSET 0 keeps the subquery from being folded into the outer query, which
    // keeps its order), then its fields: each `->` on the column would fetch the document again.
    const text =
      `SELECT j->>'_id' AS id, j->>'v' AS v, j->>'ts' AS ts, j->>'x' AS x, j->>'p' AS p, ${order ? `j->>${literal(order.key)}` : 'NULL'} AS ord, ` +
      `concat_ws(' ', j->'$s'->'p'->'_id'->>'t', j->'$s'->'p'->'v'->>'t', j->'$s'->'p'->'ts'->>'t', j->'$s'->'p'->'x'->>'t') AS types ` +
      `FROM (SELECT _jsonb AS j FROM ${quote(schema)}.${quote(table)}${conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''}${orderBy} OFFSET 0) AS found`;
    let result: pg.QueryResult<{ id: string; v: string; ts: string; x: string; p: string | null; ord: string | null; types: string | null }>;
    this.statements++;
    for (const listener of this.statementListeners) listener(text, values);
    try {
      result = await this.pool.query({ text, values, query_timeout: Math.max(1, timeoutMs) } as pg.QueryConfig);
    } catch (error) {
      // The collection was dropped (and perhaps created again as another table) since its table was looked up.
      if (retry && (error as { code?: string }).code === '42P01') {
        this.tables.delete(`${schema}\0${collection}`);
        return this.selectCompact(schema, collection, condition, timeoutMs, order, false);
      }
      throw error;
    }
    const rows: CompactRow[] = [];
    for (const row of result.rows) {
      if (row.types !== 'string int date binData') {
        this.readsOff = true;
        this.notMatching(`a ${collection} document's fields are typed ${row.types || 'unknown'}`);
        return undefined;
      }
      rows.push({ _id: row.id, v: Number(row.v), ts: new Date(Number(row.ts)), x: Buffer.from(row.x, 'base64'), ...(row.p ? { p: row.p } : {}), ...(order ? { ord: row.ord === null ? null : Number(row.ord) } : {}) });
    }
    return rows;
  }

  /**
   * Inserts new documents of a collection straight into its PostgreSQL table, in FerretDB 1.24's own form
   * (ferretdb-sjson.ts), in one statement; FerretDB's unique `_id` index refuses a taken id as it would. Returns
   * the indexes of the documents whose `_id` was taken (by a stored document or an earlier one of the same
   * call), as the driver's unordered insert reports them; or undefined where this cannot be done — the storage
   * or a document not as expected, the collection not created yet, any error — and nothing was written: the
   * caller inserts through FerretDB. Checked once per database against FerretDB's own write (directWrites).
   */
  async insertDocuments(db: Db, collection: string, documents: Record<string, unknown>[]): Promise<Set<number> | undefined> {
    if (documents.length === 0 || !(await this.directWrites(db))) return undefined;
    const schema = db.databaseName;
    const table = await this.tableOf(schema, collection);
    if (!table) return undefined;
    const texts: string[] = [];
    for (const document of documents) {
      if (typeof document._id !== 'string' || Object.keys(document)[0] !== '_id') return undefined;
      const text = toFerretDbJson(document);
      if (text === undefined) return undefined;
      texts.push(text);
    }
    // One JSON array as the parameter: as a text[] the client library escaped every document again (a third of
    // the insert's CPU in the hub).
    const statement = `INSERT INTO ${quote(schema)}.${quote(table)} (_jsonb) SELECT d FROM jsonb_array_elements($1::jsonb) AS d ON CONFLICT DO NOTHING RETURNING _jsonb->>'_id' AS id`;
    this.statements++;
    let result: pg.QueryResult<{ id: string }>;
    try {
      result = await this.pool.query<{ id: string }>(statement, [`[${texts.join(',')}]`]);
    } catch (error) {
      if ((error as { code?: string }).code === '42P01') this.tables.delete(`${schema}\0${collection}`);
      return undefined;
    }
    const inserted = new Set(result.rows.map((row) => row.id));
    const taken = new Set<number>();
    documents.forEach((document, index) => {
      if (inserted.has(document._id as string)) inserted.delete(document._id as string);
      else taken.add(index);
    });
    return taken;
  }

  /**
   * Whether direct inserts write what FerretDB writes, decided once per database: a probe document with every
   * type the store's documents hold, inserted through FerretDB and directly, must be the same `_jsonb`.
   */
  private directWrites(db: Db): Promise<boolean> {
    let checked = this.writeChecks.get(db.databaseName);
    if (!checked) {
      checked = (async () => {
        if (this.readsOff || !(await this.layoutMatches(db.databaseName))) return false;
        const probe = db.collection<{ _id: string } & Record<string, unknown>>(WRITE_PROBE);
        const id = `probe-${randomUUID()}`;
        const content = writeProbe();
        await probe.insertOne({ _id: `${id}-ferretdb`, ...content });
        try {
          await this.ensure(db.databaseName, WRITE_PROBE, ['_id']); // its read below, like every read, by an index
          const table = await this.tableOf(db.databaseName, WRITE_PROBE);
          const text = toFerretDbJson({ _id: `${id}-direct`, ...content });
          if (!table || !text) return this.writesNotMatching('no probe table');
          await this.pool.query(`INSERT INTO ${quote(db.databaseName)}.${quote(table)} (_jsonb) VALUES ($1::jsonb)`, [text]);
          const same = await this.pool.query<{ same: boolean }>(
            `SELECT (a._jsonb - '_id') = (b._jsonb - '_id') AS same FROM ${quote(db.databaseName)}.${quote(table)} a, ${quote(db.databaseName)}.${quote(table)} b WHERE a._jsonb->>'_id' = $1 AND b._jsonb->>'_id' = $2`,
            [`${id}-ferretdb`, `${id}-direct`],
          );
          // And FerretDB reads the direct one back as what was meant.
          const back = await probe.findOne({ _id: `${id}-direct` });
          if (same.rows[0]?.same !== true || !back || JSON.stringify({ ...back, _id: 0 }) !== JSON.stringify({ _id: 0, ...content })) return this.writesNotMatching('a probe document written directly differs from FerretDB\'s');
          return true;
        } finally {
          // One `_id` equality each: what FerretDB pushes down (an `$in` it would not).
          for (const written of [`${id}-ferretdb`, `${id}-direct`]) await probe.deleteOne({ _id: written });
        }
      })();
      checked.catch(() => this.writeChecks.delete(db.databaseName));
      this.writeChecks.set(db.databaseName, checked);
    }
    return checked.catch(() => false);
  }

  private writesNotMatching(detail: string): false {
    this.warn(`FerretDB's PostgreSQL storage does not take the hub's direct inserts as FerretDB 1.24 does (${detail}); writes go through FerretDB: correct but slower`);
    return false;
  }

  /** Calls `listener` with every read statement sent from now on (as command monitoring does for the driver); returns the unsubscribe. */
  onStatement(listener: (text: string, values: unknown[]) => void): () => void {
    this.statementListeners.add(listener);
    return () => this.statementListeners.delete(listener);
  }

  /**
   * After a bulk import: vacuums and analyzes a database's tables. Without statistics, right after a bulk
   * import into new tables, the planner takes them for tiny and scans instead of using the indexes; and the
   * autovacuum that would otherwise catch up over the next minutes competes with the first requests for CPU.
   */
  async analyze(schema: string): Promise<void> {
    if (!(await this.layoutMatches(schema))) return;
    const tables = await this.pool.query<{ table: string }>(`SELECT _jsonb->>'table' AS table FROM ${quote(schema)}.${quote(METADATA_TABLE)}`);
    for (const { table } of tables.rows) await this.pool.query(`VACUUM (ANALYZE) ${quote(schema)}.${quote(table)}`);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

const byDatabase = new WeakMap<Db, FerretDbStorage>();

/** Tells index creation (indexes.ts) and the store that this database lives in FerretDB's PostgreSQL backend. */
export function useFerretDbStorage(db: Db, storage: FerretDbStorage): void {
  byDatabase.set(db, storage);
}

export function ferretDbStorageOf(db: Db): FerretDbStorage | undefined {
  return byDatabase.get(db);
}
