// The Services panel of the dashboard: the search box of each search index, the inventory (low
// stock first) with its alert events, and the sales charts (uPlot). Plain DOM; every value from
// the pipeline is written with textContent, never as HTML. Polls every 5 s.

const POLL_MS = 5000;
const root = document.getElementById('services');

async function get(path) {
  const headers = {};
  const token = localStorage.getItem('tributary.token');
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.message ?? `${response.status} ${response.statusText}`);
  return body;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function table(columns, rows) {
  const head = el('tr', {}, ...columns.map((c) => el('th', { text: c })));
  const body = rows.map((r) => el('tr', {}, ...columns.map((c) => el('td', { text: String(r[c] ?? '') }))));
  return el('table', {}, el('thead', {}, head), el('tbody', {}, ...body));
}

function searchBox(name) {
  const input = el('input', { type: 'search', placeholder: 'words, lam* prefixes', 'data-index': name });
  const filter = el('input', { type: 'text', placeholder: 'price:10..50', 'aria-label': 'filter' });
  const out = el('div', { class: 'search-results' });
  const run = async () => {
    try {
      const params = new URLSearchParams({ q: input.value, limit: '20' });
      if (filter.value.trim()) params.append('filter', filter.value.trim());
      const result = await get(`/api/search/${encodeURIComponent(name)}?${params}`);
      const rows = result.hits.map((h) => ({ key: h.key, score: h.score.toFixed(3), ...h.doc }));
      const columns = ['key', 'score', ...Object.keys(result.hits[0]?.doc ?? {}).filter((c) => c !== 'id')];
      out.replaceChildren(
        el('p', { class: 'muted', text: `${result.total}${result.totalExact === false ? '+' : ''} hits` }),
        table(columns, rows),
      );
    } catch (error) {
      out.replaceChildren(el('p', { class: 'muted', text: error.message }));
    }
  };
  const form = el(
    'form',
    { class: 'toolbar' },
    input,
    filter,
    el('button', { type: 'submit', text: 'search' }),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  return el('div', { class: 'service' }, el('h3', { text: `search: ${name}` }), form, out);
}

function inventoryPanel(name) {
  const out = el('div');
  const refresh = async () => {
    try {
      const [low, all, events] = await Promise.all([
        get(`/api/inventory/${encodeURIComponent(name)}?low=true&limit=20`),
        get(`/api/inventory/${encodeURIComponent(name)}?limit=20`),
        get(`/api/inventory/${encodeURIComponent(name)}/alerts?limit=10`),
      ]);
      const columns = ['productId', 'name', 'stock', 'taken', 'available', 'low'];
      out.replaceChildren(
        el('p', { class: 'muted', text: `${low.length} product(s) low on stock` }),
        table(columns, low.length > 0 ? low : all),
        el('h4', { text: 'alert events' }),
        table(['seq', 'kind', 'productId', 'available', 'threshold', 'at'], events),
      );
    } catch (error) {
      out.replaceChildren(el('p', { class: 'muted', text: error.message }));
    }
  };
  return {
    node: el(
      'div',
      { class: 'service', id: `inventory-${name}` },
      el('h3', { text: `inventory: ${name}` }),
      out,
    ),
    refresh,
  };
}

function salesPanel(name) {
  const chartBox = el('div', { class: 'sales-chart' });
  const tables = el('div');
  let plot;
  const refresh = async () => {
    try {
      const base = `/api/analytics/${encodeURIComponent(name)}`;
      const [daily, products, customers, statuses] = await Promise.all(
        ['daily', 'top-products?limit=10', 'top-customers?limit=10', 'statuses'].map((r) =>
          get(`${base}/${r}`),
        ),
      );
      const xs = daily.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000);
      // Exact decimal text in the tables; the chart only draws it (a float is fine for a pixel).
      const data = [xs, daily.map((d) => Number(d.revenue)), daily.map((d) => d.orders)];
      if (window.uPlot && daily.length > 0) {
        if (!plot) {
          plot = new window.uPlot(
            {
              width: 560,
              height: 200,
              series: [
                {},
                { label: 'revenue', stroke: '#2a7' },
                { label: 'orders', stroke: '#27a', scale: 'n' },
              ],
              axes: [{}, {}, { side: 1, scale: 'n' }],
            },
            data,
            chartBox,
          );
        } else plot.setData(data);
      }
      tables.replaceChildren(
        el('h4', { text: 'order statuses' }),
        table(['status', 'orders'], statuses),
        el('h4', { text: 'top products by revenue' }),
        table(['productId', 'units', 'revenue'], products),
        el('h4', { text: 'top customers by spend' }),
        table(['customerId', 'orders', 'spend'], customers),
      );
    } catch (error) {
      tables.replaceChildren(el('p', { class: 'muted', text: error.message }));
    }
  };
  return {
    node: el(
      'div',
      { class: 'service', id: `sales-${name}` },
      el('h3', { text: `sales: ${name}` }),
      chartBox,
      tables,
    ),
    refresh,
  };
}

async function start() {
  if (!root) return;
  let services;
  try {
    services = await get('/api/services');
  } catch {
    setTimeout(start, POLL_MS); // the pipeline is starting
    return;
  }
  if (services.length === 0) {
    root.append(el('p', { class: 'muted', text: 'no services configured (see docs/services.md)' }));
    return;
  }
  const refreshers = [];
  for (const s of services) {
    if (s.kind === 'search') root.append(searchBox(s.name));
    else {
      const panel = s.kind === 'inventory' ? inventoryPanel(s.name) : salesPanel(s.name);
      root.append(panel.node);
      refreshers.push(panel.refresh);
    }
  }
  const tick = () => Promise.all(refreshers.map((r) => r())).finally(() => setTimeout(tick, POLL_MS));
  tick();
}

start();
