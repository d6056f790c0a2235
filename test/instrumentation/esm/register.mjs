// Registers OpenTelemetry's import-in-the-middle hook, as an ESM application does with
// `node --import ./register.mjs app.mjs`, so that instrumentations can patch modules imported as ESM.
import { register } from 'node:module';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
