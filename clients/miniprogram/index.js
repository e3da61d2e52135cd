'use strict';
// liandong's WeChat Mini Program tracker. No build step, no side effects on import: everything
// it touches (wx, timers, the clock, randomness) is passed to createTracker. Types: index.d.ts.

const VERSION = '0.1.0';
const STORAGE_VERSION = 1;

/** @type {Required<Pick<import('./index').TrackerOptions, 'flushAt' | 'flushIntervalMs' | 'maxBatch' | 'maxQueue' | 'storageKey' | 'retryBaseMs' | 'retryMaxMs' | 'identityTimeoutMs' | 'sendUnionid'>>} */
const DEFAULTS = {
  flushAt: 20,
  flushIntervalMs: 5000,
  maxBatch: 100,
  maxQueue: 1000,
  storageKey: 'liandong_queue',
  retryBaseMs: 1000,
  retryMaxMs: 60000,
  identityTimeoutMs: 10 * 60 * 1000,
  sendUnionid: false,
};

/** Longest Retry-After honoured, so a wrong header cannot park the queue for days. */
const MAX_RETRY_AFTER_MS = 10 * 60 * 1000;

function uuidFrom(random) {
  const hex = [];
  for (let i = 0; i < 32; i++) hex.push(Math.floor(random() * 16));
  hex[12] = 4; // version 4
  hex[16] = (hex[16] & 0x3) | 0x8; // RFC 4122 variant
  const s = hex.map((n) => n.toString(16)).join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

function headerValue(headers, name) {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const k of Object.keys(headers)) {
    if (k.toLowerCase() === wanted) return headers[k];
  }
  return undefined;
}

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch (_) {
    return s;
  }
}

/**
 * Where a landing came from, read from the launch/show query: the decoded `scene` parameter of
 * a Mini Program code (`from=qrcode&id=12`), else `from`, `type` and `id` of the query.
 * @param {Record<string, string> | undefined} query
 * @returns {string | Record<string, string> | undefined}
 */
function sourceOf(query) {
  if (!query || typeof query !== 'object') return undefined;
  if (typeof query.scene === 'string' && query.scene) {
    const decoded = safeDecode(query.scene);
    if (decoded.includes('=')) return decoded;
  }
  if (query.from) {
    /** @type {Record<string, string>} */
    const source = { from: String(query.from) };
    if (query.type) source.type = String(query.type);
    if (query.id) source.id = String(query.id);
    return source;
  }
  return undefined;
}

/**
 * @param {import('./index').TrackerOptions} options
 * @returns {import('./index').Tracker}
 */
