/**
 * One person across member hospitals.
 *
 * Every Patient record belongs to exactly one person. Automatically (patient-identity.ts): records with the
 * same valid national ID form one person, any other record is a person of its own. Administrators may
 * override that for one record at a time, with a recorded reason:
 *
 * - link: the record joins another record's person (weak matches: same name, birth date and sex; IDs one
 *   digit apart), stored as a manual link in `person_links` keyed by the record's id;
 * - unlink: removes the record's manual link, restoring its automatic person; a record that has no manual link
 *   but shares its national ID with others is detached into a person of its own (a wrong ID at one hospital).
 *
 * Every change is kept in `person_link_events` (who, when, why, before and after). Source records are never
 * changed. Without transactions each change is one single-document write, so it is atomic.
 */
import { randomUUID } from 'node:crypto';
import type { Collection } from 'mongodb';
import type { Patient } from '@medplum/fhirtypes';
import { badInput, conflict, notFound } from '../errors.ts';
import type { FhirRepository, FoundResource } from '../fhir/repository.ts';
import type { SideCollections } from '../fhir/side-collections.ts';
import { checkNationalId } from './national-id.ts';
import { DEMOGRAPHICS_KEY, NEAR_ID_KEY, PERSON_KEY, singleRecordPersonId } from './patient-identity.ts';

interface LinkDocument {
  /** the Patient record id */
  _id: string;
  /** the person the record belongs to by this manual link */
  person: string;
  /** its automatic person when the link was made */
  from: string;
  reason: string;
  by: string;
  at: Date;
}

/** One manual link or unlink, as recorded. */
export interface LinkEvent {
  _id: string;
  patient: string;
  action: 'link' | 'unlink';
  before: string;
  after: string;
  reason: string;
  by: string;
  at: Date;
}

/** How a caller names a person: by an identifier of any of its records, a Patient id, or the person id. */
export interface PersonSelector {
  identifier?: string | null;
  patient?: string | null;
  person?: string | null;
}

export interface Person {
  id: string;
  /** every linked Patient record, ordered by id */
  records: Patient[];
}

export type DuplicateReason = 'SAME_NAME_BIRTH_DATE_SEX' | 'NATIONAL_ID_ONE_DIGIT_APART';

export interface PossibleDuplicate {
  reason: DuplicateReason;
  records: [Patient, Patient];
  persons: [string, string];
}

const MAX_IDENTIFIER_MATCHES = 50;
const MAX_DUPLICATE_CANDIDATES = 5000;
const PERSON_ID = /^psn-[0-9a-f]{24}$/;

export class PersonDirectory {
  private readonly links: Collection<LinkDocument>;
  private readonly events: Collection<LinkEvent>;

  constructor(
    private readonly store: FhirRepository,
    private readonly collections: SideCollections,
    private readonly nationalIdSystem: string,
  ) {
    this.links = collections.collection<LinkDocument>('person_links');
    this.events = collections.collection<LinkEvent>('person_link_events');
  }

  async ensureIndexes(): Promise<void> {
    await this.collections.ensureIndexes('person_links', [{ key: { person: 1 }, name: 'person' }]);
    await this.collections.ensureIndexes('person_link_events', [{ key: { patient: 1 }, name: 'patient' }]);
  }

  /** The person of each record: its manual link if it has one, else its automatic person. One query. */
  private async effectivePersons(records: FoundResource[]): Promise<Map<string, string>> {
    const ids = records.map((record) => record.resource.id as string);
    const overrides = new Map<string, string>();
    for (const link of await this.collections.findByValues<LinkDocument>('person_links', '_id', ids)) overrides.set(link._id, link.person);
    return new Map(records.map((record) => [record.resource.id as string, overrides.get(record.resource.id as string) ?? (record.values[PERSON_KEY] as string)]));
  }

  /** The identifier search token: `system|value`, or a bare national ID, or a bare value of any system. */
  private identifierToken(identifier: string): string {
    const value = identifier.trim();
    if (value.length === 0 || value.length > 256) throw badInput('identifier must be 1 to 256 characters', ['identifier']);
    if (value.includes('|')) return value;
    if (/^\d{17}[\dXx]$/.test(value)) {
      const check = checkNationalId(value);
      if (!check.valid) throw badInput(`"${value}" is not a valid national ID (${check.problem})`, ['identifier']);
      return `${this.nationalIdSystem}|${value.toUpperCase()}`;
    }
    return value;
  }

