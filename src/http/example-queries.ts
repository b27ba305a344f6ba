/**
 * Example queries over the demo consortium, preloaded in the playground. A tab that writes says so in its title and
 * writes only into the playground's throwaway record (src/demo/recognition.ts, PLAYGROUND_PATIENT).
 */
export interface ExampleQuery {
  title: string;
  query: string;
}

export const exampleQueries: ExampleQuery[] = [
  {
    title: 'A resident found by national ID, with the organisation that holds the record',
    query: `query ResidentByNationalId {
  PatientList(identifier: "urn:oid:2.16.156.10011.1.3|43062120021114011X") {
    id
    name { text family given }
    gender
    birthDate
    identifier { system value }
    managingOrganization { display resource { ... on Organization { name alias } } }
  }
}`,
  },
  {
    title: "One resident's history across the consortium, newest first",
    query: `query ResidentHistory {
  patientHistory(identifier: "43062120021114011X", first: 10) {
    person { id records { id managingOrganization { display } } }
    entries {
      date
      type
      display
      referralStatus
      source { name alias level }
    }
    next
  }
}`,
  },
  {
    title: 'Haemoglobin results (LOINC 718-7) since 2025 with patient and performer',
    query: `query HaemoglobinSince2025 {
  ObservationList(code: "http://loinc.org|718-7", date: "ge2025-01-01", _sort: "-date", _count: 10) {
    id
    effectiveDateTime
    valueQuantity { value unit }
    subject { resource { ... on Patient { name { text } } } }
    performer { display }
  }
}`,
  },
  {
    title: 'HbA1c of one record in 2024: a repeated date parameter through _and, reverse references written as on the HL7 page',
    query: `query HbA1cIn2024 {
  ObservationList(patient: "pat-taolin-township-001", code: "http://loinc.org|4548-4", _and: ["date=ge2024-01-01", "date=lt2025-01-01", "status:not=cancelled"]) {
    id effectiveDateTime valueQuantity { value unit }
  }
  Patient(id: "pat-taolin-township-001") {
    name(use: official) { text }
    EncounterList(_reference: patient, _count: 3, _sort: "-date") { period { start } serviceProvider { display } }
  }
}`,
  },
  {
    title: 'Referrals: open referral tasks with their requests',
    query: `query OpenReferrals {
  TaskList(status: "requested,received,accepted,in-progress") {
    id
    status
    businessStatus { text }
    requester { display }
    owner { display }
    focus { resource { ... on ServiceRequest { category { text } reasonCode { text } } } }
  }
}`,
  },
  {
    title: '转诊中心 Referral inbox of the county hospital: green channel first, then by due time',
    query: `query ReferralInbox {
  referralInbox(organization: "org-donghu-county", direction: INCOMING, status: [SUBMITTED, UNDER_REVIEW, ACCEPTED], _count: 20) {
    items {
      id type status priority dueAt overdue overdueMinutes
      patient { name { text } }
      from { name }
      form { reasonCode { text } }
    }
    next
  }
}`,
  },
  {
    title: 'One referral with its form, both institutions and the timeline of its transitions',
    query: `query OneReferral {
  referral(id: "task-ref-004") {
    id type status priority submittedAt dueAt overdue
    patient { name { text } identifier { value } }
    from { name }
    to { name }
    form { reasonCode { text } supportingInfo { reference } }
    timeline { status at version by }
  }
}`,
  },
  {
    title: 'Referral quality statistics of the consortium by month (administrators)',
    query: `query ReferralStatistics {
  referralStatistics(from: "2025-12-01", to: "2026-11-30", groupBy: MONTH) {
    key referrals up down downUpRatio medianMinutesToAccept p90MinutesToAccept
    rejectionRate noShowRate closedLoopRate followUps followUpsWithin14Days
    greenChannel greenChannelWithin10Minutes
  }
}`,
  },
  {
    title: '检查检验结果互认 Results of 王伟 (referred up) that the county hospital can recognise',
    query: `query RecognitionCandidates {
  recognitionCandidates(patient: "pat-donghu-county-001", at: "org-donghu-county") {
    resultReference decision cause ageDays daysLeft mark standardCodes
    item { nameZh category validityDays feeYuan }
    issuer { name }
  }
}`,
  },
  {
    title: '写入 WRITES: a decline with its reason on the playground\'s throwaway patient (each run adds a decision and a repeat order there)',
    query: `mutation DeclineWithReason {
  recordRecognitionDecision(result: "Observation/rec-glu-playground", at: "org-donghu-county", accepted: false,
    reason: RAPID_CHANGE, text: "血糖波动大，需复查", patientInformedAt: "2026-11-26T09:00:00+08:00") {
    provenance { id activity { coding { code display } } }
    repeat { id reasonCode { text coding { code display } } supportingInfo { reference } }
  }
}`,
  },
  {
    title: 'Recognition savings of the consortium by category (administrators)',
    query: `query RecognitionSavings {
  recognitionStatistics(from: "2025-12-01", to: "2026-11-30", groupBy: CATEGORY) {
    institutionsWithPassingQc
    rows { key decisions recognized feesSavedYuan declined repeatsOrdered crossMemberRetrievals declinesByReason { reason count } }
  }
}`,
  },
  {
    title: "A township's local codes that its code map does not translate yet",
    query: `query UnmappedCodes {
  unmappedCodes(organization: "org-taolin-township") { complete codes { system code display results lastSeen } }
  recognitionJobs(organization: "org-taolin-township") { id state reason total done changed }
}`,
  },
  {
    title: 'The members of the consortium',
    query: `query ConsortiumMembers {
  OrganizationList(_sort: "name") {
    id
    name
    alias
    type { coding { code display } }
    partOf { display }
  }
}`,
  },
];
