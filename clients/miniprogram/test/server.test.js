'use strict';
// The tracker against a real `liandong serve` (only wx is faked: its wx.request makes real HTTP
// requests). Run by the Rust test tests/clients.rs, which starts the server, passes
// LIANDONG_URL, LIANDONG_CLIENT_KEY, LIANDONG_RUN and LIANDONG_RESULT_DIR, and afterwards checks
// that what this file reports as sent is in the read models (`events`, `member_profile`), once.
// Without LIANDONG_URL it is skipped.
const test = require('node:test');
const assert = require('node:assert/strict');
const { createTracker } = require('..');
const { fakeWx } = require('./fake-wx');
const { until, report } = require('./helpers');

const URL = process.env.LIANDONG_URL;
const KEY = process.env.LIANDONG_CLIENT_KEY;
const RUN = process.env.LIANDONG_RUN || 'local';

function tracker(fake, rejections) {
  return createTracker({
    wx: fake.wx,
    serverUrl: URL,
    key: KEY,
    flushIntervalMs: 200,
    retryBaseMs: 50,
    retryMaxMs: 200,
    logger: { warn() {} },
    onRejected: (r) => rejections.push(...r),
  });
}

test('events arrive, an offline period loses nothing, a resent batch counts once', { skip: !URL && 'LIANDONG_URL unset (run by tests/clients.rs)' }, async () => {
  const openid = `o_trk_${RUN}`;
  const storage = new Map();
  const rejections = [];
  const page = (route) => ({ route });

  // A launch from the OA menu, 24 page views through the page wrapper.
  const first = fakeWx({
    http: true,
    storage,
    launch: { path: 'pages/index/index', scene: 1035, query: { from: 'menu', type: 'home' } },
  });
  const a = tracker(first, rejections);
  a.identify({ mp_openid: openid });
  a.start();
  const shop = a.page({ onShow() {} }, { category: '烘焙工具' });
  for (let i = 0; i < 24; i++) shop.onShow.call(page(`pages/item/${i}`));
  await until('the first events to be sent', () => a.stats().queued === 0);
  assert.equal(a.stats().sent, 25);

  // Offline: 30 more page views wait in wx storage through failed retries, then the app dies.
  first.setOffline(true);
  for (let i = 0; i < 30; i++) shop.onShow.call(page(`pages/offline/${i}`));
  await new Promise((r) => setTimeout(r, 600));
  assert.ok(first.requests.length > 2, 'it kept trying');
  assert.equal(a.stats().queued, 30);
  assert.equal(a.stats().sent, 25);
  a.stop();

  // The next launch, online, from a Mini Program code: the 30 go out with the new visit.
  const second = fakeWx({
    http: true,
    storage,
    launch: { path: 'pages/item/index', scene: 1047, query: { scene: encodeURIComponent('from=qrcode&id=12') } },
  });
  const b = tracker(second, rejections);
  b.start();
  // A client key may not send server-side events: refused (403 per event), not retried.
  b.track('order.paid', { order_id: `A-${RUN}`, amount_fen: 100 });
  await until('the offline events to be sent', () => b.stats().queued === 0);
  b.stop();
  assert.equal(b.stats().sent, 31);
  assert.equal(rejections.length, 1);
  assert.equal(rejections[0].status, 403);
  assert.match(rejections[0].error, /client key may not send "order.paid"/);

  // The answer to a batch was lost, so it is sent again: same ids, counted once.
  const firstBatch = first.requests[0].data.events;
  const again = await fetch(`${URL}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ events: firstBatch }),
  });
  assert.equal(again.status, 200);
  assert.equal((await again.json()).accepted, firstBatch.length);

  const ids = new Set(
    [...first.requests, ...second.requests].flatMap((r) => r.data.events).filter((e) => e.type !== 'order.paid').map((e) => e.event_id),
  );
  assert.equal(ids.size, 56);
  report('tracker', {
    member_key: `mp:${openid}`,
    counts: { 'mp.visit': 2, 'mp.page_view': 54 },
    visits: [
      { scene: 1035, from: 'menu' },
      { scene: 1047, from: 'qrcode' },
    ],
    event_ids: [...ids],
  });
});
