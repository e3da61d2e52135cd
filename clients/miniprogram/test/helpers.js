'use strict';
// Helpers of the tests against a real server.
const fs = require('node:fs');
const path = require('node:path');
// Not the global setTimeout, which the Sensors test replaces with an unref'd one.
const { setTimeout: sleep } = require('node:timers/promises');

/** Waits (real time) until `check()` holds. */
async function until(what, check, ms = 15000) {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Tells tests/clients.rs what was sent, for it to find in the read models. */
function report(name, value) {
  const dir = process.env.LIANDONG_RESULT_DIR;
  if (dir) fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(value, null, 2));
}

module.exports = { until, report };
