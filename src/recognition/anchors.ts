/** The derived keys of the recognition domain: the anchor of results and the terminology, and the mark's tag code. */
export const RECOGNITION_KEY = 'recog';
export const MARK_CODE = 'RECOGNIZABLE';

/** Every result of an issuing organisation. */
export const organizationAnchor = (organization: string): string => `org|${organization}`;
/** The results of an issuing organisation that carry a local code no map translates. */
export const unmappedAnchor = (organization: string): string => `unmapped|${organization}`;
/** Every code map and QC record: the terminology is read from this anchor. */
export const TERMINOLOGY_ANCHOR = 'terminology';
