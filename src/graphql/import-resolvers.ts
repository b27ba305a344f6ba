import { BundleImporter } from '../fhir/bundles.ts';
import type { MutationResolvers } from '../generated/graphql.ts';

export const importResolvers: Pick<MutationResolvers, 'importBundle'> = {
  importBundle: async (_parent, args, context) => {
    const result = await new BundleImporter(context.store).import(args.bundle);
    return {
      type: result.type,
      summary: result.summary,
      byType: Object.entries(result.byType).map(([resourceType, counts]) => ({ resourceType, counts })),
      entries: result.entries,
    };
  },
};
