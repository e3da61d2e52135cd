'use strict';
// The tracker against a faked wx: queueing, batching, retries, identity and the page wrapper.
const test = require('node:test');
const assert = require('node:assert/strict');
const { createTracker, sourceOf } = require('..');
const { fakeWx, fakeClock } = require('./fake-wx');

const KEY = 'client-key-0123456789';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function setup(opts = {}) {
  const clock = opts.clock || fakeClock();
  const fake = opts.fake || fakeWx(opts.wx);
  const warnings = [];
  const rejections = [];
  const tracker = createTracker(
    Object.assign(
      {
        wx: fake.wx,
        serverUrl: 'https://liandong.example.com/',
        key: KEY,
        setTimeout: clock.setTimeout,
        clearTimeout: clock.clearTimeout,
        now: clock.now,
        random: () => 0.5,
        logger: { warn: (m) => warnings.push(m) },
        onRejected: (r) => rejections.push(...r),
      },
      opts.options,
    ),
  );
  return { clock, fake, tracker, warnings, rejections };
}

/** Every event the server was sent, in order. */
function sent(fake) {
  return fake.requests.flatMap((r) => r.data.events);
}

function ok(req) {
  return { statusCode: 200, data: { accepted: req.data.events.length, rejected: [] } };
}

test('importing has no side effects and options are checked by name', () => {
  const fake = fakeWx();
  assert.throws(() => createTracker({ wx: fake.wx, serverUrl: 'liandong', key: KEY }), /options\.serverUrl/);
  assert.throws(() => createTracker({ wx: fake.wx, serverUrl: 'https://x', key: 'short' }), /options\.key/);
  assert.throws(() => createTracker({ serverUrl: 'https://x', key: KEY }), /options\.wx/);
  const { tracker } = setup({ fake });
  assert.equal(fake.requests.length, 0);
  assert.equal(fake.listenerCount(), 0, 'no listener before start()');
  assert.equal(tracker.stats().queued, 0);
});

test('track stamps an event_id and occurred_at and writes the queue through to wx storage', () => {
  const { tracker, fake, clock } = setup();
  tracker.identify({ mp_openid: 'o_mp_1' });
  const id = tracker.track('mp.follow_prompt.click', { placement: 'home' });
  assert.match(id, UUID);
  const stored = fake.wx.getStorageSync('liandong_queue');
  assert.equal(stored.events.length, 1);
  assert.deepEqual(
    { ...stored.events[0], context: undefined },
    {
      event_id: id,
      type: 'mp.follow_prompt.click',
      occurred_at: new Date(clock.now()).toISOString(),
      props: { placement: 'home' },
      user: { mp_openid: 'o_mp_1' },
      context: undefined,
    },
  );
  assert.equal(stored.identity.mp_openid, 'o_mp_1');
});

test('start records the landing with scene, page and source; a show after a hide is a new visit', async () => {
  const launch = { path: 'pages/shop/index', scene: 1035, query: { from: 'menu', type: 'home', sku: 'x' } };
  const { tracker, fake, clock } = setup({ wx: { launch, respond: ok } });
  tracker.identify({ mp_openid: 'o_mp_1' });
  tracker.start();
  fake.show(launch); // WeChat's own show event of the launch: the same landing
  await tracker.flush();
  fake.hide();
  await clock.advance(10);
  fake.show({ path: 'pages/item/index', scene: 1047, query: { scene: encodeURIComponent('from=qrcode&id=12') } });
  await tracker.flush();
  const visits = sent(fake).filter((e) => e.type === 'mp.visit');
  assert.equal(visits.length, 2);
  assert.deepEqual(visits[0].props, { page: 'pages/shop/index' });
  assert.equal(visits[0].scene, 1035);
  assert.deepEqual(visits[0].source, { from: 'menu', type: 'home' });
  assert.equal(visits[1].scene, 1047);
  assert.equal(visits[1].source, 'from=qrcode&id=12');
  tracker.stop();
});

test('sourceOf reads the decoded scene parameter, else from/type/id', () => {
  assert.equal(sourceOf({ scene: 'from%3Darticle%26id%3D9' }), 'from=article&id=9');
  assert.deepEqual(sourceOf({ from: 'template', id: 'T1', other: 'x' }), { from: 'template', id: 'T1' });
  assert.equal(sourceOf({ scene: '1234' }), undefined);
  assert.equal(sourceOf(undefined), undefined);
});