  /** The id of the person a selector names (two queries at most). NOT_FOUND, or BAD_USER_INPUT if ambiguous. */
  async resolve(selector: PersonSelector): Promise<string> {
    const given = [selector.identifier, selector.patient, selector.person].filter((value) => value !== undefined && value !== null);
    if (given.length !== 1) throw badInput('Name the person by exactly one of identifier, patient or person');
    if (selector.person) {
      if (!PERSON_ID.test(selector.person)) throw badInput(`"${selector.person.slice(0, 40)}" is not a person id`, ['person']);
      return selector.person;
    }
    const condition = selector.patient ? { key: 'id', eq: selector.patient } : { key: 'identifier', eq: this.identifierToken(selector.identifier!) };
    const matched = await this.store.find('Patient', { where: [condition], values: [PERSON_KEY], limit: MAX_IDENTIFIER_MATCHES + 1 });
    if (matched.length === 0) throw notFound(selector.patient ? `Patient/${selector.patient} not found` : `No patient record has the identifier ${selector.identifier}`);
    const persons = new Set((await this.effectivePersons(matched)).values());
    if (persons.size > 1) {
      throw badInput(`The identifier ${selector.identifier} belongs to records of ${persons.size} different persons; give it as system|value`, ['identifier']);
    }
    return [...persons][0]!;
  }

  /**
   * Every record of a person (four queries, whatever the number of records): its manual links, the records
   * whose automatic person it is (an equality on its `person` anchor), the records linked to it by hand (by id), and
   * the manual links of all of them.
   */
  async members(personId: string): Promise<Patient[]> {
    const incoming = await this.links.find({ person: personId }, { projection: { _id: 1 } }).toArray();
    const [automatic, linked] = await Promise.all([
      this.store.find('Patient', { where: [{ key: PERSON_KEY, eq: personId }], values: [PERSON_KEY] }),
      incoming.length > 0 ? this.store.find('Patient', { where: [{ key: 'id', in: incoming.map((link) => link._id) }], values: [PERSON_KEY] }) : Promise.resolve([]),
    ]);
    const candidates = [...automatic, ...linked.filter((record) => !automatic.some((other) => other.resource.id === record.resource.id))];
    const persons = await this.effectivePersons(candidates);
    return candidates
      .filter((candidate) => persons.get(candidate.resource.id as string) === personId)
      .map((candidate) => candidate.resource as Patient)
      .sort((a, b) => (a.id! < b.id! ? -1 : 1));
  }

  /** The person a selector names, with all its records; NOT_FOUND when it has none. */
  async person(selector: PersonSelector): Promise<Person> {
    const id = await this.resolve(selector);
    const records = await this.members(id);
    if (records.length === 0) throw notFound(`Person ${id} has no records`);
    return { id, records };
  }

  private async recordWithValues(patientId: string): Promise<FoundResource> {
    const [record] = await this.store.find('Patient', { where: [{ key: 'id', eq: patientId }], values: [PERSON_KEY], limit: 1 });
    if (!record) throw notFound(`Patient/${patientId} not found`);
    return record;
  }

  private async record(event: Omit<LinkEvent, '_id' | 'at'>): Promise<void> {
    await this.events.insertOne({ _id: randomUUID(), ...event, at: new Date() });
  }

  /** Links a record into the person another selector names. CONFLICT when it is there already. */
  async link(patientId: string, target: PersonSelector, reason: string, by: string): Promise<Person> {
    const why = requireReason(reason);
    const record = await this.recordWithValues(patientId);
    const before = (await this.effectivePersons([record])).get(patientId)!;
    const after = await this.resolve(target);
    if (target.person && (await this.members(after)).length === 0) throw notFound(`Person ${after} has no records`);
    if (after === before) throw conflict(`Patient/${patientId} already belongs to person ${after}`);
    const automatic = record.values[PERSON_KEY] as string;
    if (after === automatic) await this.links.deleteOne({ _id: patientId });
    else await this.links.updateOne({ _id: patientId }, { $set: { person: after, from: automatic, reason: why, by, at: new Date() } }, { upsert: true });
    await this.record({ patient: patientId, action: 'link', before, after, reason: why, by });
    return this.person({ person: after });
  }

