/**
 * The consortium's calendar: days and months in China time (UTC+8, no daylight saving), the periods every
 * domain's statistics and indicators are counted by. Shared by the domains, so none imports another for it.
 */
import { HubError } from '../errors.ts';

export const CHINA_OFFSET_MS = 8 * 3600_000;
const DAY_MS = 86_400_000;
/** The most months one statistics query covers. */
export const MAX_MONTHS = 24;

/** The month (YYYY-MM, China time) of an instant. */
export const monthOf = (date: Date): string => new Date(date.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 7);

/** The day number (days since 1970-01-01, China time) of an instant. */
export const chinaDay = (date: Date): number => Math.floor((date.getTime() + CHINA_OFFSET_MS) / DAY_MS);

/** The date (YYYY-MM-DD, China time) of an instant. */
export const chinaDate = (date: Date): string => new Date(date.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 10);

/** The months (YYYY-MM, China time) from `from` to `to`, both included; at most MAX_MONTHS. */
export function monthsBetween(from: Date, to: Date): string[] {
  const months: string[] = [];
  let [year, month] = monthOf(from).split('-').map(Number) as [number, number];
  const last = monthOf(to);
  for (;;) {
    const key = `${year}-${String(month).padStart(2, '0')}`;
    if (key > last) break;
    months.push(key);
    if (months.length > MAX_MONTHS) throw new HubError('BAD_USER_INPUT', `The statistics cover at most ${MAX_MONTHS} months at once`);
    month++;
    if (month > 12) (month = 1), year++;
  }
  return months;
}
