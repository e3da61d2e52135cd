// The liandong dashboard. Plain JavaScript, no build step: it signs in with an API key, asks
// /v1/whoami what the key's role may see, and then shows only that: metrics for analyst and
// admin, member lookup for support and admin, a refusal for ingest keys.
//
// Data comes from the query API (/v1/metrics/*), polled every 5 s while the tab is visible; an
// answer identical to the last one re-renders nothing. Text from the data (entry names,
// article ids, experiment names) only ever reaches the page as textContent, never as HTML.
'use strict';

(function () {
  const { t, setLang, lang, locale } = window.LD_I18N;

  const KEY_STORE = 'liandong.key';
  const POLL_MS = 5000;
  const KPI_NAMES = [
    'menu_click_rate', 'article_click_rate', 'follow_conversion', 'core_usage',
    'cross_platform_rate', 'linkage_conversion', 'repurchase_30d', 'follower_retention_30d',
  ];
  // Whole-member counts (people) vs member-days vs event counts, for the KPI count line.
  const KPI_UNIT = {
    menu_click_rate: 'kpi.times', article_click_rate: 'kpi.times',
    follow_conversion: 'kpi.memberdays', core_usage: 'kpi.memberdays',
    cross_platform_rate: 'kpi.memberdays', linkage_conversion: 'kpi.memberdays',
    repurchase_30d: 'kpi.people', follower_retention_30d: 'kpi.people',
  };
  const LINKAGE_RATES = ['follow_conversion', 'core_usage', 'cross_platform_rate', 'linkage_conversion'];
  const PALETTE = ['#1f5eff', '#14a06f', '#f59f00', '#8b5cf6', '#e5483b', '#0ea5e9', '#64748b'];
  // Fields of a member's answer that identify a person or hold personal data (phone, address,
  // even masked): never shown.
  const IDENTIFIER = /member_key|unionid|openid|phone|mobile|address|email|name|key_ref|personal/i;

  const state = {
    key: null,
    role: null,
    range: null, // {from, to}
    preset: 30,
    today: null, // the server's today (the end of its default range)
    gen: 0, // bumped when the range or the key changes: older answers are dropped
    raw: {}, // endpoint name -> the last answer's text
    data: {}, // endpoint name -> the last answer, parsed
    errors: {}, // endpoint name -> HTTP status of a failed answer
    inflight: false,
    timer: null,
    lastOk: null,
    failing: false,
    charts: {},
    view: 'board', // 'board' (the dashboard) or 'review' (the printable review, at #review)
  };

  // ---------------------------------------------------------------------------------------
  // Small helpers

  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const num = (n) => (n === null || n === undefined ? t('none') : new Intl.NumberFormat(locale()).format(n));

  /** A rate as a percentage: two decimals under 10 %, one above. */
  function pct(r) {
    if (r === null || r === undefined || !isFinite(r)) return t('none');
    const p = r * 100;
    return p.toFixed(Math.abs(p) < 10 ? 2 : 1) + '%';
  }

  const signed = (x, digits) => (x > 0 ? '+' : x < 0 ? '−' : '') + Math.abs(x).toFixed(digits);

  /** A difference of two rates in percentage points. */
  const pp = (d, key) => t(key || 'kpi.pp', { sign: d > 0 ? '+' : d < 0 ? '−' : '', value: Math.abs(d * 100).toFixed(2) });

  function dateTime(s) {
    if (!s) return t('none');
    const d = new Date(s);
    if (isNaN(d)) return s;
    return d.toLocaleString(locale(), { hour12: false });
  }

  const timeOfDay = (d) => d.toLocaleTimeString(locale(), { hour12: false });

  /** Every day from `from` to `to` (YYYY-MM-DD), inclusive. */
  function daysIn(from, to) {
    const out = [];
    const d = new Date(from + 'T00:00:00Z');
    const end = new Date(to + 'T00:00:00Z');
    while (d <= end && out.length < 4000) {
      out.push(d.toISOString().slice(0, 10));
      d.setUTCDate(d.getUTCDate() + 1);
    }
    return out;
  }

  function addDays(day, n) {
    const d = new Date(day + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  const ratio = (n, d) => (d ? n / d : null);

  // ---------------------------------------------------------------------------------------
  // The API

  /** GET `path` with the key; resolves to {status, text, body}; rejects on a network error. */
  async function api(path, params) {
    const url = new URL(path, document.baseURI);
    for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
    const res = await fetch(url, {
      headers: { Authorization: 'Bearer ' + state.key, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    });
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (_) {
      body = null;
    }
    return { status: res.status, text, body };
  }

  // ---------------------------------------------------------------------------------------
  // Language

  function applyStaticText() {
    document.documentElement.lang = lang() === 'zh' ? 'zh-CN' : 'en';
    document.title = t('app.title') + ' · liandong';
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll('[data-i18n-placeholder]')) {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    }
    for (const node of document.querySelectorAll('[data-i18n-title]')) node.title = t(node.dataset.i18nTitle);
    if (state.role) $('whoami').textContent = t('role.' + state.role);
    // Where this server keeps its keys (the demo's own directory, serve's data directory), or
    // that they are configured: the server writes it into the page.
    const keysFile = (document.querySelector('meta[name="liandong-keys-file"]') || {}).content;
    $('signin-hint').textContent =
      keysFile ? t('signin.hint', { path: keysFile }) : t('signin.hint.configured');
  }

  function switchLanguage() {
    setLang(lang() === 'zh' ? 'en' : 'zh');
    applyStaticText();
    if (canMetrics()) {
      buildKpiCards();
      renderAll();
    }
    renderLive();
    const last = $('member-result').dataset.member;
    if (last) renderMember(JSON.parse(last));
  }

  // ---------------------------------------------------------------------------------------
  // Signing in and out; what a role sees

  const canMetrics = () => state.role === 'analyst' || state.role === 'admin';
  const canMembers = () => state.role === 'support' || state.role === 'admin';

  function show(id, on) {
    $(id).hidden = !on;
  }

  function showSignIn(messageKey) {
    for (const id of ['analytics', 'members', 'denied', 'live', 'whoami', 'signout']) show(id, false);
    show('signin', true);
    const err = $('signin-error');
    err.hidden = !messageKey;
    err.textContent = messageKey ? t(messageKey) : '';
    $('signin-key').value = '';
    $('signin-key').focus();
  }

  function signOut(messageKey) {
    try {
      sessionStorage.removeItem(KEY_STORE);
    } catch (_) {
      // Nothing stored.
    }
    stopPolling();
    state.key = null;
    state.role = null;
    state.gen += 1;
    state.range = null;
    state.today = null;
    state.raw = {};
    state.data = {};
    state.errors = {};
    for (const chart of Object.values(state.charts)) chart.dispose();
    state.charts = {};
    // Nothing of the last key's data stays in the page.
    for (const id of ['kpis', 'table-menu', 'table-articles', 'ab', 'table-messages', 'table-activities', 'review-body', 'member-result']) $(id).replaceChildren();
    $('review-period').textContent = '';
    delete $('member-result').dataset.member;
    $('member-key').value = '';
    showSignIn(messageKey);
  }

  async function signIn(key) {
    const err = $('signin-error');
    const button = $('signin-submit');
    if (!key) {
      err.hidden = false;
      err.textContent = t('signin.empty');
      return;
    }
    button.disabled = true;
    button.textContent = t('signin.busy');
    state.key = key;
    let answer;
    try {
      answer = await api('v1/whoami');
    } catch (_) {
      answer = { status: 0 };
    }
    button.disabled = false;
    button.textContent = t('signin.submit');
    if (answer.status === 200 && answer.body && answer.body.role) {
      try {
        sessionStorage.setItem(KEY_STORE, key);
      } catch (_) {
        // Kept in memory only: a reload asks again.
      }
      enter(answer.body.role);
    } else if (answer.status === 401) {
      signOut('signin.invalid');
    } else {
      state.key = null;
      showSignIn('signin.unavailable');
    }
  }

  function enter(role) {
    state.role = role;
    state.gen += 1;
    show('signin', false);
    show('whoami', true);
    show('signout', true);
    $('whoami').textContent = t('role.' + role);
    show('denied', !canMetrics() && !canMembers());
    show('analytics', canMetrics());
    show('members', canMembers());
    show('live', canMetrics());
    if (canMetrics()) {
      buildKpiCards();
      applyView();
      renderLive();
      refresh();
      startPolling();
    }
  }

  /** Shows the view the address asks for: the review at #review, else the dashboard. */
  function applyView() {
    const view = location.hash === '#review' ? 'review' : 'board';
    show('board', view === 'board');
    show('review', view === 'review');
    show('open-review', view === 'board');
    if (view === state.view) return false;
    state.view = view;
    if (view === 'board') {
      // Charts drawn before the dashboard was hidden take its size again.
      Object.values(state.charts).forEach((c) => c.isDisposed() || c.resize());
    }
    return true;
  }

  function viewChanged() {
    if (!canMetrics() || !applyView()) return;
    window.scrollTo(0, 0);
    if (!state.range) return; // the first answer has not come yet; it reads the new view's endpoints
    state.gen += 1;
    state.raw = {};
    refresh();
  }

  // ---------------------------------------------------------------------------------------
  // The date range

  function setPreset(days) {
    state.preset = days;
    if (!state.today) return;
    setRange({ from: addDays(state.today, -(days - 1)), to: state.today });
  }

  function setRange(range) {
    state.range = range;
    $('range-from').value = range.from;
    $('range-to').value = range.to;
    for (const b of document.querySelectorAll('[data-days]')) {
      b.classList.toggle('active', state.preset !== null && Number(b.dataset.days) === state.preset);
    }
    $('range-error').hidden = true;
    state.gen += 1;
    state.raw = {};
    refresh();
  }

  function applyRangeInputs(event) {
    if (event) event.preventDefault();
    const from = $('range-from').value;
    const to = $('range-to').value;
    if (!from || !to || from > to) {
      $('range-error').hidden = false;
      $('range-error').textContent = t('range.invalid');
      return;
    }
    state.preset = null;
    setRange({ from, to });
  }

  // ---------------------------------------------------------------------------------------
  // Polling

  function startPolling() {
    stopPolling();
    state.timer = setInterval(() => {
      if (!document.hidden && !state.inflight) refresh();
    }, POLL_MS);
  }

  function stopPolling() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  /** The endpoints the current view reads, for the current range. */
  function endpoints() {
    const q = { from: state.range.from, to: state.range.to };
    if (state.view === 'review') return { review: ['v1/reports/review', q], status: ['v1/status', {}] };
    return {
      summary: ['v1/metrics/summary', q],
      linkage: ['v1/metrics/linkage', q],
      menu: ['v1/metrics/menu-entries', q],
      // Per-article totals (the endpoint's default), as many as one page holds: the table
      // ranks them by reads.
      articles: ['v1/metrics/articles', { ...q, limit: 5000 }],
      repurchase: ['v1/metrics/repurchase', q],
      follower: ['v1/metrics/follower-retention', q],
      weekly: ['v1/metrics/weekly-retention', q],
      ab: ['v1/metrics/ab', {}],
      messages: ['v1/metrics/messages', q],
      activities: ['v1/metrics/activities', {}],
      status: ['v1/status', {}],
    };
  }

  async function refresh() {
    if (!canMetrics()) return;
    const gen = state.gen;
    state.inflight = true;
    try {
      if (!state.range) {
        // The server's default range says what "today" is in its time zone.
        const first = await api('v1/metrics/summary');
        if (gen !== state.gen) return;
        if (first.status === 401) return signOut('signin.expired');
        if (first.status !== 200) throw new Error('summary ' + first.status);
        state.today = first.body.range.to;
        state.preset = state.preset || 30;
        setPreset(state.preset);
        return; // setRange started a refresh for the range
      }
      const list = Object.entries(endpoints());
      const answers = await Promise.all(list.map(([, [path, q]]) => api(path, q)));
      if (gen !== state.gen) return;
      if (answers.some((a) => a.status === 401)) return signOut('signin.expired');
      const changed = new Set();
      list.forEach(([name], i) => {
        const a = answers[i];
        if (a.status === 200) {
          delete state.errors[name];
          if (a.text !== state.raw[name]) {
            state.raw[name] = a.text;
            state.data[name] = a.body;
            changed.add(name);
          }
        } else if (state.errors[name] !== a.status) {
          state.errors[name] = a.status;
          changed.add(name);
        }
      });
      render(changed);
      state.lastOk = new Date();
      state.failing = Object.keys(state.errors).length > 0 && state.errors.summary !== undefined;
    } catch (_) {
      if (gen === state.gen) state.failing = true;
    } finally {
      if (gen === state.gen) state.inflight = false;
      renderLive();
    }
  }

  function renderLive() {
    const live = $('live');
    const text = $('live-text');
    live.classList.toggle('ok', !state.failing && !!state.lastOk);
    live.classList.toggle('error', state.failing);
    if (state.failing) {
      text.textContent = state.lastOk ? t('live.error', { time: timeOfDay(state.lastOk) }) : t('live.error.never');
    } else if (state.lastOk) {
      text.textContent = t('live.ok', { time: timeOfDay(state.lastOk) });
    } else {
      text.textContent = t('live.loading');
    }
    const status = state.data.status;
    const lag = $('lag');
    lag.hidden = !status;
    if (status) lag.textContent = status.lag > 0 ? t('live.lag', { n: num(status.lag) }) : t('live.lag.zero');
  }

  // ---------------------------------------------------------------------------------------
  // Rendering: what changed, and only that

  function render(changed) {
    const has = (...names) => names.some((n) => changed.has(n));
    if (has('summary')) renderKpis();
    if (has('summary', 'menu', 'articles', 'linkage', 'repurchase', 'follower')) renderSparks();
    if (has('menu', 'articles')) renderClickTrend();
    if (has('linkage')) {
      renderLinkageTrend();
      renderUsers();
    }
    if (has('menu')) renderMenuTable();
    if (has('articles')) renderArticleTable();
    if (has('weekly')) renderWeekly();
    if (has('repurchase')) renderCohort('repurchase');
    if (has('follower')) renderCohort('follower');
    if (has('ab')) renderAb();
    if (has('messages')) renderMessages();
    if (has('activities')) renderActivities();
    if (has('review')) renderReview();
  }

  function renderAll() {
    render(new Set(Object.keys(endpoints())));
  }

  /** The error text for an endpoint that failed, or null. */
  function failure(name) {
    const status = state.errors[name];
    if (status === undefined) return null;
    return status === 403 ? t('error.forbidden') : t('error.section', { status });
  }

  // --- KPI cards ---------------------------------------------------------------------------

  function buildKpiCards() {
    const grid = $('kpis');
    // The sparklines live in the cards: their charts go with them.
    for (const name of KPI_NAMES) {
      const c = state.charts['spark-' + name];
      if (c && !c.isDisposed()) c.dispose();
      delete state.charts['spark-' + name];
    }
    grid.replaceChildren();
    for (const name of KPI_NAMES) {
      grid.append(
        el('div', { class: 'card kpi', 'data-kpi-card': name },
          el('div', { class: 'kpi-name' },
            el('span', { 'data-kpi-label': name, text: t('kpi.' + name) }),
            el('i', { class: 'info', title: t('kpi.' + name + '.help'), 'aria-label': t('kpi.' + name + '.help') }, '?')),
          el('div', { class: 'kpi-value', 'data-kpi': name }, t('none')),
          el('div', { class: 'kpi-change', 'data-kpi-change': name }),
          el('div', { class: 'kpi-counts', 'data-kpi-counts': name }),
          el('div', { class: 'kpi-note', 'data-kpi-note': name, hidden: true }),
          el('div', { class: 'spark', id: 'spark-' + name })));
    }
    if (state.data.summary) renderKpis(true);
  }

  function renderKpis(rebuilt) {
    const summary = state.data.summary;
    const err = failure('summary');
    if (err && !summary) {
      $('range-compare').textContent = err;
      return;
    }
    if (!summary) return;
    $('range-compare').textContent = t('range.compare', summary.previous_range);
    for (const k of summary.kpis) {
      const value = document.querySelector(`[data-kpi="${k.name}"]`);
      if (!value) continue;
      const raw = k.rate === null || k.rate === undefined ? '' : String(k.rate);
      const moved = value.dataset.rate !== undefined && value.dataset.rate !== raw;
      value.dataset.rate = raw;
      value.textContent = pct(k.rate);
      if (moved && !rebuilt) {
        value.classList.remove('flash');
        void value.offsetWidth; // restart the animation
        value.classList.add('flash');
      }

      const change = document.querySelector(`[data-kpi-change="${k.name}"]`);
      change.replaceChildren();
      if (k.relative_change !== null && k.relative_change !== undefined) {
        const dir = k.relative_change > 0 ? 'up' : k.relative_change < 0 ? 'down' : 'flat';
        const arrow = dir === 'up' ? '▲ ' : dir === 'down' ? '▼ ' : '';
        change.append(
          el('span', { class: 'muted', text: t('kpi.vs') }),
          el('span', { class: dir, title: pp(k.change) }, arrow + Math.abs(k.relative_change * 100).toFixed(1) + '%'),
          el('span', { class: 'muted', text: t('kpi.prev', { value: pct(k.previous.rate) }) }));
      } else if (k.change !== null && k.change !== undefined) {
        const dir = k.change > 0 ? 'up' : k.change < 0 ? 'down' : 'flat';
        change.append(
          el('span', { class: 'muted', text: t('kpi.vs') }),
          el('span', { class: dir, text: pp(k.change) }),
          el('span', { class: 'muted', text: t('kpi.prev', { value: pct(k.previous.rate) }) }));
      } else {
        change.append(el('span', { class: 'muted', text: t('kpi.prev.none') }));
      }

      const unit = t(KPI_UNIT[k.name]);
      const counts = document.querySelector(`[data-kpi-counts="${k.name}"]`);
      counts.textContent = `${num(k.numerator)} ${t('count.' + k.numerator_of)} / ${num(k.denominator)} ${t('count.' + k.denominator_of)}${unit ? ' · ' + unit : ''}`;

      const note = document.querySelector(`[data-kpi-note="${k.name}"]`);
      const immature = k.cohorts ? k.cohorts.immature_cohorts : 0;
      note.hidden = !immature;
      note.textContent = immature ? t('kpi.immature', { n: immature }) : '';
    }
  }

  // --- charts ---------------------------------------------------------------------------------

  /** The chart in element `id`. Options are merged into the chart's current ones (never
   *  `notMerge`), so a live update moves the lines and bars from the old numbers instead of
   *  drawing the chart again from nothing. */
  function chart(id) {
    const node = $(id);
    if (!node || typeof echarts === 'undefined') return null;
    let c = state.charts[id];
    // A chart whose element was replaced (the KPI cards are rebuilt when the language changes)
    // would keep drawing into the detached one: start a new chart in the element on the page.
    if (c && !c.isDisposed() && c.getDom() !== node) c.dispose();
    if (!c || c.isDisposed()) {
      c = echarts.init(node, null, { renderer: 'canvas' });
      state.charts[id] = c;
    }
    return c;
  }

  /** What every chart shares. Canvas text takes the page's font stack of the current language
   *  (Latin fonts first in English, Chinese fonts first in Chinese). */
  function base() {
    return {
      color: PALETTE,
      textStyle: { fontFamily: getComputedStyle(document.documentElement).fontFamily },
      animationDuration: 400,
    };
  }

  const percentAxis = { type: 'value', axisLabel: { formatter: (v) => Math.round(v * 1000) / 10 + '%' }, splitLine: { lineStyle: { color: '#eef0f5' } } };
  const countAxis = { type: 'value', axisLabel: { formatter: (v) => new Intl.NumberFormat(locale(), { notation: 'compact' }).format(v) }, splitLine: { lineStyle: { color: '#eef0f5' } } };

  function empty(c, when) {
    c.setOption({
      title: when ? { text: t('chart.empty'), left: 'center', top: 'middle', textStyle: { color: '#9aa2b3', fontSize: 13, fontWeight: 'normal' } } : { show: false },
    });
  }

  /** Per day over the range: f(rows of that day) or null where there is no row. */
  function daily(rows, dayOf, f) {
    const by = new Map();
    for (const r of rows || []) {
      const d = dayOf(r);
      if (!by.has(d)) by.set(d, []);
      by.get(d).push(r);
    }
    return daysIn(state.range.from, state.range.to).map((d) => (by.has(d) ? f(by.get(d)) : null));
  }

  const sumRate = (num, den) => (rows) => ratio(rows.reduce((s, r) => s + r[num], 0), rows.reduce((s, r) => s + r[den], 0));

  function kpiSeries(name) {
    const d = state.data;
    switch (name) {
      case 'menu_click_rate':
        return d.menu && daily(d.menu.rows, (r) => r.day, sumRate('clicks', 'exposures'));
      case 'article_click_rate':
        return d.articles && daily(d.articles.rows, (r) => r.day, sumRate('clicks', 'reads'));
      case 'repurchase_30d':
        return d.repurchase && daily(d.repurchase.rows, (r) => r.cohort_day, sumRate('repurchased', 'converted'));
      case 'follower_retention_30d':
        return d.follower && daily(d.follower.rows, (r) => r.cohort_day, sumRate('retained', 'followers'));
      default:
        return d.linkage && daily(d.linkage.rows, (r) => r.day, (rows) => rows[0][name]);
    }
  }

  const tooltipPct = (params) => {
    const list = Array.isArray(params) ? params : [params];
    const head = list.length ? list[0].axisValueLabel : '';
    return [head].concat(list.map((p) => `${p.marker}${p.seriesName}&nbsp;&nbsp;<b>${pct(p.value)}</b>`)).join('<br>');
  };

  function renderSparks() {
    if (!state.range) return;
    KPI_NAMES.forEach((name, i) => {
      const series = kpiSeries(name);
      const c = chart('spark-' + name);
      if (!c || !series) return;
      const color = PALETTE[i % 4];
      c.setOption({
        ...base(),
        animation: false,
        grid: { left: 0, right: 0, top: 4, bottom: 2 },
        xAxis: { type: 'category', show: false, data: daysIn(state.range.from, state.range.to), boundaryGap: false },
        yAxis: { type: 'value', show: false, scale: true },
        tooltip: { show: false },
        series: [{
          type: 'line', data: series, connectNulls: true, symbol: 'none', smooth: true,
          lineStyle: { width: 1.6, color }, areaStyle: { color, opacity: 0.08 },
        }],
      });
    });
  }

  /** A legend above the plot that shows every series at once (it wraps onto a second line
   *  rather than paging), and the room the plot leaves for it. */
  function legendAbove(c, names) {
    const ctx = (legendAbove.canvas = legendAbove.canvas || document.createElement('canvas')).getContext('2d');
    ctx.font = '12px ' + getComputedStyle(document.documentElement).fontFamily;
    const width = Math.max(60, c.getWidth() - 16);
    let rows = 1;
    let x = 0;
    for (const name of names) {
      const w = 25 + 5 + ctx.measureText(name).width; // symbol, gap, text
      if (x > 0 && x + 10 + w > width) {
        rows += 1;
        x = w;
      } else {
        x += (x > 0 ? 10 : 0) + w;
      }
    }
    return {
      legend: { type: 'plain', top: 0, left: 'center', width, itemGap: 10, textStyle: { fontSize: 12 } },
      top: 14 + rows * 22,
    };
  }

  function lineChart(id, series) {
    const c = chart(id);
    if (!c) return;
    const days = daysIn(state.range.from, state.range.to);
    const { legend, top } = legendAbove(c, series.map((s) => s.name));
    c.setOption({
      ...base(),
      grid: { left: 48, right: 16, top, bottom: 28 },
      legend,
      tooltip: { trigger: 'axis', formatter: tooltipPct },
      xAxis: { type: 'category', data: days, boundaryGap: false, axisLabel: { formatter: (v) => v.slice(5) } },
      yAxis: percentAxis,
      series: series.map((s) => ({ type: 'line', smooth: true, connectNulls: true, showSymbol: false, clip: false, ...s })),
    });
    empty(c, series.every((s) => s.data.every((v) => v === null)));
  }

  function renderClickTrend() {
    if (!state.range) return;
    lineChart('chart-clicks', [
      { name: t('series.menu_ctr'), data: kpiSeries('menu_click_rate') || [] },
      { name: t('series.article_ctr'), data: kpiSeries('article_click_rate') || [] },
    ]);
  }

  function renderLinkageTrend() {
    if (!state.range) return;
    lineChart('chart-linkage', LINKAGE_RATES.map((name) => ({ name: t('series.' + name), data: kpiSeries(name) || [] })));
  }

  function renderUsers() {
    const c = chart('chart-users');
    if (!c || !state.data.linkage) return;
    const rows = state.data.linkage.rows;
    const pick = (field) => daily(rows, (r) => r.day, (rs) => rs[0][field]);
    const names = ['series.mp_users', 'series.oa_guided_users', 'series.prompt_follows'].map((k) => t(k));
    const { legend, top } = legendAbove(c, names);
    c.setOption({
      ...base(),
      grid: { left: 48, right: 16, top, bottom: 28 },
      legend,
      tooltip: { trigger: 'axis' },
      xAxis: { type: 'category', data: daysIn(state.range.from, state.range.to), axisLabel: { formatter: (v) => v.slice(5) } },
      yAxis: countAxis,
      series: [
        { type: 'bar', name: t('series.mp_users'), data: pick('mp_users'), barMaxWidth: 14 },
        { type: 'bar', name: t('series.oa_guided_users'), data: pick('oa_guided_users'), barMaxWidth: 14 },
        { type: 'line', name: t('series.prompt_follows'), data: pick('prompt_follows'), smooth: true, showSymbol: false, connectNulls: true },
      ],
    });
    empty(c, rows.length === 0);
  }

  function renderWeekly() {
    const c = chart('chart-weekly');
    const w = state.data.weekly;
    if (!c || !w) return;
    const weeks = [...new Set(w.rows.map((r) => r.cohort_week))].sort();
    const size = new Map(w.rows.map((r) => [r.cohort_week, r.cohort_size]));
    const filling = new Set(w.rows.filter((r) => r.cohort_filling).map((r) => r.cohort_week));
    const maxOffset = w.rows.reduce((m, r) => Math.max(m, r.week_offset), 0);
    const offsets = Array.from({ length: maxOffset + 1 }, (_, i) => i);
    const cell = (r) => ({
      value: [r.week_offset, weeks.indexOf(r.cohort_week), r.active_rate === null ? null : r.active_rate],
      row: r,
    });
    // A week that holds today is not over: its rate is still rising, not a drop. Such cells are
    // drawn apart, grey and dashed, outside the colour scale of the weeks that are over.
    const done = w.rows.filter((r) => !r.in_progress).map(cell);
    const open = w.rows.filter((r) => r.in_progress).map(cell);
    const rate = (p) => (p.value[2] === null ? '' : Math.round(p.value[2] * 1000) / 10 + '%');
    c.setOption({
      ...base(),
      grid: { left: 150, right: 24, top: 10, bottom: 64 },
      tooltip: {
        formatter: (p) => t('weekly.tooltip', {
          week: p.data.row.cohort_week, offset: p.data.row.week_offset, active: num(p.data.row.active),
          size: num(p.data.row.cohort_size), rate: pct(p.data.row.active_rate),
        }) + (p.data.row.in_progress ? '<br>' + t('weekly.tooltip.open') : '') +
          (p.data.row.cohort_filling ? '<br>' + t('weekly.tooltip.filling') : ''),
      },
      xAxis: { type: 'category', data: offsets.map((n) => t('weekly.offset', { n })), splitArea: { show: true } },
      yAxis: {
        type: 'category', inverse: true, splitArea: { show: true },
        data: weeks.map((wk) => t(filling.has(wk) ? 'weekly.cohort.filling' : 'weekly.cohort', { week: wk, n: num(size.get(wk)) })),
      },
      visualMap: {
        seriesIndex: 0,
        min: 0, max: 1, calculable: false, orient: 'horizontal', left: 'center', bottom: 4, itemHeight: 120,
        text: ['100%', '0%'],
        inRange: { color: ['#eef3ff', '#9db8ff', '#1f5eff', '#0b2f8a'] },
        formatter: (v) => Math.round(v * 100) + '%',
        textStyle: { fontSize: 11 },
      },
      series: [{
        id: 'weekly-done', type: 'heatmap', data: done,
        label: { show: true, fontSize: 11, formatter: rate },
        emphasis: { itemStyle: { borderColor: '#1d2433', borderWidth: 1 } },
        itemStyle: { borderColor: '#fff', borderWidth: 2 },
      }, {
        id: 'weekly-in-progress', type: 'heatmap', data: open,
        label: { show: true, fontSize: 11, color: '#6b7385', formatter: (p) => rate(p) + '…' },
        emphasis: { itemStyle: { borderColor: '#1d2433', borderWidth: 1 } },
        itemStyle: { color: '#f4f5f8', borderColor: '#b9c0cf', borderWidth: 1, borderType: 'dashed' },
      }],
    });
    empty(c, w.rows.length === 0);
  }


  function renderCohort(kind) {
    const id = kind === 'repurchase' ? 'chart-repurchase' : 'chart-follower';
    const c = chart(id);
    const d = state.data[kind];
    if (!c || !d) return;
    const sizeField = kind === 'repurchase' ? 'converted' : 'followers';
    const rateField = kind === 'repurchase' ? 'repurchase_rate' : 'retention_rate';
    const rows = d.rows;
    const color = kind === 'repurchase' ? PALETTE[0] : PALETTE[1];
    c.setOption({
      ...base(),
      color: [color, PALETTE[2]],
      grid: { left: 48, right: 48, top: 36, bottom: 28 },
      legend: { top: 0, textStyle: { fontSize: 12 } },
      tooltip: {
        trigger: 'axis',
        formatter: (ps) => {
          const list = Array.isArray(ps) ? ps : [ps];
          const r = rows[list[0].dataIndex];
          return [r.cohort_day + (r.mature ? '' : ' *'),
            `${list[0].marker}${t('series.' + sizeField)}&nbsp;&nbsp;<b>${num(r[sizeField])}</b>`,
            `${(list[1] || list[0]).marker}${t('series.' + rateField)}&nbsp;&nbsp;<b>${pct(r[rateField])}</b>`].join('<br>');
        },
      },
      xAxis: { type: 'category', data: rows.map((r) => r.cohort_day), axisLabel: { formatter: (v) => v.slice(5) } },
      yAxis: [countAxis, { ...percentAxis, splitLine: { show: false } }],
      series: [
        {
          type: 'bar', name: t('series.' + sizeField), barMaxWidth: 16,
          data: rows.map((r) => ({ value: r[sizeField], itemStyle: { color, opacity: r.mature ? 0.9 : 0.35 } })),
        },
        {
          type: 'line', name: t('series.' + rateField), yAxisIndex: 1, smooth: 0.3, symbolSize: 5,
          clip: false, // a rate of 100 % sits on the top edge: draw it whole
          data: rows.map((r) => r[rateField]),
        },
      ],
    });
    empty(c, rows.length === 0);
  }

  // --- tables -----------------------------------------------------------------------------------

  function rateCell(rate) {
    const width = rate === null ? 0 : Math.max(0, Math.min(1, rate)) * 100;
    return el('span', { class: 'rate-cell' },
      el('span', { class: 'rate-bar' }, el('i', { style: `width:${width.toFixed(1)}%` })),
      el('span', { text: pct(rate) }));
  }

  /** A table of `rows` (the first `limit` shown). With `csv` ({name, range}), a button above it
   *  downloads every row as CSV: each column's `csv(row)` value (raw numbers, rates as
   *  fractions), under the column titles of the page's language. */
  function table(columns, rows, limit, csv) {
    if (!rows.length) return el('div', { class: 'empty', text: t('table.empty') });
    const shown = rows.slice(0, limit);
    const wrap = el('div', {},
      csv ? csvButton(csv, columns, rows) : null,
      el('table', { class: 'data' },
        el('thead', {}, el('tr', {}, columns.map((c) => el('th', { text: c.title })))),
        el('tbody', {}, shown.map((r) => el('tr', {}, columns.map((c) => el('td', { class: c.text ? 'text' : null }, c.cell(r))))))));
    if (rows.length > shown.length) {
      wrap.append(el('p', { class: 'muted small table-note', text: t('table.more', { n: rows.length, shown: shown.length }) }));
    }
    return wrap;
  }

  // --- CSV downloads ----------------------------------------------------------------------------

  /** One CSV field (RFC 4180). Text from the data that a spreadsheet would run as a formula
   *  (starting with = + - @, a tab or a carriage return) is prefixed with ' (OWASP's advice). */
  function csvField(v) {
    if (v === null || v === undefined) return '';
    let s = String(v);
    if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  /** The CSV text of `rows`: a header of the column titles, then a line per row. Starts with a
   *  byte-order mark, so Excel opens the Chinese text as UTF-8. */
  function csvText(columns, rows) {
    const lines = [columns.map((c) => c.title), ...rows.map((r) => columns.map((c) => (c.csv ? c.csv(r) : c.cell(r))))];
    return '\uFEFF' + lines.map((cells) => cells.map(csvField).join(',')).join('\r\n') + '\r\n';
  }

  /** The download's file name: liandong-<name>[-<from>_<to>].csv, in plain ASCII. */
  function csvFileName(name, range) {
    const safe = String(name).replace(/[^A-Za-z0-9_.-]+/g, '_');
    return `liandong-${safe}${range ? `-${range.from}_${range.to}` : ''}.csv`;
  }

  function csvButton(csv, columns, rows) {
    const button = el('button', { class: 'btn btn-chip csv-download no-print', type: 'button', 'data-csv': csv.name, text: t('csv.download') });
    button.addEventListener('click', () => {
      const blob = new Blob([csvText(columns, rows)], { type: 'text/csv;charset=utf-8' });
      const a = el('a', { href: URL.createObjectURL(blob), download: csvFileName(csv.name, csv.range) });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    });
    return el('div', { class: 'table-tools' }, button);
  }

  /** The period a traffic table covers and what it counts. */
  const tableScope = (name, range) =>
    el('p', { class: 'muted small table-scope', 'data-table-scope': name, text: t('table.scope', range) });

  function renderMenuTable() {
    const target = $('table-menu');
    const err = failure('menu');
    if (err) return target.replaceChildren(el('div', { class: 'empty', text: err }));
    const d = state.data.menu;
    if (!d) return;
    const rows = [...d.totals].sort((a, b) => b.exposures - a.exposures || a.entry.localeCompare(b.entry));
    target.replaceChildren(tableScope('menu', d.range), table([
      { title: t('col.entry'), cell: (r) => r.entry, text: true },
      { title: t('col.variant'), cell: (r) => r.variant || t('variant.none'), csv: (r) => r.variant, text: true },
      { title: t('col.exposures'), cell: (r) => num(r.exposures), csv: (r) => r.exposures },
      { title: t('col.clicks'), cell: (r) => num(r.clicks), csv: (r) => r.clicks },
      { title: t('col.ctr'), cell: (r) => rateCell(r.click_rate), csv: (r) => r.click_rate },
    ], rows, 20, { name: 'menu-entries', range: d.range }));
  }

  function renderArticleTable() {
    const target = $('table-articles');
    const err = failure('articles');
    if (err) return target.replaceChildren(el('div', { class: 'empty', text: err }));
    const d = state.data.articles;
    if (!d) return;
    const rows = [...d.totals].sort((a, b) => b.reads - a.reads || a.article_id.localeCompare(b.article_id));
    target.replaceChildren(tableScope('articles', d.range), table([
      { title: t('col.article'), cell: (r) => r.article_id, text: true },
      { title: t('col.reads'), cell: (r) => num(r.reads), csv: (r) => r.reads },
      { title: t('col.clicks'), cell: (r) => num(r.clicks), csv: (r) => r.clicks },
      { title: t('col.ctr'), cell: (r) => rateCell(r.click_rate), csv: (r) => r.click_rate },
    ], rows, 15, { name: 'articles', range: d.range }));
  }

  // --- A/B readout --------------------------------------------------------------------------

  const Z_ALPHA = 1.959963984540054; // two-sided alpha 0.05
  const Z_BETA = 0.8416212335729143; // power 0.8

  /** Users per variant to detect p1 vs p2 (two-sided alpha 0.05, power 0.8); Infinity if equal. */
  function sampleSize(p1, p2) {
    const d = Math.abs(p1 - p2);
    if (d === 0) return Infinity;
    const pbar = (p1 + p2) / 2;
    const root = Z_ALPHA * Math.sqrt(2 * pbar * (1 - pbar)) + Z_BETA * Math.sqrt(p1 * (1 - p1) + p2 * (1 - p2));
    return Math.ceil((root * root) / (d * d));
  }

  const pValue = (p) => (p < 0.001 ? '< 0.001' : p.toFixed(3));
  const pChance = (p) => (p < 0.001 ? (lang() === 'zh' ? '不到 0.1%' : 'less than 0.1%') : (p * 100).toFixed(1) + '%');

  /** The verdict for `v` against `control`: {badge, text, need}. */
  function verdict(v, control) {
    const names = { v: v.variant, c: control.variant };
    if (!v.exposed_users || !control.exposed_users || v.ctr === null || control.ctr === null) {
      return { badge: 'nodata', text: t('ab.nodata', names) };
    }
    const common = {
      ...names, ctr: pct(v.ctr), cctr: pct(control.ctr),
      lift: v.lift === null ? t('none') : signed(v.lift * 100, 1) + '%',
      pv: v.p_value === null ? t('none') : pValue(v.p_value),
      p: v.p_value === null ? t('none') : pChance(v.p_value),
      lo: v.ci_low === null ? t('none') : pp(v.ci_low, 'ab.pp'),
      hi: v.ci_high === null ? t('none') : pp(v.ci_high, 'ab.pp'),
    };
    if (v.p_value !== null && v.p_value < 0.05) {
      const level = v.p_value < 0.001 ? 'ab.level.1' : v.p_value < 0.01 ? 'ab.level.2' : 'ab.level.3';
      const win = v.ctr > control.ctr;
      return {
        badge: win ? 'win' : 'lose',
        text: t(win ? 'ab.win' : 'ab.lose', common) + ' ' + t('ab.sure', { ...common, level: t(level) }),
      };
    }
    const n = sampleSize(v.ctr, control.ctr);
    let need;
    if (!isFinite(n)) need = t('ab.need.same');
    else {
      const more = n - Math.min(v.exposed_users, control.exposed_users);
      need = more > 0 ? t('ab.need', { n: num(n), more: num(more) }) : t('ab.need.close', { n: num(n) });
    }
    return { badge: 'open', text: t('ab.open', common), need };
  }

  function renderAb() {
    const target = $('ab');
    const err = failure('ab');
    if (err) return target.replaceChildren(el('div', { class: 'card empty', text: err }));
    const d = state.data.ab;
    if (!d) return;
    if (!d.experiments.length) return target.replaceChildren(el('div', { class: 'card empty', text: t('ab.empty') }));
    // What these figures are, beside tables of the period that count events.
    const scope = el('p', { class: 'muted small ab-scope', 'data-ab-scope': '', text: t('ab.scope') });
    // Experiments come ordered by surface: one heading per surface, its experiments under it.
    const surfaces = [...new Set(d.experiments.map((e) => e.surface))];
    target.replaceChildren(scope, ...surfaces.map((surface) => el('div', { class: 'ab-surface', 'data-ab-surface': surface },
      el('h3', { class: 'ab-surface-title', text: t('ab.surface.' + surface) }),
      el('p', { class: 'muted small', text: t('ab.surface.' + surface + '.how') }),
      d.experiments.filter((e) => e.surface === surface).map(abCard))));
  }

  /** One experiment: its verdicts and its table. */
  function abCard(e) {
    const control = e.variants.find((v) => v.variant === 'control') ||
      [...e.variants].sort((a, b) => (a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0))[0];
    const others = e.variants.filter((v) => v !== control);
    const verdicts = others.map((v) => {
      const r = verdict(v, control);
      return el('p', { class: 'verdict', 'data-ab-verdict': `${e.experiment}/${v.variant}`, 'data-badge': r.badge },
        el('span', { class: 'pill ' + r.badge, text: t('ab.badge.' + r.badge) }), ' ',
        r.text,
        r.need ? el('span', { class: 'need' }, ' ', r.need,
          el('i', { class: 'info formula', title: t('ab.formula'), 'aria-label': t('ab.formula.label') }, '?')) : null);
    });
    const rows = e.variants.map((v) => el('tr', {},
      el('td', { class: 'text' }, v.variant, v === control && v.variant !== t('ab.control') ? el('span', { class: 'muted small', text: ' · ' + t('ab.control') }) : null),
      el('td', { text: num(v.exposed_users) }),
      el('td', { text: num(v.clicked_users) }),
      el('td', { text: pct(v.ctr) }),
      el('td', { text: v.lift === null ? t('none') : signed(v.lift * 100, 1) + '%' }),
      el('td', { text: v.p_value === null ? t('none') : pValue(v.p_value) }),
      el('td', { text: v.ci_low === null ? t('none') : `${pp(v.ci_low, 'ab.pp')} ~ ${pp(v.ci_high, 'ab.pp')}` })));
    const csvColumns = [
      { title: t('ab.col.surface'), csv: () => e.surface },
      { title: t('ab.col.experiment'), csv: () => e.experiment },
      { title: t('ab.col.variant'), csv: (v) => v.variant },
      { title: t('ab.col.exposed'), csv: (v) => v.exposed_users },
      { title: t('ab.col.clicked'), csv: (v) => v.clicked_users },
      { title: t('ab.col.ctr'), csv: (v) => v.ctr },
      { title: t('ab.col.lift'), csv: (v) => v.lift },
      { title: t('ab.col.p'), csv: (v) => v.p_value },
      { title: t('ab.col.ci_low'), csv: (v) => v.ci_low },
      { title: t('ab.col.ci_high'), csv: (v) => v.ci_high },
    ];
    return el('div', { class: 'card ab-card' },
      el('div', { class: 'ab-head' }, el('h3', { text: e.experiment }),
        csvButton({ name: `ab-${e.surface}-${e.experiment}` }, csvColumns, e.variants)),
      verdicts,
      el('div', { class: 'table-wrap' },
        el('table', { class: 'data' },
          el('thead', {}, el('tr', {}, ['ab.col.variant', 'ab.col.exposed', 'ab.col.clicked', 'ab.col.ctr', 'ab.col.lift', 'ab.col.p', 'ab.col.ci']
            .map((k) => el('th', { text: t(k) })))),
          el('tbody', {}, rows))));
  }

  // --- Messages: the funnel per template ---------------------------------------------------

  const FUNNEL = ['sent_users', 'delivered_users', 'clicked_users', 'visit_users', 'converted_users'];

  function renderMessages() {
    const target = $('table-messages');
    const err = failure('messages');
    if (err) return target.replaceChildren(el('div', { class: 'empty', text: err }));
    const d = state.data.messages;
    if (!d) return;
    const rows = [...d.totals].sort((a, b) => b.sent_users - a.sent_users || a.template_id.localeCompare(b.template_id));
    target.replaceChildren(
      el('p', { class: 'muted small table-scope', 'data-table-scope': 'messages', text: t('msg.scope', d.range) }),
      table([
        { title: t('msg.col.channel'), cell: (r) => t('msg.channel.' + r.channel), csv: (r) => r.channel, text: true },
        { title: t('msg.col.template'), cell: (r) => el('span', { 'data-message': `${r.channel}/${r.template_id}`, text: r.template_id }), csv: (r) => r.template_id, text: true },
        { title: t('msg.col.sent'), cell: (r) => num(r.sent_users), csv: (r) => r.sent_users },
        { title: t('msg.col.delivered'), cell: (r) => num(r.delivered_users), csv: (r) => r.delivered_users },
        { title: t('msg.col.clicked'), cell: (r) => num(r.clicked_users), csv: (r) => r.clicked_users },
        { title: t('msg.col.visit'), cell: (r) => num(r.visit_users), csv: (r) => r.visit_users },
        { title: t('msg.col.converted'), cell: (r) => num(r.converted_users), csv: (r) => r.converted_users },
        { title: t('msg.col.delivery_rate'), cell: (r) => rateCell(r.delivery_rate), csv: (r) => r.delivery_rate },
        { title: t('msg.col.click_rate'), cell: (r) => rateCell(r.click_rate), csv: (r) => r.click_rate },
        { title: t('msg.col.conversion_rate'), cell: (r) => rateCell(r.conversion_rate), csv: (r) => r.conversion_rate },
      ], rows, 20, { name: 'messages', range: d.range }));
    const c = chart('chart-messages');
    if (!c) return;
    const top = rows.slice(0, 6);
    empty(c, !top.length);
    c.setOption({
      ...base(),
      tooltip: { trigger: 'axis' },
      legend: { top: 0, type: 'plain' },
      grid: { left: 48, right: 16, top: 28 + 22 * Math.ceil(top.length / 3), bottom: 28 },
      xAxis: { type: 'category', data: FUNNEL.map((k) => t('msg.step.' + k)) },
      yAxis: { ...countAxis, minInterval: 1 },
      series: top.map((r) => ({
        id: `msg-${r.channel}-${r.template_id}`, type: 'bar',
        name: `${t('msg.channel.' + r.channel)} · ${r.template_id}`,
        data: FUNNEL.map((k) => r[k]),
      })),
    }, { replaceMerge: ['series'] });
  }

  // --- Campaigns: the live board ----------------------------------------------------------

  /** Fen as yuan, a number, for CSV: 12345 -> 123.45. */
  const fenToYuan = (fen) => (fen === null || fen === undefined ? null : fen / 100);
  const yuan = (fen) => (fen === null || fen === undefined ? t('none') : '¥' + new Intl.NumberFormat(locale(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(fen / 100));

  function renderActivities() {
    const target = $('table-activities');
    const err = failure('activities');
    if (err) return target.replaceChildren(el('div', { class: 'empty', text: err }));
    const d = state.data.activities;
    if (!d) return;
    const rows = [...d.activities].sort((a, b) => b.joined_users - a.joined_users || a.activity_id.localeCompare(b.activity_id));
    target.replaceChildren(
      el('p', { class: 'muted small table-scope', 'data-table-scope': 'activities', text: t('act.scope') }),
      table([
        { title: t('act.col.activity'), cell: (r) => el('span', { 'data-activity': r.activity_id, text: r.activity_id }), csv: (r) => r.activity_id, text: true },
        { title: t('act.col.reserved'), cell: (r) => num(r.reserved_users), csv: (r) => r.reserved_users },
        { title: t('act.col.joined'), cell: (r) => num(r.joined_users), csv: (r) => r.joined_users },
        { title: t('act.col.reserved_join'), cell: (r) => rateCell(r.reserved_join_rate), csv: (r) => r.reserved_join_rate },
        { title: t('act.col.guided_join'), cell: (r) => rateCell(r.guided_join_rate), csv: (r) => r.guided_join_rate },
        { title: t('act.col.groups_completed'), cell: (r) => num(r.groups_completed), csv: (r) => r.groups_completed },
        { title: t('act.col.groups_started'), cell: (r) => num(r.groups_started), csv: (r) => r.groups_started },
        { title: t('act.col.group_success'), cell: (r) => rateCell(r.group_success_rate), csv: (r) => r.group_success_rate },
        { title: t('act.col.orders'), cell: (r) => num(r.orders_paid), csv: (r) => r.orders_paid },
        { title: t('act.col.buyers'), cell: (r) => num(r.order_users), csv: (r) => r.order_users },
        { title: t('act.col.revenue'), cell: (r) => el('span', { 'data-revenue': r.activity_id, text: yuan(r.revenue_fen) }), csv: (r) => fenToYuan(r.revenue_fen) },
        { title: t('act.col.aov'), cell: (r) => yuan(r.average_order_fen === null ? null : Math.round(r.average_order_fen)), csv: (r) => (r.average_order_fen === null ? null : fenToYuan(Math.round(r.average_order_fen))) },
      ], rows, 100, { name: 'campaigns' }));
  }

  // ---------------------------------------------------------------------------------------
  // The review (四(二)): each KPI against the previous period, the biggest movers, the campaigns
  // by revenue and the experiments that concluded, on one printable page.

  /** One section of the review: a title, a note, and its table (with its CSV download). */
  function reviewSection(name, note, columns, rows, range) {
    return el('section', { class: 'card review-section', 'data-review-section': name },
      el('h2', { class: 'review-section-title', text: t('review.section.' + name) }),
      note ? el('p', { class: 'muted small', text: note }) : null,
      el('div', { class: 'table-wrap' }, rows.length
        ? table(columns, rows, Infinity, { name: 'review-' + name, range })
        : el('div', { class: 'empty', text: t(name === 'experiments' ? 'review.none.experiments' : 'table.empty') })));
  }

  /** A change, signed, in the page's colours (红涨绿跌 in Chinese). */
  function changeCell(value, text) {
    const dir = value > 0 ? 'up' : value < 0 ? 'down' : 'flat';
    return el('span', { class: 'change ' + dir, text });
  }

  /** Columns of a mover table: the key, this period, the previous one, the change. */
  function moverColumns(what) {
    return [
      { title: t('review.col.' + what), cell: (r) => r.key, text: true },
      { title: t('review.col.current'), cell: (r) => num(r.current), csv: (r) => r.current },
      { title: t('review.col.previous'), cell: (r) => num(r.previous), csv: (r) => r.previous },
      { title: t('review.col.change'), cell: (r) => changeCell(r.change, (r.change > 0 ? '+' : r.change < 0 ? '−' : '') + num(Math.abs(r.change))), csv: (r) => r.change },
    ];
  }

  function renderReview() {
    const target = $('review-body');
    const err = failure('review');
    if (err) return target.replaceChildren(el('div', { class: 'card empty', text: err }));
    const d = state.data.review;
    if (!d) return;
    $('review-period').textContent = t('review.period', { from: d.range.from, to: d.range.to, pfrom: d.previous_range.from, pto: d.previous_range.to });
    const kpiColumns = [
      { title: t('review.col.kpi'), cell: (k) => t('kpi.' + k.name), csv: (k) => k.name, text: true },
      { title: t('review.col.current'), cell: (k) => pct(k.rate), csv: (k) => k.rate },
      { title: t('review.col.previous'), cell: (k) => pct(k.previous.rate), csv: (k) => k.previous.rate },
      { title: t('review.col.change_pp'), cell: (k) => (k.change === null ? t('none') : changeCell(k.change, pp(k.change))), csv: (k) => k.change },
      { title: t('review.col.relative'), cell: (k) => (k.relative_change === null ? t('none') : changeCell(k.relative_change, signed(k.relative_change * 100, 1) + '%')), csv: (k) => k.relative_change },
      { title: t('review.col.numerator'), cell: (k) => `${num(k.numerator)} ${t('count.' + k.numerator_of)}`, csv: (k) => k.numerator },
      { title: t('review.col.denominator'), cell: (k) => `${num(k.denominator)} ${t('count.' + k.denominator_of)}`, csv: (k) => k.denominator },
    ];
    const campaignColumns = [
      { title: t('act.col.activity'), cell: (r) => r.activity_id, text: true },
      { title: t('act.col.joined'), cell: (r) => num(r.joined_users), csv: (r) => r.joined_users },
      { title: t('act.col.orders'), cell: (r) => num(r.orders_paid), csv: (r) => r.orders_paid },
      { title: t('act.col.revenue'), cell: (r) => yuan(r.revenue_fen), csv: (r) => fenToYuan(r.revenue_fen) },
    ];
    const experimentColumns = [
      { title: t('ab.col.surface'), cell: (r) => t('ab.surface.' + r.surface), csv: (r) => r.surface, text: true },
      { title: t('ab.col.experiment'), cell: (r) => r.experiment, text: true },
      { title: t('ab.col.variant'), cell: (r) => r.variant, text: true },
      { title: t('ab.col.ctr'), cell: (r) => pct(r.ctr), csv: (r) => r.ctr },
      { title: t('ab.col.lift'), cell: (r) => (r.lift === null ? t('none') : signed(r.lift * 100, 1) + '%'), csv: (r) => r.lift },
      { title: t('ab.col.p'), cell: (r) => (r.p_value === null ? t('none') : pValue(r.p_value)), csv: (r) => r.p_value },
      { title: t('review.col.verdict'), cell: (r) => el('span', { class: 'pill ' + (r.verdict === 'better' ? 'win' : 'lose'), text: t('review.verdict.' + r.verdict) }), csv: (r) => r.verdict, text: true },
    ];
    const range = d.range;
    target.replaceChildren(
      reviewSection('kpis', t('range.compare', d.previous_range), kpiColumns, d.kpis, range),
      el('div', { class: 'grid grid-2 review-grid' },
        reviewSection('menu', t('review.note.menu'), moverColumns('entry'), d.menu_entries, range),
        reviewSection('articles', t('review.note.articles'), moverColumns('article'), d.articles, range)),
      el('div', { class: 'grid grid-2 review-grid' },
        reviewSection('templates', t('review.note.templates'), moverColumns('template'), d.templates, range),
        reviewSection('campaigns', t('review.note.campaigns'), campaignColumns, d.campaigns, range)),
      reviewSection('experiments', t('review.note.experiments'), experimentColumns, d.concluded_experiments, range));
  }

  // ---------------------------------------------------------------------------------------
  // Member lookup (support, admin)

  const GROUPS = [
    ['member.group.profile', ['first_seen_at', 'last_seen_at', 'first_from']],
    ['member.group.follow', ['following', 'followed_at', 'follow_via', 'activity_notifications', 'last_prompt_at']],
    ['member.group.orders', ['orders_paid', 'revenue_fen', 'first_paid_at', 'last_paid_at', 'coupons_claimed', 'coupons_redeemed']],
  ];

  const isIdentifier = (key, value) => IDENTIFIER.test(key) || (typeof value === 'string' && value.startsWith('ld1:'));

  /** Codes the API answers in a member's fields (`first_from`, `follow_via`) in words. */
  const CODED = new Set(['first_from', 'follow_via']);

  function fieldValue(key, value) {
    if (value === null || value === undefined) return el('span', { class: 'muted', text: t('none') });
    if (CODED.has(key) && typeof value === 'string') {
      const words = t(`value.${key}.${value}`);
      return words === `value.${key}.${value}` ? value : el('span', { title: value, text: words });
    }
    if (typeof value === 'boolean') return el('span', { class: value ? 'status-yes' : 'status-no', text: t(value ? 'yes' : 'no') });
    if (key === 'revenue_fen' && typeof value === 'number') return '¥' + (value / 100).toFixed(2);
    if (key.endsWith('_at')) return dateTime(value);
    if (typeof value === 'number') return num(value);
    if (Array.isArray(value)) return listValue(value);
    if (typeof value === 'object') return JSON.stringify(stripIdentifiers(value).kept);
    return String(value);
  }

  function stripIdentifiers(obj) {
    const kept = {};
    let hidden = 0;
    for (const [k, v] of Object.entries(obj)) {
      if (isIdentifier(k, v)) hidden += 1;
      else kept[k] = v;
    }
    return { kept, hidden };
  }

  /** A list the API may return (e.g. orders): a small table of its non-identifier fields. */
  function listValue(list) {
    if (!list.length) return el('span', { class: 'muted', text: t('none') });
    if (typeof list[0] !== 'object' || list[0] === null) return list.map(String).join(', ');
    const rows = list.map((x) => stripIdentifiers(x).kept);
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    return el('table', { class: 'data' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', { text: c })))),
      el('tbody', {}, rows.map((r) => el('tr', {}, cols.map((c) => el('td', {}, fieldValue(c, r[c])))))));
  }

  function renderMember(profile) {
    const target = $('member-result');
    target.dataset.member = JSON.stringify(profile);
    const { kept, hidden } = stripIdentifiers(profile);
    const known = new Set(GROUPS.flatMap(([, keys]) => keys));
    const other = Object.keys(kept).filter((k) => !known.has(k));
    const groups = GROUPS.map(([title, keys]) => [title, keys.filter((k) => k in kept)])
      .concat(other.length ? [['member.group.other', other]] : [])
      .filter(([, keys]) => keys.length);
    target.replaceChildren(
      el('div', { class: 'member-groups' }, groups.map(([title, keys]) => el('div', { class: 'member-group' },
        el('h4', { text: t(title) }),
        el('dl', {}, keys.map((k) => [
          el('dt', { text: t('member.' + k) === 'member.' + k ? k : t('member.' + k) }),
          el('dd', { 'data-member-field': k }, fieldValue(k, kept[k])),
        ]))))),
      hidden ? el('p', { class: 'muted small', text: t('member.hidden', { n: hidden }) }) : null);
  }

  async function lookUpMember(event) {
    event.preventDefault();
    const target = $('member-result');
    const key = $('member-key').value.trim();
    delete target.dataset.member;
    if (!key) return target.replaceChildren(el('p', { class: 'error', text: t('member.empty') }));
    target.replaceChildren(el('p', { class: 'muted', text: t('member.busy') }));
    let answer;
    try {
      answer = await api('v1/members/' + encodeURIComponent(key));
    } catch (_) {
      answer = { status: 0 };
    }
    if (answer.status === 401) return signOut('signin.expired');
    if (answer.status === 200 && answer.body) return renderMember(answer.body);
    const text = answer.status === 404 ? t('member.notfound') :
      answer.status === 403 ? t('error.forbidden') : t('member.error', { status: answer.status || '—' });
    target.replaceChildren(el('p', { class: 'error', text }));
  }

  // ---------------------------------------------------------------------------------------
  // Start

  function boot() {
    applyStaticText();
    $('lang').addEventListener('click', switchLanguage);
    $('signout').addEventListener('click', () => signOut(null));
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      signIn($('signin-key').value.trim());
    });
    $('range-form').addEventListener('submit', applyRangeInputs);
    for (const b of document.querySelectorAll('[data-days]')) {
      b.addEventListener('click', () => setPreset(Number(b.dataset.days)));
    }
    $('member-form').addEventListener('submit', lookUpMember);
    window.addEventListener('hashchange', viewChanged);
    $('review-print').addEventListener('click', () => window.print());
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && canMetrics() && !state.inflight) refresh();
    });
    let resizing = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => Object.values(state.charts).forEach((c) => c.resize()), 120);
    });

    let saved = null;
    try {
      saved = sessionStorage.getItem(KEY_STORE);
    } catch (_) {
      saved = null;
    }
    if (saved) signIn(saved);
    else showSignIn(null);
  }

  boot();
})();
