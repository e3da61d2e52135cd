/*
 * liandong snippet for Official Account article pages (H5): records oa.article.read when the
 * page is read and oa.article.click for links marked data-liandong-link="text|card", with the OA
 * openid the page already has (from its own OAuth), and sends them with navigator.sendBeacon
 * when the page is hidden or unloaded. Plain ES5, no build step; a global LiandongOA in a page,
 * a CommonJS module under Node.
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.LiandongOA = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var VERSION = '0.1.0';
  /** Events per beacon: a beacon carries at most about 64 KiB. */
  var PER_BEACON = 50;

  function uuid() {
    var c = typeof crypto !== 'undefined' ? crypto : null;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID();
    var hex = '';
    for (var i = 0; i < 32; i++) {
      var n = Math.floor(Math.random() * 16);
      if (i === 12) n = 4;
      if (i === 16) n = (n & 3) | 8;
      hex += n.toString(16);
    }
    return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' + hex.slice(16, 20) + '-' + hex.slice(20);
  }

  function required(opts, name, what) {
    if (typeof opts[name] !== 'string' || !opts[name]) throw new TypeError('liandong: ' + name + ': expected ' + what);
    return opts[name];
  }

  /**
   * @param {{serverUrl: string, key: string, openid: string, articleId: string, title?: string,
   *   category?: string, experiment?: string, variant?: string, autoRead?: boolean,
   *   window?: any, document?: any, navigator?: any, now?: () => number}} opts
   */
  function create(opts) {
    opts = opts || {};
    var serverUrl = required(opts, 'serverUrl', 'liandong\'s URL, e.g. https://liandong.example.com').replace(/\/+$/, '');
    var key = required(opts, 'key', 'a client key');
    var openid = required(opts, 'openid', 'the reader\'s OA openid (from the page\'s own OAuth)');
    var articleId = required(opts, 'articleId', 'the article\'s id');
    var win = opts.window || (typeof window !== 'undefined' ? window : null);
    var doc = opts.document || (typeof document !== 'undefined' ? document : null);
    var nav = opts.navigator || (typeof navigator !== 'undefined' ? navigator : null);
    var now = opts.now || Date.now;
    var url = serverUrl + '/v1/beacon?token=' + encodeURIComponent(key);
    var queue = [];
    var read = false;

    function extra(props) {
      ['experiment', 'variant'].forEach(function (k) {
        if (opts[k]) props[k] = opts[k];
      });
      return props;
    }

    function track(type, props) {
      queue.push({
        event_id: uuid(),
        type: type,
        occurred_at: new Date(now()).toISOString(),
        user: { oa_openid: openid },
        props: props,
        context: { lib: 'liandong-web', lib_version: VERSION },
      });
    }

    /** Records that the article was read (once per page). */
    function markRead() {
      if (read) return;
      read = true;
      var props = { article_id: articleId };
      if (opts.title) props.title = opts.title;
      if (opts.category) props.category = opts.category;
      track('oa.article.read', extra(props));
    }

    /** Records a click on a link of the article: `link` is text or card. */
    function click(link, target) {
      var props = { article_id: articleId, link: link };
      if (target) props.target = target;
      track('oa.article.click', extra(props));
    }

    /** Sends what is queued: beacons, or a keepalive fetch where beacons are refused. */
    function flush() {
      while (queue.length) {
        var body = JSON.stringify({ sent_at: new Date(now()).toISOString(), events: queue.splice(0, PER_BEACON) });
        var sent = false;
        if (nav && typeof nav.sendBeacon === 'function') {
          try {
            sent = nav.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
          } catch (e) {
            sent = false;
          }
        }
        if (!sent && typeof fetch === 'function') {
          fetch(url, { method: 'POST', body: body, keepalive: true, mode: 'no-cors', headers: { 'content-type': 'text/plain' } });
        }
      }
    }

    function onClick(e) {
      var el = e && e.target;
      while (el && el.getAttribute) {
        var link = el.getAttribute('data-liandong-link');
        if (link) {
          click(link, el.getAttribute('href') || el.getAttribute('data-liandong-target') || undefined);
          return;
        }
        el = el.parentNode;
      }
    }
    function onVisibility() {
      if (doc.visibilityState === 'hidden') flush();
    }

    if (doc) {
      doc.addEventListener('click', onClick, true);
      doc.addEventListener('visibilitychange', onVisibility);
    }
    if (win) win.addEventListener('pagehide', flush);
    if (opts.autoRead !== false) markRead();

    function stop() {
      if (doc) {
        doc.removeEventListener('click', onClick, true);
        doc.removeEventListener('visibilitychange', onVisibility);
      }
      if (win) win.removeEventListener('pagehide', flush);
    }

    return { read: markRead, click: click, flush: flush, stop: stop, pending: function () { return queue.length; } };
  }

  return { create: create, VERSION: VERSION };
});
