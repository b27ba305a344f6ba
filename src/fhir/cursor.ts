/**
 * The one codec of the hub's opaque cursors (search connections, the patient history timeline, the reading
 * queue): base64url JSON of what the next page starts from. A cursor is checked when it comes back — its
 * length, its alphabet, its JSON and its shape (the caller's check) — and anything else is refused with
 * BAD_USER_INPUT naming the argument, never an error of the parser.
 */
import { badInput } from '../errors.ts';

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** What a cursor of this hub holds, as `check` makes it (`check` throws for anything it does not accept). */
export function decodeCursor<T>(raw: string, argument: string, check: (value: unknown) => T, maxLength = 2048): T {
  const refusal = badInput(`${argument} is not a cursor this hub issued`, [argument]);
  if (typeof raw !== 'string' || raw.length > maxLength || !/^[A-Za-z0-9_-]+$/.test(raw)) throw refusal;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw refusal;
  }
  try {
    return check(value);
  } catch {
    throw refusal;
  }
}