test('flushes at 20 events, at most 100 per request, and on the timer', async () => {
  const { tracker, fake, clock } = setup({ wx: { respond: ok } });
  tracker.identify({ mp_openid: 'o_mp_1' });
  tracker.start(); // a visit, sent at once with whatever the last launch left
  await clock.advance(1);
  assert.equal(fake.requests.length, 1);
  for (let i = 0; i < 19; i++) tracker.track('mp.page_view', { page: `p${i}` });
  await clock.advance(1);
  assert.equal(fake.requests.length, 1, '19 events wait');
  tracker.track('mp.page_view', { page: 'p19' });
  await clock.advance(1);
  assert.equal(fake.requests.length, 2, 'the 20th sends');
  assert.equal(fake.requests[1].data.events.length, 20);
  assert.equal(fake.requests[0].header.authorization, `Bearer ${KEY}`);
  assert.equal(fake.requests[0].url, 'https://liandong.example.com/v1/events');

  tracker.stop();
  for (let i = 0; i < 250; i++) tracker.track('mp.page_view', { page: `q${i}` });
  await clock.advance(1);
  assert.equal(fake.requests.length, 2, 'a stopped tracker only queues');
  tracker.start(); // no new visit: the app was not hidden
  await clock.advance(1);
  assert.deepEqual(
    fake.requests.slice(2).map((r) => r.data.events.length),
    [100, 100, 50],
  );
  tracker.track('mp.page_view', { page: 'late' });
  await clock.advance(4990);
  assert.equal(fake.requests.length, 5);
  await clock.advance(10);
  assert.equal(fake.requests.length, 6, 'the 5 s timer sends what is left');
  assert.equal(tracker.stats().queued, 0);
  tracker.stop();
});

test('hiding the app flushes; what is left is sent at the next launch', async () => {
  const fake = fakeWx({ respond: () => 'fail' });
  const first = setup({ fake });
  first.tracker.identify({ mp_openid: 'o_mp_1' });
  first.tracker.start();
  first.tracker.track('mp.page_view', { page: 'a' });
  fake.hide();
  await first.clock.advance(1);
  assert.equal(fake.requests.length, 1, 'onAppHide flushed');
  assert.equal(first.tracker.stats().queued, 2, 'a failed request keeps its events');
  first.tracker.stop(); // the app is killed

  fake.respondWith(ok);
  fake.requests.length = 0;
  const second = setup({ fake });
  second.tracker.start();
  await second.clock.advance(1);
  const types = sent(fake).map((e) => e.type);
  assert.deepEqual(types, ['mp.visit', 'mp.page_view', 'mp.visit'], 'the old launch, then the new one');
  assert.equal(sent(fake)[0].user.mp_openid, 'o_mp_1', 'the identity survived too');
  second.tracker.stop();
});

test('network errors, 408, 429 and 5xx retry with capped, jittered backoff honouring Retry-After', async () => {
  const answers = ['fail', { statusCode: 503, data: { error: 'event log unavailable' } }, { statusCode: 408, data: '' }];
  const fake = fakeWx({ respond: (req) => answers.shift() || ok(req) });
  const { tracker, clock } = setup({ fake });
  tracker.identify({ mp_openid: 'o_mp_1' });
  tracker.track('mp.page_view', { page: 'a' });
  tracker.start();
  await clock.advance(1);
  assert.equal(fake.requests.length, 1);
  // random() = 0.5: waits are 3/4 of 1 s, 2 s, 4 s.
  await clock.advance(748);
  assert.equal(fake.requests.length, 1);
  await clock.advance(2);
  assert.equal(fake.requests.length, 2);
  await clock.advance(1500);
  assert.equal(fake.requests.length, 3);
  await clock.advance(3000);
  assert.equal(fake.requests.length, 4);
  assert.equal(tracker.stats().queued, 0);
  assert.equal(tracker.stats().sent, 2);
  const ids = fake.requests.map((r) => r.data.events.map((e) => e.event_id).join());
  assert.equal(new Set(ids).size, 1, 'every retry is the same batch with the same ids');

  fake.respondWith(() => ({ statusCode: 429, data: { error: 'too many' }, header: { 'Retry-After': '30' } }));
  tracker.track('mp.page_view', { page: 'b' });
  await tracker.flush();
  const before = fake.requests.length;
  await clock.advance(29_000);
  assert.equal(fake.requests.length, before, 'Retry-After: 30 is honoured');
  fake.respondWith(ok);
  await clock.advance(1_001);
  assert.equal(tracker.stats().queued, 0);
  tracker.stop();
  assert.equal(clock.pending(), 0, 'stop() clears every timer');
});

test('the backoff is capped', async () => {
  const fake = fakeWx({ respond: () => ({ statusCode: 500, data: {} }) });
  const { tracker, clock } = setup({ fake, options: { retryMaxMs: 8000 } });
  tracker.identify({ mp_openid: 'o_mp_1' });
  tracker.start();
  await clock.advance(60_000);
  const n = fake.requests.length;
  await clock.advance(8_000);
  assert.ok(fake.requests.length - n >= 1, 'never more than 8 s between tries');
  tracker.stop();
});

