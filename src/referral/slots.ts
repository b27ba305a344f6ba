/**
 * Shared bed and appointment slots (issue 12, item 5): a member publishes them as FHIR `Slot`s of its own
 * `Schedule` (one per organisation, kind and department: `actor` the organisation, `serviceType` the kind), and
 * accepting a referral may reserve one. A reservation is the slot's move from `free` to `busy` as a
 * compare-and-set on its version, so of two referrals reserving one slot at once exactly one gets it.
 */
import type { Schedule, Slot } from '@medplum/fhirtypes';
import { HubError } from '../errors.ts';
import type { FhirRepository } from '../fhir/repository.ts';

export type SlotKind = 'BED' | 'APPOINTMENT';
export const SLOT_KIND_SYSTEM = 'https://demo.consortium-hub.cn/CodeSystem/referral-slot-kind';

export interface SlotInput {
  start: string;
  end: string;
  /** ward and bed of a bed slot, or the clinic of an appointment */
  note?: string;
}

const scheduleId = (organization: string, kind: SlotKind, department: string): string =>
  `sched-${organization.replace(/^Organization\//, '')}-${kind.toLowerCase()}-${Buffer.from(department).toString('hex').slice(0, 16)}`.slice(0, 64);

/** Publishes slots of an organisation (its Schedule of that kind and department created on first use). */
export async function publishSlots(store: FhirRepository, organization: string, kind: SlotKind, department: string, slots: SlotInput[]): Promise<Slot[]> {
  if (slots.length === 0 || slots.length > 200) throw new HubError('BAD_USER_INPUT', 'Publish between 1 and 200 slots at once');
  for (const slot of slots) {
    const start = Date.parse(slot.start);
    const end = Date.parse(slot.end);
    if (Number.isNaN(start) || Number.isNaN(end) || end <= start) throw new HubError('BAD_USER_INPUT', `A slot needs a start before its end: ${slot.start} – ${slot.end}`);
  }
  const schedule: Schedule = {
    resourceType: 'Schedule',
    id: scheduleId(organization, kind, department),
    active: true,
    serviceType: [{ coding: [{ system: SLOT_KIND_SYSTEM, code: kind }], text: department }],
    actor: [{ reference: organization }],
    comment: `${department} ${kind === 'BED' ? '床位' : '号源'}`,
  };
  await store.put(schedule);
  const written: Slot[] = [];
  for (const slot of slots) {
    written.push(
      await store.create<Slot>({
        resourceType: 'Slot',
        schedule: { reference: `Schedule/${schedule.id}` },
        status: 'free',
        serviceType: schedule.serviceType!,
        start: new Date(slot.start).toISOString(),
        end: new Date(slot.end).toISOString(),
        ...(slot.note ? { comment: slot.note } : {}),
      }),
    );
  }
  return written;
}

/** The organisation a slot belongs to (its Schedule's actor). */
export async function slotOwner(store: FhirRepository, slot: Slot): Promise<string | undefined> {
  const id = slot.schedule?.reference?.replace(/^Schedule\//, '');
  if (!id) return undefined;
  const schedule = (await store.readMany('Schedule', [id])).get(id) as Schedule | undefined;
  return schedule?.actor?.find((actor) => actor.reference?.startsWith('Organization/'))?.reference;
}

/**
 * Reserves a free slot of `organization` for a referral: free -> busy as a compare-and-set on the version read.
 * CONFLICT when it is taken (now or by a reservation racing this one).
 */
export async function reserveSlot(store: FhirRepository, id: string, organization: string, referral: string): Promise<Slot> {
  const slot = (await store.readMany('Slot', [id])).get(id) as Slot | undefined;
  if (!slot) throw new HubError('BAD_USER_INPUT', `Slot/${id} does not exist`);
  if ((await slotOwner(store, slot)) !== organization) throw new HubError('BAD_USER_INPUT', `Slot/${id} is not a slot of ${organization}`);
  if (slot.status !== 'free') throw new HubError('CONFLICT', `Slot/${id} is ${slot.status}, not free`);
  try {
    return await store.update<Slot>({ ...slot, status: 'busy', comment: [slot.comment, `转诊 Task/${referral}`].filter(Boolean).join('；') }, { ifMatch: slot.meta!.versionId! });
  } catch (error) {
    if (error instanceof HubError && error.code === 'CONFLICT') throw new HubError('CONFLICT', `Slot/${id} was reserved by another referral at the same moment`);
    throw error;
  }
}

/** Gives a reserved slot back (a referral whose acceptance failed after the reservation). */
export async function releaseSlot(store: FhirRepository, slot: Slot): Promise<void> {
  await store.update<Slot>({ ...slot, status: 'free' }, { ifMatch: slot.meta!.versionId! }).catch(() => undefined);
}
