/** npm run ferretdb:install: builds the embedded FerretDB into .tools/bin/ (once; a no-op when it is there). */
import { ensureFerretDbBinary } from '../src/database/embedded-ferretdb.ts';

const binary = await ensureFerretDbBinary(undefined, console.log);
console.log(`FerretDB ready at ${binary}`);
