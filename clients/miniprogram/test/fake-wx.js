'use strict';
// A faked `wx`: only what WeChat itself provides (storage, wx.request, app show/hide events,
// launch options, system info), and a manual clock with timers. wx.request either answers from
// a function the test gives (`respond`) or, with `baseUrl` unset and `http: true`, goes to a
// real server over HTTP (Node's fetch), as WeChat would.

/** Timers on a manual clock: `advance(ms)` runs what falls due, in order. */
function fakeClock(start = Date.parse('2026-11-24T02:00:00Z')) {
  let now = start;
  let seq = 0;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms || 0), fn, id });
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    pending: () => timers.size,
    /** Moves the clock, firing due timers one by one and letting promises settle in between. */
    async advance(ms) {
      const until = now + ms;
      for (;;) {
        await settle();
        const due = [...timers.values()].filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
        if (!due) break;
        timers.delete(due.id);
        now = due.at;
        due.fn();
      }
      now = until;
      await settle();
    },
  };
}

async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/**
 * @param {{respond?: (req: any) => any, launch?: any, storage?: Map<string, string>, http?: boolean, systemInfo?: any}} [opts]
 */
function fakeWx(opts = {}) {
  const storage = opts.storage || new Map();
  const listeners = { show: [], hide: [], network: [] };
  const requests = [];
  const responses = [];
  let respond = opts.respond || (() => ({ statusCode: 200, data: { accepted: 0, rejected: [] } }));
  let offline = false;
  const wx = {
    // Storage: WeChat keeps JSON-serializable values; a copy comes back, never the same object.
    getStorageSync(key) {
      return storage.has(key) ? JSON.parse(storage.get(key)) : '';
    },
    setStorageSync(key, value) {
      storage.set(key, JSON.stringify(value));
    },
    getStorage({ key, success, fail, complete }) {
      const res = storage.has(key) ? { data: JSON.parse(storage.get(key)), errMsg: 'getStorage:ok' } : null;
      setImmediate(() => {
        if (res) success && success(res);
        else fail && fail({ errMsg: 'getStorage:fail data not found' });
        complete && complete(res || { errMsg: 'getStorage:fail data not found' });
      });
    },
    setStorage({ key, data, success, complete }) {
      storage.set(key, JSON.stringify(data));
      setImmediate(() => {
        success && success({ errMsg: 'setStorage:ok' });
        complete && complete({ errMsg: 'setStorage:ok' });
      });
    },
    removeStorageSync(key) {
      storage.delete(key);
    },
    request(req) {
      requests.push(req);
      if (offline) {
        setImmediate(() => {
          req.fail && req.fail({ errMsg: 'request:fail net::ERR_INTERNET_DISCONNECTED' });
          req.complete && req.complete({ errMsg: 'request:fail' });
        });
        return { abort() {} };
      }
      if (opts.http) {
        httpRequest(req);
        return { abort() {} };
      }
      Promise.resolve()
        .then(() => respond(req))
        .then((res) => {
          if (res === 'fail') {
            req.fail && req.fail({ errMsg: 'request:fail timeout' });
          } else {
            req.success && req.success(Object.assign({ header: {}, errMsg: 'request:ok' }, res));
          }
          req.complete && req.complete({});
        });
      return { abort() {} };
    },
    onAppShow: (cb) => listeners.show.push(cb),
    offAppShow: (cb) => (listeners.show = listeners.show.filter((f) => f !== cb)),
    onAppHide: (cb) => listeners.hide.push(cb),
    offAppHide: (cb) => (listeners.hide = listeners.hide.filter((f) => f !== cb)),
    onNetworkStatusChange: (cb) => listeners.network.push(cb),
    getNetworkType: ({ success, complete } = {}) => {
      const res = { networkType: offline ? 'none' : 'wifi' };
      setImmediate(() => {
        success && success(res);
        complete && complete(res);
      });
    },
    getLaunchOptionsSync: () => opts.launch || { path: 'pages/index/index', scene: 1001, query: {} },
    getEnterOptionsSync: () => opts.launch || { path: 'pages/index/index', scene: 1001, query: {} },
    getSystemInfoSync: () => systemInfo(opts),
    getSystemInfo: ({ success, complete } = {}) => {
      const res = systemInfo(opts);
      setImmediate(() => {
        success && success(res);
        complete && complete(res);
      });
    },
    getAccountInfoSync: () => ({ miniProgram: { appId: '', envVersion: 'release', version: '1.0.0' } }),
    getAppBaseInfo: () => ({ SDKVersion: '3.3.4', version: '8.0.50', language: 'zh_CN' }),
    getDeviceInfo: () => ({ brand: 'devtools', model: 'iPhone 15', system: 'iOS 17.0', platform: 'devtools' }),
    getWindowInfo: () => ({ screenWidth: 390, screenHeight: 844, pixelRatio: 3 }),
    setNavigationBarTitle: () => {},
    login: ({ success }) => setImmediate(() => success && success({ code: 'fake-code' })),
  };

  function httpRequest(req) {
    const headers = Object.assign({}, req.header);
    let body;
    if (req.method === 'POST' || req.method === undefined) {
      body = typeof req.data === 'string' ? req.data : JSON.stringify(req.data);
    }
    fetch(req.url, { method: req.method || 'GET', headers, body })
      .then(async (r) => {
        const text = await r.text();
        let data = text;
        if (req.dataType !== 'text') {
          try {
            data = JSON.parse(text);
          } catch (_) {
            data = text;
          }
        }
        const header = {};
        r.headers.forEach((v, k) => (header[k] = v));
        responses.push({ url: req.url, statusCode: r.status, data });
        req.success && req.success({ statusCode: r.status, data, header, errMsg: 'request:ok' });
        req.complete && req.complete({});
      })
      .catch((e) => {
        req.fail && req.fail({ errMsg: `request:fail ${e.message}` });
        req.complete && req.complete({});
      });
  }

  return {
    wx,
    storage,
    requests,
    /** What a real server answered (http mode). */
    responses,
    /** Sets how wx.request answers (a function of the request). */
    respondWith(fn) {
      respond = fn;
    },
    setOffline(v) {
      offline = v;
      listeners.network.forEach((cb) => cb({ isConnected: !v, networkType: v ? 'none' : 'wifi' }));
    },
    show(options) {
      listeners.show.forEach((cb) => cb(options));
    },
    hide() {
      listeners.hide.forEach((cb) => cb());
    },
    listenerCount: () => listeners.show.length + listeners.hide.length,
  };
}

function systemInfo(opts) {
  return Object.assign(
    {
      brand: 'devtools',
      model: 'iPhone 15',
      pixelRatio: 3,
      screenWidth: 390,
      screenHeight: 844,
      windowWidth: 390,
      windowHeight: 844,
      language: 'zh_CN',
      version: '8.0.50',
      system: 'iOS 17.0',
      platform: 'devtools',
      SDKVersion: '3.3.4',
    },
    opts.systemInfo,
  );
}

module.exports = { fakeWx, fakeClock, settle };
