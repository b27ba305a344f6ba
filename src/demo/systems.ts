/** Identifier and code systems used by the demo consortium (demo URIs; a real consortium sets its own). */
const base = 'https://demo.consortium-hub.cn';

export const demoSystems = {
  /** 居民身份证号: the default of NATIONAL_ID_SYSTEM */
  nationalId: 'urn:oid:2.16.156.10011.1.3',
  memberLevel: `${base}/CodeSystem/member-level`,
  organizationCode: `${base}/sid/organization-code`,
  practitionerLicence: `${base}/sid/practitioner-licence`,
  referralNumber: `${base}/sid/referral-number`,
  referralType: `${base}/CodeSystem/referral-type`,
  referralStatus: `${base}/CodeSystem/referral-status`,
  mrn: (memberKey: string): string => `${base}/sid/${memberKey}/mrn`,
  visitNumber: (memberKey: string): string => `${base}/sid/${memberKey}/visit`,
  reportNumber: (memberKey: string): string => `${base}/sid/${memberKey}/report`,
};
