// Live updates: long-poll the manager's `progress` route; call back when anything changed.
//
// `GET /progress?since=V&timeout=20` is held by the manager until its change counter passes
// V (or 20 s pass), so an idle experiment costs one cheap request every 20 s, and a change
// reaches the page within one round trip. The page then re-fetches only what it shows, at
// most once per MIN_REFRESH_MS: with a thousand trials reporting every second, every metric
// would otherwise start a refresh (each one a count over every trial and the page's queries).

import { get } from "./api.js";
import { sleep } from "./dom.js";

const HOLD_SECONDS = 20;
const MIN_REFRESH_MS = 1000;

/** Start long-polling; `onChange(progress)` runs for every new version. Returns a stop function. */
export function startLive(onChange) {
  let stopped = false;
  let version = -1;
  (async () => {
    let delay = 500;
    while (!stopped) {
      try {
        const progress = await get(`/progress?since=${version}&timeout=${HOLD_SECONDS}`);
        delay = 500;
        if (progress.version !== version) {
          version = progress.version;
          const started = Date.now();
          await onChange(progress);
          await sleep(Math.max(0, MIN_REFRESH_MS - (Date.now() - started)));
        } else if (["DONE", "STOPPED", "ERROR"].includes(progress.status)) {
          await sleep(1000);   // an ended manager may answer at once: do not spin
        }
      } catch (error) {
        if (error.status === 409) return;   // served read-only: nothing will change
        // The manager is gone (banner shown) or restarting: ask for everything next time (a
        // resumed manager's versions are above the old one's anyway: a stale one is answered at once).
        version = -1;
        await sleep(delay);
        delay = Math.min(delay * 2, 2000);   // a local request is cheap: notice a resume within 2 s
      }
    }
  })();
  return () => { stopped = true; };
}

/** Read-only mode has nothing to long-poll: check now and then that the server still answers. */
export function startHeartbeat(intervalMs = 5000) {
  let stopped = false;
  (async () => {
    while (!stopped) {
      await sleep(intervalMs);
      try { await get("/check-status"); } catch { /* the banner shows it */ }
    }
  })();
  return () => { stopped = true; };
}
