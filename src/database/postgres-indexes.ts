/**
 * Indexes FerretDB's PostgreSQL backend can use for the hub's queries.
 *
 * FerretDB v1.24 pushes a top-level equality down to PostgreSQL as `_jsonb->'field' @> '<value>'` (which also
 * matches an element of an array). Its own indexes are btree indexes on `_jsonb->'field'`, which cannot answer
 * `@>`; a GIN index `USING gin ((_jsonb->'field') jsonb_path_ops)` can, in well under a millisecond. FerretDB
 * cannot create those, so the hub does, directly in PostgreSQL, on the tables FerretDB keeps the collections
 * in. That couples the hub to FerretDB 1.24's storage layout: each MongoDB database is a PostgreSQL schema whose
 * `_ferretdb_database_metadata` table maps a collection name (`_jsonb->>'_id'`) to its table
 * (`_jsonb->>'table'`), and each collection's table holds its documents in a `_jsonb` column. The layout is
 * checked first; where it does not match, one warning is logged and the hub carries on without these indexes
 * (queries stay correct, only slower).
 */
import { createHash } from 'node:crypto';
import type { Db } from 'mongodb';
import pg from 'pg';

const METADATA_TABLE = '_ferretdb_database_metadata';

const quote = (identifier: string): string => `"${identifier.replace(/"/g, '""')}"`;
const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;

export class FerretDbPostgresIndexes {
  private readonly pool: pg.Pool;
  private readonly layouts = new Map<string, Promise<boolean>>();
  private warned = false;

  constructor(
    url: string,
    private readonly warn: (message: string) => void = () => {},
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 2, idleTimeoutMillis: 10_000 });
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
    this.warn(`FerretDB's PostgreSQL storage is not laid out as in FerretDB 1.24 (${detail}); carrying on without the hub's GIN indexes: queries stay correct but slower`);
  }

  /** The PostgreSQL table of a collection, or undefined (not created yet, or an unknown layout). */
  private async tableOf(schema: string, collection: string): Promise<string | undefined> {
    const result = await this.pool.query<{ table: string }>(`SELECT _jsonb->>'table' AS table FROM ${quote(schema)}.${quote(METADATA_TABLE)} WHERE _jsonb->>'_id' = $1`, [collection]);
    return result.rows[0]?.table ?? undefined;
  }

  /** Creates the missing GIN indexes on top-level fields of a collection (which must exist). */
  async ensure(schema: string, collection: string, fields: string[]): Promise<void> {
    if (!(await this.layoutMatches(schema))) return this.notMatching(`no ${schema}.${METADATA_TABLE} with a jsonb _jsonb column`);
    const table = await this.tableOf(schema, collection);
    if (!table) return this.notMatching(`no table for collection ${collection}`);
    for (const field of fields) {
      const name = `hub_gin_${createHash('sha256').update(`${table}\0${field}`).digest('hex').slice(0, 20)}`;
      await this.pool.query(`CREATE INDEX IF NOT EXISTS ${quote(name)} ON ${quote(schema)}.${quote(table)} USING gin ((_jsonb->${literal(field)}) jsonb_path_ops)`);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

const byDatabase = new WeakMap<Db, FerretDbPostgresIndexes>();

/** Tells index creation (indexes.ts) that this database lives in FerretDB's PostgreSQL backend at `indexes`. */
export function usePostgresIndexes(db: Db, indexes: FerretDbPostgresIndexes): void {
  byDatabase.set(db, indexes);
}

export function postgresIndexesOf(db: Db): FerretDbPostgresIndexes | undefined {
  return byDatabase.get(db);
}
