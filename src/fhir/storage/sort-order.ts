/**
 * MongoDB's sort order, for the documents the hub sorts itself (the compact layout on FerretDB, whose sorts run
 * after the rows arrive anyway), and where an ordered read in ascending order may start.
 */
import type { Filter } from 'mongodb';
import type { CompactOrder } from '../../database/ferretdb-storage.ts';
import type { StartAfter } from '../indexed-query.ts';
import type { ResourceDocument } from '../search-query.ts';

type Position = NonNullable<CompactOrder['after']>;

/** MongoDB's order of BSON types for sorting: null (and missing) < numbers < strings < objects < booleans < dates. */
function typeRank(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return 1;
  if (typeof value === 'string') return 2;
  if (value instanceof Date) return 9;
  if (typeof value === 'boolean') return 8;
  return 3;
}

function compareValues(a: unknown, b: unknown): number {
  const rank = typeRank(a) - typeRank(b);
  if (rank !== 0) return rank;
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return 0;
}

/** Orders documents as MongoDB sorts them (an array sorts by its smallest element ascending, its largest descending). */
export function documentOrder(sort: Record<string, 1 | -1>): (a: ResourceDocument, b: ResourceDocument) => number {
  const fields = Object.entries(sort);
  const valueAt = (document: ResourceDocument, path: string, direction: 1 | -1): unknown => {
    const value = path.split('.').reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), document);
    if (!Array.isArray(value)) return value;
    if (value.length === 0) return undefined;
    return value.reduce((best, item) => (compareValues(item, best) * direction < 0 ? item : best));
  };
  return (a, b) => {
    for (const [field, direction] of fields) {
      const order = compareValues(valueAt(a, field, direction), valueAt(b, field, direction)) * direction;
      if (order !== 0) return order;
    }
    return 0;
  };
}

const millis = (given: unknown): number => (given instanceof Date ? given.getTime() : typeof given === 'string' ? Date.parse(given) : typeof given === 'number' ? given : Number.NaN);

/**
 * Where an ascending read in `path` order may start: after the keyset position the query names (`start`), or
 * just below the filter's `$gte` (above its `$gt`) on that very path, as a position no stored value equals
 * (order values are whole milliseconds); the later of the two.
 */
export function startPosition(filter: Filter<ResourceDocument>, path: string, start?: StartAfter): Position | undefined {
  const conditions = [filter, ...(((filter as { $and?: Filter<ResourceDocument>[] }).$and) ?? [])] as Record<string, unknown>[];
  let tightest: Position | undefined;
  if (start && start.path === path) {
    const ms = millis(start.value);
    // Without an id: from the first document at that value.
    if (!Number.isNaN(ms)) tightest = start.id === undefined ? { ord: ms - 0.5, id: '' } : { ord: ms, id: start.id };
  }
  for (const condition of conditions) {
    const bound = rangeBound(condition[path]);
    if (bound && (!tightest || compareBound(bound, tightest) > 0)) tightest = bound;
  }
  return tightest;
}

/** The start of a range on the order value (`_lastUpdated=ge…`); undefined when the condition bounds nothing below. */
function rangeBound(value: unknown): Position | undefined {
  if (!value || typeof value !== 'object' || value instanceof Date) return undefined;
  const range = value as { $gte?: unknown; $gt?: unknown };
  const ms = millis(range.$gte ?? range.$gt);
  if (Number.isNaN(ms)) return undefined;
  return { ord: range.$gte !== undefined ? ms - 0.5 : ms + 0.5, id: '' };
}

function compareBound(a: Position, b: Position): number {
  const ord = (a.ord ?? -Infinity) - (b.ord ?? -Infinity);
  return ord !== 0 ? ord : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The sort fields (other than `_id`) as a projection, so merged results can be ordered. */
export function sortProjection(sort: Record<string, 1 | -1>): Record<string, 1> {
  return Object.fromEntries(Object.keys(sort).filter((field) => field !== '_id').map((field) => [field, 1]));
}
