// The dashboard's SQL section: one SELECT over the lake through POST /api/sql, the result as a
// table. Values are written with textContent (they are user data), never as HTML.

const $ = (id) => document.getElementById(id);

async function runQuery(event) {
  event.preventDefault();
  const status = $('sql-status');
  const table = $('sql-result');
  const headers = { 'content-type': 'application/json' };
  const token = $('token')?.value.trim();
  if (token) headers.authorization = `Bearer ${token}`;
  const body = { query: $('sql-query').value };
  const asOf = $('sql-as-of').value.trim();
  if (asOf) body.asOf = asOf;
  status.textContent = 'running…';
  status.className = 'muted';
  const started = performance.now();
  try {
    const response = await fetch('/api/sql', { method: 'POST', headers, body: JSON.stringify(body) });
    const result = await response.json().catch(() => null);
    if (!response.ok) throw new Error(result?.message ?? `${response.status} ${response.statusText}`);
    const head = document.createElement('tr');
    for (const c of result.columns) {
      const th = document.createElement('th');
      th.textContent = c;
      head.append(th);
    }
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(
      ...result.rows.map((row) => {
        const tr = document.createElement('tr');
        for (const v of row) {
          const td = document.createElement('td');
          td.textContent = v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
          tr.append(td);
        }
        return tr;
      }),
    );
    const ms = Math.round(performance.now() - started);
    status.textContent = `${result.rows.length} rows${result.truncated ? ' (more not shown)' : ''} · snapshot ${result.snapshot} · ${ms} ms`;
  } catch (error) {
    status.textContent = `error: ${error.message}`;
    status.className = 'error';
    table.tHead.replaceChildren();
    table.tBodies[0].replaceChildren();
  }
}

$('sql-form')?.addEventListener('submit', runQuery);
