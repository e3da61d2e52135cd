'use strict';
// The real Sensors Data SDK (sa-sdk-miniprogram from npm, unmodified) under Node with a faked
// wx, its server_url pointed at a real `liandong serve` (/sa, the key in the URL). Run by
// tests/clients.rs, which then finds its $MPLaunch/$MPShow/$MPViewScreen and custom event in
// `events` with the right type, scene, source and member. Without LIANDONG_URL it is skipped.
const test = require('node:test');
const assert = require('node:assert/strict');
const { fakeWx } = require('./fake-wx');
const { until, report } = require('./helpers');

const URL = process.env.LIANDONG_URL;
const KEY = process.env.LIANDONG_CLIENT_KEY;
const RUN = process.env.LIANDONG_RUN || 'local';

test('sa-sdk-miniprogram sends its launch, show, page view and custom events to /sa', { skip: !URL && 'LIANDONG_URL unset (run by tests/clients.rs)' }, async () => {
  const openid = `o_sa_${RUN}`;
  const launch = { path: 'pages/index/index', scene: 1035, query: { from: 'menu', type: 'home' } };
  const fake = fakeWx({ http: true, launch });

  // What a Mini Program's runtime provides as globals; the SDK wraps App and Page on load.
  const apps = [];
  const pages = [];
  let currentPages = [];
  global.wx = fake.wx;
  global.App = (options) => apps.push(options);
  global.Page = (options) => pages.push(options);
  global.Component = () => {};
  global.getApp = () => apps[0] || {};
  global.getCurrentPages = () => currentPages;
  // The SDK's send loop runs for the life of the app; let this process end after the test.
  const realSetTimeout = global.setTimeout;
  global.setTimeout = (fn, ms, ...args) => {
    const t = realSetTimeout(fn, ms, ...args);
    if (t && typeof t.unref === 'function') t.unref();
    return t;
  };

  const sensors = require('sa-sdk-miniprogram');
  sensors.setPara({
    name: 'sensors',
    server_url: `${URL}/sa?project=shop&token=${encodeURIComponent(KEY)}`,
    batch_send: { send_timeout: 300, max_length: 6 },
    show_log: false,
  });
  sensors.setOpenid(openid);
  sensors.init();

  App({ onLaunch() {}, onShow() {} });
  currentPages = [{ route: 'pages/index/index' }];
  fake.show(launch); // WeChat's first show: the SDK records $MPLaunch, then $MPShow
  Page({ onShow() {} });
  pages[0].onShow.call(currentPages[0]); // $MPViewScreen
  // Custom events: one named after a catalogue type, one that is not.
  sensors.track('mp_follow_prompt_click', { placement: 'home' });
  sensors.track('BuyButtonClick', { sku: 'x' });
  fake.hide(); // $MPHide, and the SDK flushes

  // The SDK asks for text (dataType: 'text'): the answers are JSON text.
  const answers = () => fake.responses.map((r) => ({ ...r, data: typeof r.data === 'string' ? JSON.parse(r.data) : r.data }));
  const answered = () => answers().reduce((n, r) => n + (r.data.accepted || 0) + ((r.data.rejected || []).length), 0);
  // Launch, show, view screen, two custom events, hide, and the SDK's first-visit profile record.
  await until('the SDK to send everything', () => answered() >= 7, 20000);
  for (const r of answers()) {
    assert.equal(r.statusCode, 200, JSON.stringify(r.data));
    assert.match(r.url, /\/sa\?project=shop&token=/);
  }
  const sent = fake.requests.map((r) => r.data);
  assert.ok(sent.every((body) => typeof body === 'string' && body.startsWith('data_list=')), 'the SDK posts data_list');
  const accepted = answers().reduce((n, r) => n + r.data.accepted, 0);
  const rejected = answers().flatMap((r) => r.data.rejected);
  assert.equal(accepted, 4, 'launch, show, view screen and the custom event');
  const reasons = rejected.map((r) => r.error.replace(/^sensors record \d+: /, ''));
  assert.equal(reasons.length, 3, reasons.join('\n'));
  assert.ok(reasons.some((r) => r.startsWith('$MPHide: the catalogue has no event')), reasons.join('\n'));
  assert.ok(reasons.some((r) => r.startsWith('event "BuyButtonClick" is not a type of the catalogue')), reasons.join('\n'));
  assert.ok(reasons.some((r) => r.startsWith('type "profile_set_once"')), reasons.join('\n'));

  report('sensors', {
    member_key: `mp:${openid}`,
    // The show of the cold start shares the launch's event id: one visit.
    counts: { 'mp.visit': 1, 'mp.page_view': 1, 'mp.follow_prompt.click': 1 },
    visits: [{ scene: 1035, from: 'menu' }],
  });
});
