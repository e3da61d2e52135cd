'use strict';
// The OA article snippet against a faked page (window, document, navigator.sendBeacon), and,
// when tests/clients.rs passes LIANDONG_URL, against a real `liandong serve`.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const LiandongOA = require('../liandong-oa.js');

const KEY = process.env.LIANDONG_CLIENT_KEY || 'client-key-0123456789';

function fakePage() {
  const listeners = {};
  const target = () => ({
    addEventListener: (type, fn) => (listeners[type] = listeners[type] || []).push(fn),
    removeEventListener: (type, fn) => (listeners[type] = (listeners[type] || []).filter((f) => f !== fn)),
  });
  const document = Object.assign(target(), { visibilityState: 'visible' });
  const window = target();
  const beacons = [];
  const navigator = {
    sendBeacon(url, blob) {
      beacons.push({ url, blob });
      return true;
    },
  };
  const fire = (type, event) => (listeners[type] || []).forEach((fn) => fn(event));
  const element = (attrs, parent) => ({ getAttribute: (k) => (k in attrs ? attrs[k] : null), parentNode: parent || null });
  return { window, document, navigator, beacons, fire, element, listeners };
}

async function bodies(beacons) {
  return Promise.all(beacons.map(async (b) => ({ url: b.url, type: b.blob.type, body: JSON.parse(await b.blob.text()) })));
}

test('records the read and marked link clicks, and beacons them when the page is hidden', async () => {
  const page = fakePage();
  const ld = LiandongOA.create({
    serverUrl: 'https://liandong.example.com/',
    key: KEY,
    openid: 'oa_reader_1',
    articleId: 'A-100',
    title: '冬季烘焙指南',
    experiment: 'exp1',
    variant: 'b',
    window: page.window,
    document: page.document,
    navigator: page.navigator,
  });
  assert.equal(page.beacons.length, 0, 'nothing is sent while the page is read');
  const card = page.element({ 'data-liandong-link': 'card', href: 'pages/shop/index' });
  page.fire('click', { target: page.element({}, card) }); // a click inside the card
  page.fire('click', { target: page.element({ href: 'https://elsewhere' }) }); // not marked
  assert.equal(ld.pending(), 2);
  page.document.visibilityState = 'hidden';
  page.fire('visibilitychange');
  const [beacon] = await bodies(page.beacons);
  assert.equal(beacon.url, `https://liandong.example.com/v1/beacon?token=${KEY}`);
  assert.equal(beacon.type, 'text/plain', 'no CORS preflight');
  assert.deepEqual(
    beacon.body.events.map((e) => [e.type, e.user, e.props]),
    [
      ['oa.article.read', { oa_openid: 'oa_reader_1' }, { article_id: 'A-100', title: '冬季烘焙指南', experiment: 'exp1', variant: 'b' }],
      ['oa.article.click', { oa_openid: 'oa_reader_1' }, { article_id: 'A-100', link: 'card', target: 'pages/shop/index', experiment: 'exp1', variant: 'b' }],
    ],
  );
  assert.ok(beacon.body.events.every((e) => /^[0-9a-f-]{36}$/.test(e.event_id) && !Number.isNaN(Date.parse(e.occurred_at))));
  ld.read(); // once per page
  page.fire('pagehide');
  assert.equal(page.beacons.length, 1, 'nothing left to send');
  ld.stop();
  assert.equal(page.listeners.click.length, 0);
});

test('options are checked by name', () => {
  assert.throws(() => LiandongOA.create({ serverUrl: 'https://x', key: KEY, articleId: 'A' }), /openid/);
  assert.throws(() => LiandongOA.create({ key: KEY, openid: 'o', articleId: 'A' }), /serverUrl/);
});

test('beacons reach a real liandong serve', { skip: !process.env.LIANDONG_URL && 'LIANDONG_URL unset (run by tests/clients.rs)' }, async () => {
  const page = fakePage();
  const answers = [];
  page.navigator.sendBeacon = (url, blob) => {
    answers.push(fetch(url, { method: 'POST', body: blob, headers: { 'content-type': blob.type } }).then(async (r) => [r.status, await r.json()]));
    return true;
  };
  const openid = `oa_web_${process.env.LIANDONG_RUN || 'local'}`;
  const ld = LiandongOA.create({
    serverUrl: process.env.LIANDONG_URL,
    key: KEY,
    openid,
    articleId: 'A-200',
    window: page.window,
    document: page.document,
    navigator: page.navigator,
  });
  ld.click('text', 'pages/item/index');
  page.fire('pagehide');
  const [[status, body]] = await Promise.all(answers);
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body, { accepted: 2, rejected: [] });
  if (process.env.LIANDONG_RESULT_DIR) {
    fs.writeFileSync(
      path.join(process.env.LIANDONG_RESULT_DIR, 'web.json'),
      JSON.stringify({ member_key: `oa:${openid}`, counts: { 'oa.article.read': 1, 'oa.article.click': 1 }, visits: [] }),
    );
  }
});