function createTracker(options) {
  if (!options || typeof options !== 'object') throw new TypeError('liandong: options: expected an object');
  const { wx } = options;
  if (!wx || typeof wx.request !== 'function') throw new TypeError('liandong: options.wx: expected the wx object');
  if (typeof options.serverUrl !== 'string' || !/^https?:\/\//.test(options.serverUrl)) {
    throw new TypeError('liandong: options.serverUrl: expected an http(s) URL such as https://liandong.example.com');
  }
  if (typeof options.key !== 'string' || options.key.length < 16) {
    throw new TypeError('liandong: options.key: expected an API key (a client key) of at least 16 characters');
  }
  const cfg = Object.assign({}, DEFAULTS, options);
  if (cfg.maxBatch < 1 || cfg.maxBatch > 100) throw new RangeError('liandong: options.maxBatch: expected 1 to 100');
  const setTimer = cfg.setTimeout || setTimeout;
  const clearTimer = cfg.clearTimeout || clearTimeout;
  const now = cfg.now || Date.now;
  const random = cfg.random || Math.random;
  // Ids draw from Math.random, not from `random` (which a test may pin to steer the jitter).
  const uuid = cfg.uuid || (() => uuidFrom(Math.random));
  const logger = cfg.logger || console;
  const endpoint = cfg.serverUrl.replace(/\/+$/, '') + '/v1/events';

  // --- persisted state -----------------------------------------------------------------------
  /** @type {{events: any[], dropped: number, identity: {mp_openid?: string, unionid?: string} | null}} */
  let state = { events: [], dropped: 0, identity: null };
  function load() {
    let saved;
    try {
      saved = wx.getStorageSync(cfg.storageKey);
    } catch (e) {
      logger.warn(`liandong: cannot read wx storage (${e && e.message}); starting with an empty queue`);
    }
    if (saved && saved.v === STORAGE_VERSION && Array.isArray(saved.events)) {
      state = { events: saved.events, dropped: saved.dropped || 0, identity: saved.identity || null };
      cap();
    }
  }
  function save() {
    try {
      wx.setStorageSync(cfg.storageKey, {
        v: STORAGE_VERSION,
        events: state.events,
        dropped: state.dropped,
        identity: state.identity,
      });
    } catch (e) {
      logger.warn(`liandong: cannot write wx storage (${e && e.message}); events stay in memory`);
    }
  }
  function cap() {
    const over = state.events.length - cfg.maxQueue;
    if (over > 0) {
      state.events.splice(0, over);
      state.dropped += over;
      logger.warn(`liandong: the queue is full (${cfg.maxQueue} events): dropped the ${over} oldest`);
    }
  }

  // What the last launch left behind (events, drop count, identity): read once, write-through.
  load();

  // --- sending -------------------------------------------------------------------------------
  let sending = null; // the flush in progress (a Promise)
  let retryAt = 0; // no request before this time (backoff)
  let failures = 0;
  let retryTimer = null;
  let intervalTimer = null;
  let stopped = false;
  const counters = { sent: 0, rejected: 0, discarded: 0 };

  function request(events) {
    return new Promise((resolve) => {
      wx.request({
        url: endpoint,
        method: 'POST',
        header: { 'content-type': 'application/json', authorization: `Bearer ${cfg.key}` },
        data: { sent_at: new Date(now()).toISOString(), events },
        dataType: 'json',
        success: (res) => resolve({ status: res.statusCode, body: res.data, header: res.header }),
        fail: (err) => resolve({ status: 0, error: (err && err.errMsg) || 'network error' }),
      });
    });
  }

  function remove(events) {
    const ids = new Set(events.map((e) => e.event_id));
    state.events = state.events.filter((e) => !ids.has(e.event_id));
    save();
  }

  function serverError(res) {
    if (res.body && typeof res.body === 'object' && typeof res.body.error === 'string') return res.body.error;
    if (typeof res.body === 'string' && res.body) return res.body.slice(0, 200);
    return 'no error message';
  }

  /** Sends one batch; resolves to 'ok' or 'retry'. */
  async function sendBatch(events) {
    const res = await request(events);
    const s = res.status;
    if (s >= 200 && s < 300) {
      const rejected = (res.body && Array.isArray(res.body.rejected) && res.body.rejected) || [];
      counters.sent += events.length - rejected.length;
      if (rejected.length) {
        counters.rejected += rejected.length;
        logger.warn(
          `liandong: the server rejected ${rejected.length} of ${events.length} events (not retried): ` +
            rejected.map((r) => `${r.event_id || `#${r.index}`}: ${r.error}`).join('; '),
        );
        if (typeof cfg.onRejected === 'function') cfg.onRejected(rejected, events);
      }
      remove(events);
      failures = 0;
      return 'ok';
    }
    if (s === 413) {
      if (events.length > 1) {
        const half = Math.ceil(events.length / 2);
        if ((await sendBatch(events.slice(0, half))) === 'retry') return 'retry';
        return sendBatch(events.slice(half));
      }
      counters.discarded += 1;
      logger.warn(`liandong: dropped event ${events[0].event_id}: too large for the server (413: ${serverError(res)})`);
      remove(events);
      return 'ok';
    }
    if (s === 0 || s === 408 || s === 429 || s >= 500) {
      failures += 1;
      const exp = Math.min(cfg.retryMaxMs, cfg.retryBaseMs * 2 ** (failures - 1));
      let wait = exp / 2 + random() * (exp / 2);
      const after = Number(headerValue(res.header, 'retry-after'));
      if (Number.isFinite(after) && after > 0) wait = Math.max(wait, Math.min(after * 1000, MAX_RETRY_AFTER_MS));
      retryAt = now() + wait;
      scheduleRetry(wait);
      return 'retry';
    }
    // Any other answer will not change by sending the same batch again.
    counters.discarded += events.length;
    logger.warn(`liandong: dropped ${events.length} events: the server answered ${s}: ${serverError(res)}`);
    remove(events);
    return 'ok';
  }

  /** Events that can be sent now: identified ones (stamped with the identity), oldest first. */
  function sendable() {
    const out = [];
    const expired = [];
    for (const e of state.events) {
      if (e.user) {
        out.push(e);
      } else if (state.identity && state.identity.mp_openid) {
        e.user = userOf(state.identity);
        out.push(e);
      } else if (now() - Date.parse(e.occurred_at) > cfg.identityTimeoutMs) {
        expired.push(e);
      }
    }
    if (expired.length) {
      state.dropped += expired.length;
      logger.warn(
        `liandong: dropped ${expired.length} events tracked before identify() and still unidentified after ${cfg.identityTimeoutMs} ms`,
      );
      remove(expired);
    }
    return out;
  }

  async function drain() {
    while (!stopped) {
      if (now() < retryAt) return;
      const ready = sendable();
      if (!ready.length) return;
      save();
      if ((await sendBatch(ready.slice(0, cfg.maxBatch))) === 'retry') return;
    }
  }

  function flush() {
    if (!sending) {
      sending = drain().finally(() => {
        sending = null;
      });
    }
    return sending;
  }

  function scheduleRetry(wait) {
    if (retryTimer) clearTimer(retryTimer);
    retryTimer = setTimer(() => {
      retryTimer = null;
      flush();
    }, wait);
  }

  function scheduleInterval() {
    intervalTimer = setTimer(() => {
      flush();
      if (!stopped) scheduleInterval();
    }, cfg.flushIntervalMs);
  }

  // --- identity ------------------------------------------------------------------------------
  function userOf(identity) {
    const user = {};
    if (identity.mp_openid) user.mp_openid = identity.mp_openid;
    if (cfg.sendUnionid && identity.unionid) user.unionid = identity.unionid;
    return user;
  }

  // --- tracking ------------------------------------------------------------------------------
  /**
   * @param {string} type
   * @param {Record<string, unknown>} [props]
   * @param {{source?: string | Record<string, unknown>, scene?: number, context?: Record<string, unknown>}} [extra]
   */
  function track(type, props, extra) {
    if (typeof type !== 'string' || !type) throw new TypeError('liandong: track: type: expected an event type such as mp.page_view');
    const event = {
      event_id: uuid(),
      type,
      occurred_at: new Date(now()).toISOString(),
      props: props || {},
      context: Object.assign({ lib: 'liandong-miniprogram', lib_version: VERSION }, extra && extra.context),
    };
    if (state.identity && state.identity.mp_openid) event.user = userOf(state.identity);
    if (extra && extra.source !== undefined) event.source = extra.source;
    if (extra && typeof extra.scene === 'number') event.scene = extra.scene;
    state.events.push(event);
    cap();
    save();
    if (started && state.events.length >= cfg.flushAt) flush();
    return event.event_id;
  }

  function identify(ids) {
    if (!ids || typeof ids.mp_openid !== 'string' || !ids.mp_openid) {
      throw new TypeError('liandong: identify: mp_openid: expected the openid your server got from code2Session');
    }
    state.identity = { mp_openid: ids.mp_openid };
    if (typeof ids.unionid === 'string' && ids.unionid) state.identity.unionid = ids.unionid;
    save();
    if (started) flush();
  }

  // --- app lifecycle -------------------------------------------------------------------------
  let started = false;
  let hidden = true; // a visit is tracked on the first show after a hide (and at start)
  function visit(opts) {
    if (!hidden) return;
    hidden = false;
    const o = opts || {};
    const extra = {};
    const source = sourceOf(o.query);
    if (source !== undefined) extra.source = source;
    if (typeof o.scene === 'number') extra.scene = o.scene;
    track('mp.visit', { page: o.path || '' }, extra);
  }
  const onShow = (opts) => visit(opts);
  const onHide = () => {
    hidden = true;
    flush();
  };

  function start() {
    if (started) return;
    started = true;
    stopped = false;
    if (typeof wx.onAppShow === 'function') wx.onAppShow(onShow);
    if (typeof wx.onAppHide === 'function') wx.onAppHide(onHide);
    const launch =
      (typeof wx.getEnterOptionsSync === 'function' && wx.getEnterOptionsSync()) ||
      (typeof wx.getLaunchOptionsSync === 'function' && wx.getLaunchOptionsSync());
    if (launch) visit(launch);
    scheduleInterval();
    flush(); // what the last launch left behind
  }

  function stop() {
    stopped = true;
    started = false;
    if (intervalTimer) clearTimer(intervalTimer);
    if (retryTimer) clearTimer(retryTimer);
    intervalTimer = retryTimer = null;
    if (typeof wx.offAppShow === 'function') wx.offAppShow(onShow);
    if (typeof wx.offAppHide === 'function') wx.offAppHide(onHide);
  }

  /**
   * Wraps a Page's options so each show records mp.page_view with the page's route.
   * @template T
   * @param {T} pageOptions
   * @param {{category?: string}} [meta]
   * @returns {T}
   */
  function page(pageOptions, meta) {
    const original = pageOptions && pageOptions.onShow;
    return Object.assign({}, pageOptions, {
      onShow(...args) {
        const props = { page: (this && this.route) || '' };
        if (meta && meta.category) props.category = meta.category;
        track('mp.page_view', props);
        if (typeof original === 'function') return original.apply(this, args);
        return undefined;
      },
    });
  }

  function stats() {
    return {
      queued: state.events.length,
      dropped: state.dropped,
      sent: counters.sent,
      rejected: counters.rejected,
      discarded: counters.discarded,
    };
  }

  return { start, stop, track, identify, page, flush: () => flush(), stats };
}

module.exports = { createTracker, sourceOf, VERSION };
