/** The waitgraph version, read once from the package manifest so alerts and `--version` agree. */
import { readFileSync } from 'node:fs';

/** The version of this waitgraph, as in package.json. */
export const WAITGRAPH_VERSION: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
