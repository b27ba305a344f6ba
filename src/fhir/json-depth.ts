/**
 * How deep a JSON value may nest before anything walks it: FHIR resources nest a few dozen levels, GraphQL
 * variables and Bundles a few more; deeper input (10,000 levels) is refused before a recursive walk could overflow
 * the stack. Measured iteratively, so the check itself cannot.
 */
import { badInput } from '../errors.ts';

/** The deepest nesting a body, a Bundle or a resource may have. */
export const MAX_JSON_DEPTH = 100;

/** Whether a parsed JSON value nests deeper than `limit` (iteratively: no recursion on hostile input). */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/** BAD_USER_INPUT when `value` nests deeper than MAX_JSON_DEPTH. */
export function assertJsonDepth(value: unknown, what: string): void {
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) throw badInput(`${what} nests JSON more than ${MAX_JSON_DEPTH} levels deep`);
}
