/**
 * Documents in the JSON form FerretDB 1.24 keeps in PostgreSQL (its `sjson`: the values as JSON, and under `$s`
 * the BSON type of every field and the order of the keys), for the hub's direct bulk inserts
 * (ferretdb-storage.ts `insertDocuments`). Only the types the store's documents hold are written: strings,
 * booleans, numbers (int32 as the driver sends an integer that fits, double otherwise), dates, binary data,
 * null, and arrays and objects of those. Anything else (undefined, a bigint, an ObjectId, a key FerretDB would
 * refuse) returns undefined, and the caller goes through FerretDB as usual.
 */
import { Binary } from 'mongodb';

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

class Unsupported extends Error {}

/** `{"$s": schema, ...values}` as FerretDB 1.24's sjson.Marshal writes it, or undefined. */
export function toFerretDbJson(document: Record<string, unknown>): string | undefined {
  try {
    const schema = documentSchema(document);
    const parts = [`{"$s":${schema}`];
    for (const key of Object.keys(document)) parts.push(`${JSON.stringify(key)}:${valueJson(document[key])}`);
    return `${parts.join(',')}}`;
  } catch (error) {
    if (error instanceof Unsupported) return undefined;
    throw error;
  }
}

function checkKey(key: string): void {
  // FerretDB refuses such keys on insert; the driver path then reports it as it should.
  if (key.length === 0 || key.startsWith('$') || key.includes('.') || key.includes('\0')) throw new Unsupported(key);
}

function documentSchema(document: Record<string, unknown>): string {
  const keys = Object.keys(document);
  if (keys.length === 0) return '{}';
  const properties = keys.map((key) => {
    checkKey(key);
    return `${JSON.stringify(key)}:${elementSchema(document[key])}`;
  });
  return `{"p":{${properties.join(',')}},"$k":${JSON.stringify(keys)}}`;
}

function elementSchema(value: unknown): string {
  if (value === null) return '{"t":"null"}';
  switch (typeof value) {
    case 'string':
      return '{"t":"string"}';
    case 'boolean':
      return '{"t":"bool"}';
    case 'number':
      if (!Number.isFinite(value)) throw new Unsupported('non-finite number');
      return isInt32(value) ? '{"t":"int"}' : '{"t":"double"}';
    case 'object':
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new Unsupported('invalid date');
        return '{"t":"date"}';
      }
      if (value instanceof Binary) return `{"t":"binData","s":${value.sub_type}}`;
      if (Array.isArray(value)) return `{"t":"array","i":[${value.map(elementSchema).join(',')}]}`;
      if (Object.getPrototypeOf(value) === Object.prototype) return `{"t":"object","$s":${documentSchema(value as Record<string, unknown>)}}`;
      throw new Unsupported('object type');
    default:
      throw new Unsupported(typeof value);
  }
}

function valueJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // -0 is a double whose sign the driver keeps; JSON.stringify would write 0.
      return Object.is(value, -0) ? '-0' : JSON.stringify(value);
    case 'object': {
      if (value instanceof Date) return String(value.getTime());
      if (value instanceof Binary) return JSON.stringify(Buffer.from(value.buffer.buffer, value.buffer.byteOffset, value.position).toString('base64'));
      if (Array.isArray(value)) return `[${value.map(valueJson).join(',')}]`;
      const entries = Object.keys(value as object).map((key) => `${JSON.stringify(key)}:${valueJson((value as Record<string, unknown>)[key])}`);
      return `{${entries.join(',')}}`;
    }
    default:
      throw new Unsupported(typeof value);
  }
}

function isInt32(value: number): boolean {
  return Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX && !Object.is(value, -0);
}
