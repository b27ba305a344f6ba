/**
 * The rules of remote reading (远程诊断: ECG, imaging, ultrasound, pathology read by a consortium reading centre)
 * and of critical values (危急值), as plain functions over plain values: turnaround targets by modality and
 * urgency, the queue order, overdue, and which results are critical. No database here.
 */

import { z } from 'zod';

export const modalities = ['ECG', 'DR', 'CT', 'MR', 'US', 'PATHOLOGY'] as const;
export type Modality = (typeof modalities)[number];
export const urgencies = ['ROUTINE', 'URGENT', 'STAT'] as const;
export type Urgency = (typeof urgencies)[number];
export type ReadingStatus = 'REQUESTED' | 'CLAIMED' | 'REPORTED' | 'CANCELLED';

/** Turnaround targets in minutes from request to report (the reading centre's service commitments). */
export const turnaroundMinutes: Record<Modality, Record<Urgency, number>> = {
  ECG: { ROUTINE: 30, URGENT: 10, STAT: 10 },
  DR: { ROUTINE: 120, URGENT: 30, STAT: 30 },
  CT: { ROUTINE: 120, URGENT: 30, STAT: 30 },
  MR: { ROUTINE: 240, URGENT: 60, STAT: 60 },
  US: { ROUTINE: 60, URGENT: 30, STAT: 30 },
  PATHOLOGY: { ROUTINE: 3 * 24 * 60, URGENT: 24 * 60, STAT: 24 * 60 },
};

export function dueAt(requestedAt: Date, modality: Modality, urgency: Urgency): Date {
  return new Date(requestedAt.getTime() + turnaroundMinutes[modality][urgency] * 60_000);
}

/** Overdue: not reported by its due time (a report after the due time was late: `late`). */
export function overdue(requestedAt: Date, modality: Modality, urgency: Urgency, status: ReadingStatus, now: Date): boolean {
  return (status === 'REQUESTED' || status === 'CLAIMED') && now.getTime() > dueAt(requestedAt, modality, urgency).getTime();
}

export function late(requestedAt: Date, reportedAt: Date, modality: Modality, urgency: Urgency): boolean {
  return reportedAt.getTime() > dueAt(requestedAt, modality, urgency).getTime();
}

/** The queue order as one date: STAT first, then URGENT, then ROUTINE, each oldest first. */
export function queueKey(requestedAt: Date, urgency: Urgency): Date {
  const YEAR_MS = 365.25 * 24 * 3600 * 1000;
  const ahead = urgency === 'STAT' ? 2000 * YEAR_MS : urgency === 'URGENT' ? 1000 * YEAR_MS : 0;
  return new Date(requestedAt.getTime() - ahead);
}

/** Minutes from request to report, whole minutes rounded up. */
export function turnaround(requestedAt: Date, reportedAt: Date): number {
  return Math.ceil((reportedAt.getTime() - requestedAt.getTime()) / 60_000);
}

/**
 * A critical-value rule: a coded finding of a report (`finding`: STEMI on an ECG), or a lab value compared on its
 * UCUM-normalised value (`below` / `above`, in the catalog item's unit).
 */
export type CriticalRule =
  | { id: string; kind: 'finding'; code: string; text: string }
  | { id: string; kind: 'lab'; code: string; unit: string; below?: number; above?: number; text: string };

/** A rule as configured (CRITICAL_RULES: a JSON array of these replaces the defaults). */
export const criticalRuleSchema = z.union([
  z.object({ id: z.string().min(1).max(64), kind: z.literal('finding'), code: z.string().regex(/^[^|\s]+\|[^|\s]+$/), text: z.string().min(1).max(200) }),
  z
    .object({ id: z.string().min(1).max(64), kind: z.literal('lab'), code: z.string().regex(/^[^|\s]+\|[^|\s]+$/), unit: z.string().min(1).max(40), below: z.number().optional(), above: z.number().optional(), text: z.string().min(1).max(200) })
    .refine((rule) => rule.below !== undefined || rule.above !== undefined, 'a lab rule needs below or above'),
]);

/** The default rules (CRITICAL_RULES replaces them with JSON of the same shape). */
export const defaultCriticalRules: CriticalRule[] = [
  { id: 'ECG-STEMI', kind: 'finding', code: 'http://snomed.info/sct|401303003', text: '急性ST段抬高型心肌梗死 (STEMI)' },
  { id: 'ECG-VF', kind: 'finding', code: 'http://snomed.info/sct|71908006', text: '心室颤动' },
  { id: 'ECG-AVB3', kind: 'finding', code: 'http://snomed.info/sct|27885002', text: '三度房室传导阻滞' },
  { id: 'CT-ICH', kind: 'finding', code: 'http://snomed.info/sct|274100004', text: '颅内出血' },
  { id: 'LAB-K-HIGH', kind: 'lab', code: 'http://loinc.org|2823-3', unit: 'mmol/L', above: 6.5, text: '血钾 > 6.5 mmol/L' },
  { id: 'LAB-K-LOW', kind: 'lab', code: 'http://loinc.org|2823-3', unit: 'mmol/L', below: 2.5, text: '血钾 < 2.5 mmol/L' },
  { id: 'LAB-HGB-LOW', kind: 'lab', code: 'http://loinc.org|718-7', unit: 'g/L', below: 60, text: '血红蛋白 < 60 g/L' },
  { id: 'LAB-GLU-LOW', kind: 'lab', code: 'http://loinc.org|2345-7', unit: 'mmol/L', below: 2.2, text: '血糖 < 2.2 mmol/L' },
  { id: 'LAB-GLU-HIGH', kind: 'lab', code: 'http://loinc.org|2345-7', unit: 'mmol/L', above: 22.2, text: '血糖 > 22.2 mmol/L' },
  { id: 'LAB-PLT-LOW', kind: 'lab', code: 'http://loinc.org|777-3', unit: '10*9/L', below: 20, text: '血小板 < 20×10⁹/L' },
];

/** Minutes the requesting side has to acknowledge a critical value before it is escalated. */
export const DEFAULT_ACK_MINUTES = 15;

/** The rules a result breaks: `codes` its standard codes (`system|code`), `value` its normalised quantity. */
export function criticalRulesBroken(
  result: { codes: string[]; findings: string[]; value?: { value: number; unit: string } },
  rules: readonly CriticalRule[] = defaultCriticalRules,
): CriticalRule[] {
  return rules.filter((rule) => {
    if (rule.kind === 'finding') return result.findings.includes(rule.code);
    if (!result.codes.includes(rule.code) || !result.value || result.value.unit !== rule.unit) return false;
    // The boundary is not critical: K+ 6.5 is not > 6.5, Hb 60 is not < 60.
    return (rule.above !== undefined && result.value.value > rule.above) || (rule.below !== undefined && result.value.value < rule.below);
  });
}