  /**
   * Undoes a link of one record: a manual link is removed (the record returns to its automatic person); a
   * record linked automatically with others is detached into a person of its own. Returns the record's
   * person afterwards. CONFLICT when the record is alone already.
   */
  async unlink(patientId: string, reason: string, by: string): Promise<Person> {
    const why = requireReason(reason);
    const record = await this.recordWithValues(patientId);
    const automatic = record.values[PERSON_KEY] as string;
    const manual = await this.links.findOne({ _id: patientId });
    let after: string;
    if (manual) {
      await this.links.deleteOne({ _id: patientId, person: manual.person });
      after = automatic;
    } else {
      const others = (await this.members(automatic)).filter((patient) => patient.id !== patientId);
      if (others.length === 0) throw conflict(`Patient/${patientId} is not linked with any other record`);
      after = singleRecordPersonId(patientId);
      await this.links.updateOne({ _id: patientId }, { $set: { person: after, from: automatic, reason: why, by, at: new Date() } }, { upsert: true });
    }
    await this.record({ patient: patientId, action: 'unlink', before: manual?.person ?? automatic, after, reason: why, by });
    return this.person({ person: after });
  }

  /** The link history of some records, newest first (one query). */
  async linkEvents(patientIds: string[]): Promise<LinkEvent[]> {
    const events = await this.collections.findByValues<LinkEvent>('person_link_events', 'patient', patientIds);
    return events.sort((a, b) => b.at.getTime() - a.at.getTime()).slice(0, 200);
  }

  /**
   * Pairs of records in different persons that may be one person: same name, birth date and sex, or national
   * IDs whose first 17 digits differ in one place. For administrators to link (or leave) by hand.
   */
  async possibleDuplicates(limit: number): Promise<PossibleDuplicate[]> {
    // Grouped here, not by the database: FerretDB v1 has no $push and unwinds nested arrays differently from
    // MongoDB. One query reads the records that have a key; the pairs are found among them.
    const keyed = await this.store.find('Patient', {
      where: [{ anyOf: [[{ key: DEMOGRAPHICS_KEY, exists: true }], [{ key: NEAR_ID_KEY, exists: true }]] }],
      values: [PERSON_KEY, DEMOGRAPHICS_KEY, NEAR_ID_KEY],
    });
    const demographics = (values: Record<string, unknown>): string[] => (values[DEMOGRAPHICS_KEY] ? [values[DEMOGRAPHICS_KEY] as string] : []);
    const nearIds = (values: Record<string, unknown>): string[] => (values[NEAR_ID_KEY] as string[] | undefined) ?? [];
    const keysOf = (values: Record<string, unknown>): string[] => [...demographics(values), ...nearIds(values)];
    const counts = new Map<string, number>();
    for (const record of keyed) for (const key of keysOf(record.values)) counts.set(key, (counts.get(key) ?? 0) + 1);
    const candidates = keyed.filter((record) => keysOf(record.values).some((key) => (counts.get(key) ?? 0) > 1)).slice(0, MAX_DUPLICATE_CANDIDATES);
    if (candidates.length === 0) return [];
    const demoKeys = [...counts].filter(([key, n]) => n > 1 && !key.includes('*')).map(([key]) => key);
    const nearKeys = [...counts].filter(([key, n]) => n > 1 && key.includes('*')).map(([key]) => key);
    const persons = await this.effectivePersons(candidates);
    const pairs = new Map<string, PossibleDuplicate>();
    const consider = (reason: DuplicateReason, keys: string[], keyOf: (values: Record<string, unknown>) => string[]): void => {
      const wanted = new Set(keys);
      const byKey = new Map<string, typeof candidates>();
      for (const candidate of candidates) {
        for (const key of keyOf(candidate.values)) if (wanted.has(key)) byKey.set(key, [...(byKey.get(key) ?? []), candidate]);
      }
      for (const group of byKey.values()) {
        for (let i = 0; i < group.length; i++) {
          for (let j = i + 1; j < group.length; j++) {
            const [a, b] = [group[i]!, group[j]!].sort((x, y) => (x.resource.id! < y.resource.id! ? -1 : 1)) as [(typeof group)[0], (typeof group)[0]];
            const personA = persons.get(a.resource.id!)!;
            const personB = persons.get(b.resource.id!)!;
            const pairKey = `${a.resource.id}|${b.resource.id}`;
            if (personA === personB || pairs.has(pairKey)) continue;
            pairs.set(pairKey, { reason, records: [a.resource as Patient, b.resource as Patient], persons: [personA, personB] });
          }
        }
      }
    };
    consider('NATIONAL_ID_ONE_DIGIT_APART', nearKeys, nearIds);
    consider('SAME_NAME_BIRTH_DATE_SEX', demoKeys, demographics);
    return [...pairs.values()].slice(0, limit);
  }
}

function requireReason(reason: string): string {
  const trimmed = reason.trim();
  if (trimmed.length < 2 || trimmed.length > 500) throw badInput('A reason of 2 to 500 characters is required', ['reason']);
  return trimmed;
}