test('a 413 splits the batch; other 4xx drop it with the server error; per-event rejections are reported', async () => {
  const fake = fakeWx({
    respond: (req) =>
      req.data.events.length > 2 ? { statusCode: 413, data: { error: 'request body too large' } } : ok(req),
  });
  const { tracker, clock, warnings, rejections } = setup({ fake });
  tracker.identify({ mp_openid: 'o_mp_1' });
  for (let i = 0; i < 7; i++) tracker.track('mp.page_view', { page: `p${i}` });
  tracker.start(); // + a visit: 8 events
  await clock.advance(1);
  assert.equal(sent(fake).length, 8 + (4 + 2 + 2) * 2, 'tried 8, then halves of 4, then pairs');
  assert.equal(tracker.stats().sent, 8);
  assert.equal(tracker.stats().queued, 0);

  fake.respondWith(() => ({ statusCode: 400, data: { error: 'request body is not a batch: no events array' } }));
  tracker.track('mp.page_view', { page: 'x' });
  await tracker.flush();
  assert.equal(tracker.stats().queued, 0);
  assert.equal(tracker.stats().discarded, 1);
  assert.ok(warnings.some((w) => w.includes('400') && w.includes('no events array')), warnings.join('\n'));

  fake.respondWith((req) => ({
    statusCode: 200,
    data: {
      accepted: 1,
      rejected: [{ index: 1, event_id: req.data.events[1].event_id, error: 'type: a client key may not send "order.paid"', status: 403 }],
    },
  }));
  const requests = fake.requests.length;
  tracker.track('mp.page_view', { page: 'y' });
  tracker.track('order.paid', { order_id: 'A1', amount_fen: 100 });
  await tracker.flush();
  await clock.advance(60_000);
  assert.equal(fake.requests.length, requests + 1, 'rejections are not retried');
  assert.equal(rejections.length, 1);
  assert.equal(rejections[0].status, 403);
  assert.ok(warnings.some((w) => w.includes('order.paid')));
  assert.deepEqual(tracker.stats(), { queued: 0, dropped: 0, sent: 9, rejected: 1, discarded: 1 });
  tracker.stop();
});

test('the queue is capped, counting what it dropped, across launches', async () => {
  const fake = fakeWx({ respond: () => 'fail' });
  const { tracker, warnings } = setup({ fake, options: { maxQueue: 5 } });
  for (let i = 0; i < 8; i++) tracker.track('mp.page_view', { page: `p${i}` });
  assert.equal(tracker.stats().queued, 5);
  assert.equal(tracker.stats().dropped, 3);
  assert.deepEqual(
    fake.wx.getStorageSync('liandong_queue').events.map((e) => e.props.page),
    ['p3', 'p4', 'p5', 'p6', 'p7'],
    'the oldest go first',
  );
  assert.ok(warnings.some((w) => w.includes('queue is full')));
  const next = setup({ fake, options: { maxQueue: 5 } });
  assert.equal(next.tracker.stats().dropped, 3);
});

test('events before identify() are held, then sent with the openid; never identified, they expire', async () => {
  const { tracker, fake, clock } = setup({ wx: { respond: ok } });
  tracker.start();
  tracker.track('mp.page_view', { page: 'a' });
  await clock.advance(6000);
  assert.equal(fake.requests.length, 0, 'nothing is sent without a user');
  tracker.identify({ mp_openid: 'o_late', unionid: 'u_1' });
  await clock.advance(1);
  assert.deepEqual(
    sent(fake).map((e) => [e.type, e.user]),
    [
      ['mp.visit', { mp_openid: 'o_late' }],
      ['mp.page_view', { mp_openid: 'o_late' }],
    ],
    'held events get the openid; the unionid is not sent by default',
  );
  assert.throws(() => tracker.identify({ unionid: 'u' }), /mp_openid/);
  tracker.stop();

  const withUnionid = setup({ wx: { respond: ok }, options: { sendUnionid: true } });
  withUnionid.tracker.identify({ mp_openid: 'o_2', unionid: 'u_2' });
  withUnionid.tracker.track('mp.page_view', { page: 'b' });
  await withUnionid.tracker.flush();
  assert.deepEqual(sent(withUnionid.fake)[0].user, { mp_openid: 'o_2', unionid: 'u_2' });

  const never = setup({ wx: { respond: ok }, options: { identityTimeoutMs: 60_000 } });
  never.tracker.start();
  await never.clock.advance(66_000);
  assert.equal(never.tracker.stats().queued, 0);
  assert.equal(never.tracker.stats().dropped, 1);
  assert.equal(never.fake.requests.length, 0);
  never.tracker.stop();
});

test('the page wrapper records mp.page_view with the route and keeps the page own onShow', async () => {
  const { tracker, fake } = setup({ wx: { respond: ok } });
  tracker.identify({ mp_openid: 'o_mp_1' });
  let shown = 0;
  const options = tracker.page(
    {
      data: { a: 1 },
      onShow() {
        shown += 1;
        return this.route;
      },
    },
    { category: '烘焙工具' },
  );
  assert.deepEqual(options.data, { a: 1 });
  const pageInstance = Object.assign(Object.create(options), { route: 'pages/tools/index' });
  assert.equal(options.onShow.call(pageInstance), 'pages/tools/index');
  assert.equal(shown, 1);
  await tracker.flush();
  const [view] = sent(fake);
  assert.equal(view.type, 'mp.page_view');
  assert.deepEqual(view.props, { page: 'pages/tools/index', category: '烘焙工具' });
  // A page without its own onShow works too.
  tracker.page({}).onShow.call({ route: 'pages/x' });
  assert.equal(tracker.stats().queued, 1);
});
