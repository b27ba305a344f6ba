/**
 * `TConnection`: paged search with opaque cursors that stay correct when resources are inserted between
 * pages. Paging is by key (the sort values and id of the last resource seen), never by offset, so a new
 * resource moves no existing one to another page. A cursor carries the search arguments, the sort, the
 * direction and the key; it is base64url JSON, opaque to clients.
 */
import type { Resource } from '@medplum/fhirtypes';
import { badInput } from '../errors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { compileSearch, type SearchArguments } from './search-query.ts';
import type { FhirRepository } from './repository.ts';

export interface ConnectionPage {
  /** Total matches, counted only when asked for. */
  count: () => Promise<number>;
  /** Position of the page's first resource; null for the last page (not known without counting). */
  offset: number | null;
  pagesize: number;
  first: string;
  previous: string | null;
  next: string | null;
  last: string;
  edges: { mode: 'match'; score: null; resource: Resource }[];
}

interface Cursor {
  /** search arguments without paging */
  a: SearchArguments;
  /** page size */
  n: number;
  /** where: start, end, after a key, before a key */
  w: 's' | 'e' | 'a' | 'b';
  /** the key: sort values, the id last (dates as `{ d: iso }`) */
  k?: unknown[];
  /** offset of the page this cursor leads to, as far as known */
  o: number;
}

const MAX_CURSOR_LENGTH = 8192;

function connectionCursor(cursor: Cursor): string {
  const key = cursor.k?.map((value) => (value instanceof Date ? { d: value.toISOString() } : value));
  return encodeCursor({ ...cursor, k: key });
}

function decodeKeyValue(value: unknown): unknown {
  if (value && typeof value === 'object' && typeof (value as { d?: unknown }).d === 'string') {
    const date = new Date((value as { d: string }).d);
    if (Number.isNaN(date.getTime())) throw badInput('_cursor is not a cursor this hub issued', ['_cursor']);
    return date;
  }
  if (value !== null && typeof value !== 'string' && typeof value !== 'number') throw badInput('_cursor is not a cursor this hub issued', ['_cursor']);
  return value;
}

function readConnectionCursor(text: string): Cursor {
  return decodeCursor(
    text,
    '_cursor',
    (value) => {
      const cursor = value as Cursor;
      const valid =
        cursor && typeof cursor === 'object' && typeof cursor.a === 'object' && cursor.a !== null && !Array.isArray(cursor.a) &&
        Number.isInteger(cursor.n) && cursor.n > 0 && ['s', 'e', 'a', 'b'].includes(cursor.w) && Number.isInteger(cursor.o) &&
        (cursor.k === undefined || Array.isArray(cursor.k)) &&
        Object.values(cursor.a).every((item) => typeof item === 'string');
      if (!valid) throw new Error('not a connection cursor');
      return { ...cursor, k: cursor.k?.map(decodeKeyValue) };
    },
    MAX_CURSOR_LENGTH,
  );
}

/** Keys usable for keyset paging: one value per resource (not arrays of tokens). */
function sortFields(type: string, sortArgument: string | undefined): Record<string, 1 | -1> {
  const { sort } = compileSearch(type, sortArgument ? { _sort: sortArgument } : {});
  for (const field of Object.keys(sort)) {
    if (field !== '_id' && field !== 'ts' && !field.endsWith('.lo')) {
      throw badInput('A connection sorts by _id, _lastUpdated or date parameters', ['_sort']);
    }
  }
  return sort as Record<string, 1 | -1>;
}

const reversed = (sort: Record<string, 1 | -1>): Record<string, 1 | -1> =>
  Object.fromEntries(Object.entries(sort).map(([field, direction]) => [field, direction === 1 ? -1 : 1])) as Record<string, 1 | -1>;

/** The search arguments of a count: what matches, whatever the order. */
function withoutSort(args: SearchArguments): SearchArguments {
  const { _sort: _ignored, ...rest } = args;
  return rest;
}

export async function searchConnection(
  store: FhirRepository,
  type: string,
  args: SearchArguments & { _cursor?: string | null },
  options: { defaultCount: number; maxCount: number },
): Promise<ConnectionPage> {
  const { _cursor, _count, ...given } = args;
  const searchArgs = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== null && value !== undefined)) as SearchArguments;
  if ('_offset' in searchArgs) throw badInput('A connection pages with _cursor, not _offset', ['_offset']);
  let cursor: Cursor;
  if (_cursor) {
    cursor = readConnectionCursor(_cursor);
    for (const [name, value] of Object.entries(searchArgs)) {
      if (cursor.a[name] !== value) throw badInput(`${name} differs from the search the cursor belongs to`, [name]);
    }
    if (typeof _count === 'number') cursor.n = _count;
  } else {
    cursor = { a: searchArgs, n: typeof _count === 'number' ? _count : options.defaultCount, w: 's', o: 0 };
  }
  if (cursor.n < 1 || cursor.n > options.maxCount) throw badInput(`_count must be between 1 and ${options.maxCount}`, ['_count']);

  const sort = sortFields(type, cursor.a._sort as string | undefined);
  const backwards = cursor.w === 'b' || cursor.w === 'e';
  const order = backwards ? reversed(sort) : sort;
  const after = (cursor.w === 'a' || cursor.w === 'b') && cursor.k ? cursor.k : undefined;
  const rows = await store.page(type, { args: cursor.a, sort: order, ...(after ? { after } : {}), limit: cursor.n + 1 });
  const more = rows.length > cursor.n;
  const page = rows.slice(0, cursor.n);
  if (backwards) page.reverse();

  const base = { a: cursor.a, n: cursor.n };
  const countMatches = (): Promise<number> => store.count(type, withoutSort(cursor.a));
  const firstKey = page[0]?.key;
  const lastKey = page.at(-1)?.key;
  const hasNext = backwards ? cursor.w === 'b' : more;
  const hasPrevious = backwards ? more : cursor.w === 'a';
  return {
    count: countMatches,
    offset: cursor.w === 'e' ? null : cursor.o,
    pagesize: cursor.n,
    first: connectionCursor({ ...base, w: 's', o: 0 }),
    previous: hasPrevious && firstKey ? connectionCursor({ ...base, w: 'b', k: firstKey, o: Math.max(cursor.o - cursor.n, 0) }) : null,
    next: hasNext && lastKey ? connectionCursor({ ...base, w: 'a', k: lastKey, o: cursor.o + page.length }) : null,
    last: connectionCursor({ ...base, w: 'e', o: 0 }),
    edges: page.map((row) => ({ mode: 'match', score: null, resource: row.resource })),
  };
}
