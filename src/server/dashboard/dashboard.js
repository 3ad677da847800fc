// The Tributary dashboard: plain DOM and <canvas>, polling the API every 2 s. Every value from
// the pipeline is written with textContent (records hold user data), never as HTML.

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
const tokenInput = $('token');
// `tributary up` prints the page's URL with a token made for the run after `#token=` (a fragment
// never reaches a server or its logs): kept like a typed one, then taken out of the address bar.
const tokenInUrl = new URLSearchParams(location.hash.slice(1)).get('token');
if (tokenInUrl) {
  localStorage.setItem('tributary.token', tokenInUrl);
  window.history.replaceState(null, '', location.pathname + location.search);
}
tokenInput.value = localStorage.getItem('tributary.token') ?? '';
tokenInput.addEventListener('change', () => {
  localStorage.setItem('tributary.token', tokenInput.value.trim());
  refresh();
});

async function api(path, options = {}) {
  const headers = { ...(options.body ? { 'content-type': 'application/json' } : {}) };
  const token = tokenInput.value.trim();
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(body?.message ?? `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

/** Like api(), but a part of the pipeline that is not running (503) gives null. */
async function optional(path) {
  try {
    return await api(path);
  } catch (error) {
    if (error.status === 503) return { unavailable: error.message };
    throw error;
  }
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function say(text, isError = false) {
  const box = $('message');
  box.hidden = false;
  box.className = isError ? 'message error' : 'message';
  box.textContent = text;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => {
    box.hidden = true;
  }, 8000);
}

const fmt = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en'));
function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// ---- pipeline, figures, alerts -------------------------------------------------------------

function renderStatus(status, topics, consumers, alerts) {
  const capture = status.capture;
  const source = $('source');
  const active = alerts?.active ?? [];
  const critical = active.some((a) => a.severity === 'critical');
  const role = status.role;
  if (role?.role === 'standby') {
    source.className = 'node unknown';
    source.replaceChildren(
      el('div', { class: 'name', text: 'standby' }),
      el('div', {
        class: 'detail',
        text: role.leader
          ? `active capture: ${role.leader.holder} (term ${role.term}, since ${role.leader.since})`
          : 'waiting for the replication slot',
      }),
    );
  } else if (!capture) {
    source.className = 'node unknown';
    source.replaceChildren(el('div', { class: 'name', text: 'capture starting…' }));
  } else {
    const lagging = active.some((a) => a.rule === 'slot_lag');
    source.className = `node ${capture.connected ? (lagging ? 'warn' : 'ok') : 'bad'}`;
    source.replaceChildren(
      el('div', { class: 'name', text: capture.source || 'PostgreSQL' }),
      el('div', {
        class: 'detail',
        text: `${role?.term ? `active (term ${role.term}) · ` : ''}slot ${capture.slot} · ${capture.connected ? 'connected' : 'disconnected'} · lag ${bytes(capture.slotLagBytes)}`,
      }),
    );
  }
  const overall = $('overall');
  const healthy = capture?.connected && !critical && active.length === 0;
  overall.className = `pill ${!capture ? 'unknown' : healthy ? 'ok' : critical || !capture.connected ? 'bad' : 'warn'}`;
  overall.textContent =
    role?.role === 'standby'
      ? 'standby'
      : !capture
        ? 'starting'
        : healthy
          ? 'healthy'
          : `${active.length || 1} problem(s)`;
  $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  $('capture-records').textContent = fmt(capture?.records);
  $('slot-lag').textContent = bytes(capture?.slotLagBytes);
  $('durable-lsn').textContent = capture?.durableLsn ?? '–';
  $('log-records').textContent = fmt(status.log.records);

  const topicBox = $('topics');
  if (Array.isArray(topics)) {
    topicBox.replaceChildren(
      ...topics.map((t) =>
        el(
          'div',
          { class: 'node ok', 'data-topic': t.topic },
          el('div', { class: 'name', text: t.topic }),
          el('div', {
            class: 'detail',
            text: `${fmt(t.records)} records · ${bytes(t.bytes)} · ${t.partitions.length} partition(s)`,
          }),
        ),
      ),
    );
    if (topics.length === 0) topicBox.replaceChildren(el('div', { class: 'muted', text: 'no topic yet' }));
    fillTopicPicker(topics);
  }

  const nodes = $('consumer-nodes');
  if (consumers.unavailable) {
    nodes.replaceChildren(el('div', { class: 'muted', text: consumers.unavailable }));
  } else {
    nodes.replaceChildren(
      ...consumers.map((c) =>
        el(
          'div',
          { class: `node ${consumerHealth(c)}` },
          el('div', { class: 'name', text: c.name }),
          el('div', {
            class: 'detail',
            text: `${consumerState(c)} · ${c.replicas.running}/${c.replicas.desired} replicas · lag ${fmt(c.lagRecords)}`,
          }),
        ),
      ),
    );
    if (consumers.length === 0) nodes.replaceChildren(el('div', { class: 'muted', text: 'no consumer' }));
  }
  renderConsumers(consumers);

  const box = $('alerts');
  box.hidden = active.length === 0;
  box.replaceChildren(
    ...active.map((a) =>
      el('div', {
        class: `alert ${a.severity}`,
        text: `${a.summary} (since ${new Date(a.since).toLocaleTimeString()})`,
      }),
    ),
  );
}

function consumerHealth(c) {
  if (c.crashLooping || c.failure || c.state === 'failed' || c.state === 'failing') return 'bad';
  if (c.replicas.desired > 0 && c.replicas.running === 0 && c.state !== 'paused') return 'bad';
  if (c.state === 'paused' || c.lastError || c.warnings?.length) return 'warn';
  return 'ok';
}

/** `failing (paused)` for a consumer paused by its dead-letter threshold. */
function consumerState(c) {
  return c.state === 'failing' && c.failure?.paused ? 'failing (paused)' : c.state;
}

/** Why it fails, else what it warns about, else its last error. */
function consumerProblem(c) {
  if (c.failure) return c.failure.message;
  if (c.warnings?.length) return c.warnings.join(' · ');
  return c.lastError ? c.lastError.message : '';
}

function renderConsumers(consumers) {
  const body = $('consumers').tBodies[0];
  $('consumers-note').textContent = consumers.unavailable ?? '';
  if (consumers.unavailable) {
    body.replaceChildren();
    return;
  }
  body.replaceChildren(
    ...consumers.map((c) => {
      const action = (name, label, extra) =>
        el('button', {
          type: 'button',
          'data-action': name,
          text: label,
          onclick: () => consumerAction(c.name, name, extra?.()),
        });
      return el(
        'tr',
        { 'data-consumer': c.name },
        el('td', { text: c.name }),
        el('td', { class: `state ${consumerHealth(c)}`, text: consumerState(c) }),
        el(
          'td',
          {},
          action('scale', '−', () => ({ replicas: Math.max(0, c.replicas.desired - 1) })),
          ` ${c.replicas.running}/${c.replicas.desired} `,
          action('scale', '+', () => ({ replicas: c.replicas.desired + 1 })),
        ),
        el('td', { text: fmt(c.restarts) }),
        el('td', {
          text: `${fmt(c.lagRecords)}${c.lagSeconds === null ? '' : ` (${Math.round(c.lagSeconds)} s)`}`,
        }),
        el('td', { text: fmt(c.processed) }),
        el('td', { text: fmt(c.failed) }),
        el('td', {
          class: 'counters',
          text: Object.entries(c.counters ?? {})
            .map(([name, n]) => `${name} ${fmt(n)}`)
            .join(' · '),
        }),
        el('td', { class: c.failure || c.lastError ? 'error' : 'warning', text: consumerProblem(c) }),
        el(
          'td',
          {},
          c.state === 'paused' || c.failure?.paused ? action('resume', 'resume') : action('pause', 'pause'),
          ' ',
          action('restart', 'restart'),
        ),
      );
    }),
  );
}

async function consumerAction(name, action, body) {
  try {
    const result = await api(`/api/consumers/${encodeURIComponent(name)}/${action}`, {
      method: 'POST',
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    say(result.message);
    refresh();
  } catch (error) {
    say(`${action} ${name}: ${error.message}`, true);
  }
}

// ---- charts ------------------------------------------------------------------------------------

const history = [];
const COLORS = ['#2f6fdd', '#d1363b', '#1f9d55', '#d08700', '#8e44ad', '#16a2b8', '#6b7280'];

async function pollHistory() {
  const since = history.length ? history[history.length - 1].t : 0;
  const { samples } = await api(`/api/history?since=${since}`);
  history.push(...samples);
  const cutoff = Date.now() - 5 * 60_000;
  while (history.length && history[0].t < cutoff) history.shift();
  const rates = [];
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1];
    const b = history[i];
    if (a.records !== null && b.records !== null && b.t > a.t)
      rates.push({ t: b.t, v: Math.max(0, ((b.records - a.records) * 1000) / (b.t - a.t)) });
  }
  $('capture-rate').textContent = rates.length ? fmt(Math.round(rates[rates.length - 1].v)) : '–';
  drawChart($('chart-throughput'), [{ name: 'records/s', points: rates }]);
  // Bytes and records on separate charts, each with its own axis in its own unit.
  const slot = [
    {
      name: 'slot lag',
      points: history.filter((s) => s.slotLagBytes !== null).map((s) => ({ t: s.t, v: s.slotLagBytes })),
    },
  ];
  drawChart($('chart-lag'), slot, false, bytes);
  legend($('lag-legend'), slot, 'bytes');
  const names = [...new Set(history.flatMap((s) => Object.keys(s.consumers)))].sort();
  const consumers = names.map((name) => ({
    name,
    points: history
      .filter((s) => s.consumers[name])
      .map((s) => ({ t: s.t, v: s.consumers[name].lagRecords })),
  }));
  drawChart($('chart-consumer-lag'), consumers, false, compact);
  legend($('consumer-lag-legend'), consumers, 'records');
}

function legend(box, series, unit) {
  box.dataset.unit = unit;
  box.replaceChildren(
    ...series.map((s, i) =>
      el('span', { style: `color:${COLORS[i % COLORS.length]}`, 'data-series': s.name, text: `■ ${s.name}` }),
    ),
  );
}

/**
 * Line chart over the last 5 minutes; `separate` scales each series to its own maximum; `label`
 * writes the axis values (in the chart's one unit).
 */
function drawChart(canvas, series, separate = false, label = compact) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const pad = { l: 56, r: 8, t: 8, b: 18 };
  const now = Date.now();
  const t0 = now - 5 * 60_000;
  const x = (t) => pad.l + ((t - t0) / (now - t0)) * (width - pad.l - pad.r);
  const all = series.flatMap((s) => s.points.map((p) => p.v));
  const globalMax = Math.max(1, ...all);
  g.strokeStyle = '#e3e6ea';
  g.fillStyle = '#6b7280';
  g.font = '11px system-ui, sans-serif';
  for (let i = 0; i <= 4; i++) {
    const yy = pad.t + ((height - pad.t - pad.b) * i) / 4;
    g.beginPath();
    g.moveTo(pad.l, yy);
    g.lineTo(width - pad.r, yy);
    g.stroke();
    if (!separate) g.fillText(label(globalMax * (1 - i / 4)), 4, yy + 4);
  }
  for (let m = 0; m <= 5; m++)
    g.fillText(m === 5 ? 'now' : `-${5 - m}m`, x(t0 + m * 60_000) - 10, height - 4);
  series.forEach((s, i) => {
    const max = separate ? Math.max(1, ...s.points.map((p) => p.v)) : globalMax;
    g.strokeStyle = COLORS[i % COLORS.length];
    g.lineWidth = 1.5;
    g.beginPath();
    s.points.forEach((p, j) => {
      const yy = pad.t + (1 - p.v / max) * (height - pad.t - pad.b);
      if (j === 0) g.moveTo(x(p.t), yy);
      else g.lineTo(x(p.t), yy);
    });
    g.stroke();
    if (separate && s.points.length) {
      g.fillStyle = COLORS[i % COLORS.length];
      g.fillText(label(max), 4, pad.t + 10 + i * 12);
    }
  });
}

function compact(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

// ---- snapshots ------------------------------------------------------------------------------

function renderSnapshots(snapshots) {
  $('snapshots-note').textContent = snapshots.unavailable ?? (snapshots.length ? '' : 'no snapshot has run');
  if (snapshots.unavailable) return $('snapshots').replaceChildren();
  $('snapshots').replaceChildren(
    ...snapshots.map((s) => {
      // The total is an estimate (planner statistics): a finished table is full, whatever it said.
      const pct = s.state === 'done' ? 100 : s.rowsTotal ? Math.min(99, (100 * s.rowsDone) / s.rowsTotal) : 0;
      return el(
        'div',
        { class: 'snapshot', 'data-table': s.table },
        el('div', { text: s.table }),
        el(
          'div',
          { class: 'bar', 'data-percent': pct.toFixed(0) },
          el('div', { style: `width:${pct.toFixed(1)}%` }),
        ),
        el('div', {
          class: s.state === 'failed' ? 'error' : 'muted',
          text: `${s.state} · ${fmt(s.rowsDone)}${s.rowsTotal ? ` / ${fmt(s.rowsTotal)}` : ''} rows${s.error ? ` · ${s.error}` : ''}`,
        }),
      );
    }),
  );
}

// ---- message browser ------------------------------------------------------------------------

const browser = { topic: '', partition: 0, nextOffset: 0, firstOffset: 0, startOffset: 0, endOffset: 0 };

function fillTopicPicker(topics) {
  const select = $('browser-topic');
  const current = select.value;
  const names = topics.map((t) => t.topic);
  if ([...select.options].map((o) => o.value).join('\n') !== names.join('\n')) {
    select.replaceChildren(
      el('option', { value: '', text: '— topic —' }),
      ...names.map((n) => el('option', { value: n, text: n })),
    );
    select.value = names.includes(current) ? current : '';
  }
}

async function loadRecords(offset) {
  browser.topic = $('browser-topic').value;
  browser.partition = Number($('browser-partition').value) || 0;
  if (!browser.topic) return;
  const query = new URLSearchParams({ partition: String(browser.partition), limit: '25' });
  if (offset !== undefined) query.set('offset', String(Math.max(0, offset)));
  try {
    const page = await api(`/api/topics/${encodeURIComponent(browser.topic)}/records?${query}`);
    Object.assign(browser, {
      nextOffset: page.nextOffset,
      firstOffset: page.records[0]?.offset ?? page.nextOffset,
      startOffset: page.startOffset,
      endOffset: page.endOffset,
    });
    showRecords(page.records);
  } catch (error) {
    say(error.message, true);
  }
}

async function searchKey() {
  const topic = $('browser-topic').value;
  const key = $('browser-key').value.trim();
  if (!topic || !key) return say('pick a topic and type a key', true);
  try {
    const result = await api(
      `/api/topics/${encodeURIComponent(topic)}/search?${new URLSearchParams({ key })}`,
    );
    showRecords(result.records);
    say(
      `${result.records.length} record(s) with key ${key} (${fmt(result.scanned)} examined${result.complete ? '' : ', newest only'})`,
    );
  } catch (error) {
    say(error.message, true);
  }
}

function showRecords(records) {
  const body = $('records').tBodies[0];
  body.replaceChildren(
    ...records.map((r) => {
      const row = el(
        'tr',
        { 'data-offset': String(r.offset) },
        el('td', { text: `${r.partition}:${r.offset}` }),
        el('td', { text: typeof r.key === 'string' ? r.key : JSON.stringify(r.key) }),
        el('td', { text: r.value === null ? 'tombstone' : (r.value?.op ?? '') }),
        el('td', { text: new Date(r.timestamp).toLocaleTimeString() }),
      );
      row.addEventListener('click', () => {
        for (const other of body.rows) other.classList.remove('selected');
        row.classList.add('selected');
        $('envelope').textContent = JSON.stringify(r, null, 2);
      });
      return row;
    }),
  );
  if (records.length === 0)
    body.replaceChildren(el('tr', {}, el('td', { colspan: '4', class: 'muted', text: 'no records' })));
}

$('browser-topic').addEventListener('change', () => loadRecords());
$('browser-partition').addEventListener('change', () => loadRecords());
$('browser-latest').addEventListener('click', () => loadRecords());
$('browser-first').addEventListener('click', () => loadRecords(browser.startOffset));
$('browser-next').addEventListener('click', () => loadRecords(browser.nextOffset));
$('browser-prev').addEventListener('click', () =>
  loadRecords(Math.max(browser.startOffset, browser.firstOffset - 25)),
);
$('browser-search').addEventListener('click', searchKey);
$('browser-key').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') searchKey();
});

// ---- dead letters ---------------------------------------------------------------------------

const DEAD_LETTER_PAGE = 25;
let deadLetterOffset = 0;

function renderDeadLetters(result) {
  const body = $('dead-letters').tBodies[0];
  // Letters resolved meanwhile may leave the page past the end: go back to the last page.
  if (!result.unavailable && result.total > 0 && deadLetterOffset >= result.total) {
    deadLetterOffset = Math.floor((result.total - 1) / DEAD_LETTER_PAGE) * DEAD_LETTER_PAGE;
  }
  const shown = result.items?.length ?? 0;
  $('dead-letters-note').textContent =
    result.unavailable ??
    (result.total === 0
      ? 'no dead letter'
      : `${fmt(deadLetterOffset + 1)}–${fmt(deadLetterOffset + shown)} of ${fmt(result.total)} dead letter(s), newest first`);
  $('dead-letters-prev').disabled = !!result.unavailable || deadLetterOffset === 0;
  $('dead-letters-next').disabled = !!result.unavailable || deadLetterOffset + shown >= result.total;
  if (result.unavailable) return body.replaceChildren();
  body.replaceChildren(
    ...result.items.map((d) =>
      el(
        'tr',
        { 'data-dead-letter': d.id },
        el('td', {}, el('a', { href: '#', text: d.id, onclick: (e) => showDeadLetter(e, d.id) })),
        el('td', { text: d.consumer }),
        el('td', { text: `${d.topic} ${d.partition}:${d.offset}` }),
        el('td', { class: 'error', text: d.error.message }),
        el('td', { text: fmt(d.attempts) }),
        el('td', { text: new Date(d.failedAt).toLocaleString() }),
        el(
          'td',
          {},
          el('button', {
            type: 'button',
            class: 'replay',
            text: 'replay',
            onclick: () => deadLetterAction(d.id, 'replay'),
          }),
          ' ',
          el('button', {
            type: 'button',
            class: 'discard danger',
            text: 'discard',
            onclick: () => deadLetterAction(d.id, 'discard'),
          }),
        ),
      ),
    ),
  );
}

function deadLetterPage(delta) {
  deadLetterOffset = Math.max(0, deadLetterOffset + delta * DEAD_LETTER_PAGE);
  refresh();
}
$('dead-letters-prev').addEventListener('click', () => deadLetterPage(-1));
$('dead-letters-next').addEventListener('click', () => deadLetterPage(1));

async function showDeadLetter(event, id) {
  event.preventDefault();
  try {
    const d = await api(`/api/dead-letters/${encodeURIComponent(id)}`);
    const box = $('dead-letter');
    box.hidden = false;
    const parse = (t) => {
      try {
        return JSON.parse(t);
      } catch {
        return t;
      }
    };
    box.textContent = JSON.stringify({ ...d, key: parse(d.key), value: parse(d.value) }, null, 2);
  } catch (error) {
    say(error.message, true);
  }
}

async function deadLetterAction(id, action) {
  if (action === 'discard' && !window.confirm(`Discard dead letter ${id}? Its record will not be processed.`))
    return;
  try {
    const result = await api(`/api/dead-letters/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
    say(result.message);
    $('dead-letter').hidden = true;
    refresh();
  } catch (error) {
    say(
      `${action} ${id}: ${error.message}${error.status === 401 || error.status === 403 ? ' (enter the token at the top right)' : ''}`,
      true,
    );
  }
}

// ---- polling --------------------------------------------------------------------------------

let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [status, topics, consumers, alerts, snapshots, deadLetters] = await Promise.all([
      api('/api/status'),
      optional('/api/topics'),
      optional('/api/consumers'),
      api('/api/alerts'),
      optional('/api/snapshots'),
      optional(`/api/dead-letters?limit=${DEAD_LETTER_PAGE}&offset=${deadLetterOffset}`),
    ]);
    renderStatus(status, topics, consumers, alerts);
    renderSnapshots(snapshots);
    renderDeadLetters(deadLetters);
    await pollHistory();
  } catch (error) {
    $('overall').className = 'pill bad';
    $('overall').textContent = error.status === 401 ? 'token needed' : 'unreachable';
  } finally {
    refreshing = false;
  }
}

refresh();
setInterval(refresh, POLL_MS);
