/** The stored keys of the recognition domain: the anchor field of results and the mark's tag code. */
export const RECOGNITION_FIELD = 't_recog';
export const MARK_CODE = 'RECOGNIZABLE';

/** Every result of an issuing organisation. */
export const organizationAnchor = (organization: string): string => `org|${organization}`;
/** The results of an issuing organisation that carry a local code no map translates. */
export const unmappedAnchor = (organization: string): string => `unmapped|${organization}`;
/** Every code map and QC record: the terminology is read from this anchor. */
export const TERMINOLOGY_ANCHOR = 'terminology';
