// The Gantry dashboard: plain DOM code, no framework and no build step. Every figure comes from the plugin's JSON
// routes under the page's base path; the live log is a server-sent event stream.

const base = document.body.dataset.base;
const $ = (id) => document.getElementById(id);
const MAX_LOG_ROWS = 200;

/** Creates an element with attributes and children (strings become text, so nothing is parsed as HTML). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJson(path) {
  const response = await fetch(`${base}${path}`, { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

const time = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
const round = (n) => (n >= 100 ? Math.round(n) : Math.round(n * 10) / 10);

// ── tabs ─────────────────────────────────────────────────────────────────────────────────────────────────────────
const loaders = {};
function show(tab) {
  for (const button of document.querySelectorAll('nav button')) {
    button.classList.toggle('active', button.dataset.tab === tab);
  }
  for (const section of document.querySelectorAll('main > .tab')) section.hidden = section.id !== tab;
  loaders[tab]?.();
}
for (const button of document.querySelectorAll('nav button')) {
  button.addEventListener('click', () => show(button.dataset.tab));
}

// ── overview: topology and charts ────────────────────────────────────────────────────────────────────────────────
async function loadTopology() {
  const topology = await getJson('/api/topology');
  $('env').textContent = topology.env;
  $('uptime').textContent = `up ${topology.uptimeSeconds}s`;
  const root = $('topology');
  root.replaceChildren(
    ...topology.services.map((service) =>
      el(
        'div',
        { class: 'service', 'data-service': service.name },
        el('h3', {}, service.name, ' ', el('span', { class: 'muted' }, service.version)),
        el(
          'ul',
          {},
          service.events.map((event) => {
            if (event.kind === 'http') return el('li', {}, el('span', { class: 'kind' }, 'http'), event.name);
            if (event.kind === 'consumer') {
              return el(
                'li',
                {},
                el('span', { class: 'kind' }, 'consumes'),
                el('span', { class: 'stream' }, event.stream),
                ` (group ${event.group})`,
              );
            }
            return el('li', {}, el('span', { class: 'kind' }, event.kind), event.name.replace(/^loop /, ''));
          }),
          service.emits.map((stream) =>
            el('li', {}, el('span', { class: 'kind' }, 'emits'), el('span', { class: 'stream' }, stream)),
          ),
        ),
      ),
    ),
  );
  const flows = el(
    'div',
    { class: 'flows' },
    topology.streams.map((stream) =>
      el(
        'div',
        { class: 'flow' },
        stream.producers.join(', ') || '(outside)',
        ' → ',
        el('span', { class: 'stream' }, stream.name),
        ' → ',
        stream.consumers.map((c) => `${c.service} (${c.group})`).join(', ') || '(no consumer here)',
      ),
    ),
  );
  if (topology.streams.length > 0)
    root.append(el('div', { style: 'grid-column: 1 / -1' }, el('h2', {}, 'Streams'), flows));
  const hosted = topology.services.map((service) => service.name).join(', ');
  if (topology.calls.length > 0) {
    root.append(
      el(
        'div',
        { style: 'grid-column: 1 / -1' },
        el('h2', {}, 'Calls'),
        el(
          'div',
          { class: 'flows' },
          topology.calls.map((call) =>
            el(
              'div',
              { class: 'flow call', 'data-target': call.target },
              `${hosted} → ${call.target}`,
              el('span', { class: call.breaker === 'closed' ? 'muted' : 'bad' }, ` (breaker ${call.breaker})`),
            ),
          ),
        ),
      ),
    );
  }
  if (topology.instances.length > 0) {
    root.append(
      el(
        'div',
        { style: 'grid-column: 1 / -1' },
        el('h2', {}, 'Live instances (registry)'),
        el(
          'table',
          { class: 'grid' },
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              el('th', {}, 'service'),
              el('th', {}, 'version'),
              el('th', {}, 'address'),
              el('th', {}, 'events'),
            ),
          ),
          el(
            'tbody',
            { id: 'instance-rows' },
            topology.instances.map((instance) =>
              el(
                'tr',
                { 'data-service': instance.service },
                el('td', {}, instance.service),
                el('td', {}, instance.version),
                el('td', {}, instance.address),
                el('td', {}, instance.events.join(', ')),
              ),
            ),
          ),
        ),
      ),
    );
  }
}

/** Draws one or two series as polylines scaled to the chart's height. */
function chart(svg, series, classes) {
  const max = Math.max(1, ...series.flat());
  const n = Math.max(1, series[0].length - 1);
  svg.querySelector('g').replaceChildren(
    ...series.map((values, index) => {
      const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
      line.setAttribute('class', `line ${classes[index] ?? ''}`);
      line.setAttribute('points', values.map((v, i) => `${(i / n) * 300},${88 - (v / max) * 84}`).join(' '));
      return line;
    }),
  );
}

async function loadSeries() {
  const { bucketMs, points } = await getJson('/api/series');
  const seconds = bucketMs / 1000;
  const rate = points.map((p) => p.requests / seconds);
  const errors = points.map((p) => (p.requests === 0 ? 0 : (100 * p.errors) / p.requests));
  chart($('chart-rate'), [rate], ['']);
  chart($('chart-errors'), [errors], ['bad']);
  chart($('chart-latency'), [points.map((p) => p.p50), points.map((p) => p.p95)], ['', 'second']);
  const last = [...points].reverse().find((p) => p.requests > 0);
  $('last-rate').textContent = last ? round(last.requests / seconds) : '0';
  $('last-errors').textContent = last ? `${round((100 * last.errors) / last.requests)}%` : '0%';
  $('last-latency').textContent = last ? `${round(last.p50)} / ${round(last.p95)}` : '–';
}
loaders.overview = () => Promise.all([loadTopology(), loadSeries()]).catch(report);

// ── live log ─────────────────────────────────────────────────────────────────────────────────────────────────────
function logRow(entry) {
  const failed = entry.outcome === 'failed';
  return el(
    'tr',
    { class: failed ? 'failed' : '', 'data-request-id': entry.requestId, title: entry.error },
    el('td', {}, time(entry.at)),
    el('td', {}, entry.service),
    el('td', {}, entry.event),
    el('td', { class: failed ? 'bad' : 'ok' }, entry.outcome),
    el('td', {}, entry.status ?? ''),
    el('td', {}, round(entry.durationMs)),
    el('td', {}, entry.requestId),
    el(
      'td',
      {},
      el(
        'a',
        {
          href: '#',
          onclick: (e) => {
            e.preventDefault();
            openTrace(entry.traceId);
          },
        },
        entry.traceId.slice(0, 8),
      ),
    ),
  );
}

function startLog() {
  const rows = $('log-rows');
  const source = new EventSource(`${base}/api/events`);
  source.addEventListener('open', () => {
    $('log-state').textContent = 'live';
  });
  source.addEventListener('error', () => {
    $('log-state').textContent = 'reconnecting…';
  });
  // Every (re)connection replays the runs the server kept: show each run once.
  const seen = new Set();
  source.addEventListener('message', (message) => {
    const entry = JSON.parse(message.data);
    if (seen.has(entry.spanId)) return;
    seen.add(entry.spanId);
    if (seen.size > MAX_LOG_ROWS * 5) seen.clear();
    const row = logRow(entry);
    row.hidden = $('log-failed').checked && entry.outcome !== 'failed';
    rows.prepend(row);
    while (rows.children.length > MAX_LOG_ROWS) rows.lastChild.remove();
  });
}
$('log-failed').addEventListener('change', () => {
  for (const row of $('log-rows').children) row.hidden = $('log-failed').checked && !row.classList.contains('failed');
});

// ── traces ───────────────────────────────────────────────────────────────────────────────────────────────────────
async function loadTraces() {
  const { enabled, traces } = await getJson('/api/traces');
  $('traces-state').textContent = enabled
    ? `${traces.length} recent`
    : 'tracing is off (add tracingPlugin and pass its store)';
  $('trace-rows').replaceChildren(
    ...traces.map((trace) =>
      el(
        'tr',
        {
          class: `pick ${trace.error ? 'failed' : ''}`,
          'data-trace-id': trace.traceId,
          onclick: () => openTrace(trace.traceId),
        },
        el('td', {}, time(trace.startMs)),
        el('td', {}, trace.name),
        el('td', {}, trace.spanCount),
        el('td', {}, round(trace.durationMs)),
      ),
    ),
  );
}
loaders.traces = () => loadTraces().catch(report);
$('traces-refresh').addEventListener('click', loaders.traces);

/** Orders spans depth-first under their parents, so the waterfall reads like a call tree. */
function treeOrder(spans) {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map();
  for (const span of spans) {
    const parent = span.parentSpanId && ids.has(span.parentSpanId) ? span.parentSpanId : '';
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(span);
  }
  const out = [];
  const walk = (parent, depth) => {
    for (const span of children.get(parent) ?? []) {
      out.push({ span, depth });
      walk(span.spanId, depth + 1);
    }
  };
  walk('', 0);
  return out;
}

async function openTrace(traceId) {
  if ($('traces').hidden) show('traces');
  for (const row of $('trace-rows').children) row.classList.toggle('chosen', row.dataset.traceId === traceId);
  const target = $('waterfall');
  try {
    const { spans } = await getJson(`/api/traces/${traceId}`);
    const start = Math.min(...spans.map((s) => s.startMs));
    const end = Math.max(...spans.map((s) => s.startMs + s.durationMs));
    const total = Math.max(end - start, 0.001);
    target.replaceChildren(
      el('p', { class: 'muted' }, `trace ${traceId} · ${spans.length} spans · ${round(total)} ms`),
      ...treeOrder(spans).map(({ span, depth }) =>
        el(
          'div',
          { class: 'span-row', 'data-span-id': span.spanId, title: JSON.stringify(span.attributes, null, 1) },
          el('span', { class: 'span-name', style: `padding-left:${depth * 14}px` }, span.name),
          el(
            'div',
            { class: 'span-track' },
            el('div', {
              class: `span-bar ${span.kind} ${span.status === 'error' ? 'error' : ''}`,
              style: `left:${((span.startMs - start) / total) * 100}%;width:${(span.durationMs / total) * 100}%`,
            }),
          ),
          el('span', { class: 'muted' }, `${round(span.durationMs)} ms`),
        ),
      ),
    );
  } catch {
    target.replaceChildren(el('p', { class: 'muted' }, `trace ${traceId} is not kept (tracing off, or it aged out)`));
  }
}

// ── streams ──────────────────────────────────────────────────────────────────────────────────────────────────────
async function loadStreams() {
  const { streams, deadLetters } = await getJson('/api/streams');
  $('stream-rows').replaceChildren(
    ...streams.map((s) =>
      el(
        'tr',
        {},
        el('td', { class: 'stream' }, s.stream),
        el('td', {}, s.group ?? '(publishes)'),
        el('td', {}, s.group ? '' : s.published),
        el('td', {}, s.group ? s.delivered : ''),
        el('td', {}, s.group ? s.acked : ''),
        el('td', {}, s.group ? s.retried : ''),
        el('td', { class: s.deadLettered > 0 ? 'bad' : '' }, s.group ? s.deadLettered : ''),
        el('td', {}, s.lag ?? ''),
      ),
    ),
  );
  $('dead-rows').replaceChildren(
    ...deadLetters.map((d) =>
      el(
        'tr',
        {},
        el('td', {}, time(d.at)),
        el('td', {}, d.stream),
        el('td', {}, d.group),
        el('td', {}, d.messageId ?? ''),
        el('td', {}, d.reason),
      ),
    ),
  );
  await loadDeadLetterQueues();
}

// The stream admin API sits at a fixed path whatever the dashboard's base; in prod it asks for the 'ops' role, and the
// browser sends it the same credentials as to the dashboard's own routes.
const STREAM_ADMIN = '/_gantry/streams';
const LETTERS_SHOWN = 5;
// The outcome of the last replay of each stream, kept across the redraw that follows it.
const replayResults = new Map();

async function adminJson(path, method = 'GET') {
  const response = await fetch(`${STREAM_ADMIN}${path}`, { method, headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`${method} ${STREAM_ADMIN}${path}: ${response.status}`);
  return response.json();
}

async function loadDeadLetterQueues() {
  const target = $('dlq-streams');
  let admin;
  try {
    admin = await adminJson('');
  } catch (error) {
    target.replaceChildren(el('p', { class: 'bad' }, `the stream admin API refused: ${error.message}`));
    return;
  }
  const cards = await Promise.all(admin.streams.map((stream) => deadLetterCard(stream)));
  target.replaceChildren(...cards);
}

/** One stream: its groups with lag, the dead letters waiting (the first few, with their reason) and a replay. */
async function deadLetterCard(stream) {
  const count = stream.deadLetters;
  const letters =
    count > 0
      ? await adminJson(`/${encodeURIComponent(stream.stream)}/dead-letters?max=${LETTERS_SHOWN}`).catch(() => [])
      : [];
  const result = el('span', { class: 'dlq-result muted' }, replayResults.get(stream.stream) ?? '');
  const replay = el('button', { type: 'button', class: 'dlq-replay', disabled: !(count > 0) }, 'Replay');
  replay.addEventListener('click', async () => {
    replay.disabled = true;
    result.textContent = 'replaying…';
    try {
      const done = await adminJson(`/${encodeURIComponent(stream.stream)}/dead-letters/replay`, 'POST');
      replayResults.set(
        stream.stream,
        `replayed ${done.replayed.length}${done.kept > 0 ? `, kept ${done.kept} undecodable` : ''}`,
      );
      await loadStreams();
    } catch (error) {
      result.textContent = error.message;
      replay.disabled = false;
    }
  });
  return el(
    'div',
    { class: 'dlq', 'data-stream': stream.stream },
    el('h3', {}, el('span', { class: 'stream' }, stream.stream), ` published ${stream.published}`),
    el(
      'ul',
      { class: 'dlq-groups' },
      stream.groups.map((g) =>
        el(
          'li',
          { 'data-group': g.group },
          `${g.group}: lag `,
          el('strong', { class: 'lag' }, g.lag ?? '?'),
          `, delivered ${g.delivered}, acked ${g.acked}, dead-lettered ${g.deadLettered}`,
        ),
      ),
    ),
    el(
      'p',
      {},
      'dead letters waiting: ',
      el('strong', { class: count > 0 ? 'dlq-count bad' : 'dlq-count' }, count ?? '?'),
      ' ',
      replay,
      ' ',
      result,
    ),
    letters.length > 0
      ? el(
          'table',
          { class: 'grid dlq-letters' },
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              el('th', {}, 'message'),
              el('th', {}, 'group'),
              el('th', {}, 'attempts'),
              el('th', {}, 'reason'),
            ),
          ),
          el(
            'tbody',
            {},
            letters.map((letter) =>
              el(
                'tr',
                {},
                el('td', {}, letter.original?.id ?? '(undecodable)'),
                el('td', {}, letter.group),
                el('td', {}, letter.attempts),
                el('td', { class: 'reason' }, letter.reason),
              ),
            ),
          ),
        )
      : null,
  );
}
loaders.streams = () => loadStreams().catch(report);
$('streams-refresh').addEventListener('click', loaders.streams);

// ── calls and jobs ───────────────────────────────────────────────────────────────────────────────────────────────
const JOB_STATES = ['queued', 'running', 'retrying', 'succeeded', 'dead', 'cancelled'];
const note = (text) => el('tr', {}, el('td', { colspan: 8, class: 'muted' }, text));
const unknown = (what) => note(`${what}: no answer in time`);
const orNone = (rows, text) => (rows.length > 0 ? rows : [note(text)]);

async function loadWork() {
  const { calls, jobs, outbox } = await getJson('/api/work');
  $('call-rows').replaceChildren(
    ...orNone(
      calls.map((c) =>
        el(
          'tr',
          {},
          el('td', {}, c.target),
          el('td', { class: c.breaker === 'closed' ? '' : 'bad' }, c.breaker),
          el('td', {}, c.inFlight),
          el('td', {}, c.succeeded),
          el('td', { class: c.failed > 0 ? 'bad' : '' }, c.failed),
          el('td', {}, c.fellBack),
          el('td', {}, c.retries),
        ),
      ),
      'no calls to other services yet',
    ),
  );
  const tasks = new Map();
  for (const count of jobs ?? []) {
    const key = `${count.service}/${count.task}`;
    if (!tasks.has(key)) tasks.set(key, { service: count.service, task: count.task, states: {} });
    tasks.get(key).states[count.state] = count.count;
  }
  $('job-rows').replaceChildren(
    ...(jobs === null
      ? [unknown('jobs')]
      : orNone(
          [...tasks.values()].map((t) =>
            el(
              'tr',
              {},
              el('td', {}, t.service),
              el('td', {}, t.task),
              ...JOB_STATES.map((state) =>
                el('td', { class: state === 'dead' && t.states.dead > 0 ? 'bad' : '' }, t.states[state] ?? 0),
              ),
            ),
          ),
          'no jobs',
        )),
  );
  $('outbox-rows').replaceChildren(
    ...(outbox === null
      ? [unknown('outbox')]
      : orNone(
          outbox.map((o) => el('tr', {}, el('td', {}, o.service), el('td', {}, o.unsent))),
          'no service here has an outbox',
        )),
  );
}
loaders.work = () => loadWork().catch(report);
$('work-refresh').addEventListener('click', loaders.work);

// ── try it ───────────────────────────────────────────────────────────────────────────────────────────────────────
const operations = [];
let components = {};

/** A JSON value that fits `schema`, to start the body from. */
function sample(schema, depth = 0) {
  if (!schema || depth > 6) return null;
  if (schema.$ref) return sample(components[schema.$ref.split('/').pop()], depth + 1);
  if (schema.example !== undefined) return schema.example;
  if (schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  const choices = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(choices)) return sample(choices[0], depth + 1);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object': {
      const out = {};
      for (const [name, property] of Object.entries(schema.properties ?? {})) out[name] = sample(property, depth + 1);
      return out;
    }
    case 'array':
      return [];
    case 'integer':
    case 'number':
      return schema.minimum ?? 0;
    case 'boolean':
      return false;
    case 'string':
      if (schema.format === 'email') return 'someone@example.com';
      if (schema.format === 'uuid') return crypto.randomUUID();
      if (schema.format === 'date-time') return new Date().toISOString();
      return 'x'.repeat(Math.max(1, schema.minLength ?? 1));
    default:
      return null;
  }
}

function chooseOperation() {
  const op = operations[Number($('try-op').value)];
  if (!op) return;
  $('try-params').replaceChildren(
    ...(op.parameters ?? [])
      .filter((p) => p.in === 'path' || p.in === 'query')
      .map((p) =>
        el(
          'label',
          {},
          `${p.name} (${p.in}${p.required ? ', required' : ''})`,
          el('input', { 'data-in': p.in, name: p.name, value: p.in === 'path' ? String(sample(p.schema) ?? '') : '' }),
        ),
      ),
  );
  const body = op.requestBody?.content?.['application/json']?.schema;
  $('try-body-label').hidden = !body;
  $('try-body').value = body ? JSON.stringify(sample(body), null, 2) : '';
}

async function loadTry() {
  if (operations.length > 0) return;
  const response = await fetch('/openapi.json');
  if (!response.ok) {
    $('try-op').replaceChildren(el('option', {}, 'no OpenAPI document (docs are off)'));
    return;
  }
  const document = await response.json();
  components = document.components?.schemas ?? {};
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) operations.push({ ...op, method, path });
    }
  }
  $('try-op').replaceChildren(
    ...operations.map((op, index) => el('option', { value: index }, `${op.method.toUpperCase()} ${op.path}`)),
  );
  chooseOperation();
}
loaders.try = () => loadTry().catch(report);
$('try-op').addEventListener('change', chooseOperation);

$('try-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const op = operations[Number($('try-op').value)];
  if (!op) return;
  let path = op.path;
  const query = new URLSearchParams();
  for (const input of $('try-params').querySelectorAll('input')) {
    if (input.dataset.in === 'path') path = path.replace(`{${input.name}}`, encodeURIComponent(input.value));
    else if (input.value !== '') query.set(input.name, input.value);
  }
  const url = query.size > 0 ? `${path}?${query}` : path;
  const init = { method: op.method.toUpperCase(), headers: {} };
  if (!$('try-body-label').hidden) {
    init.headers['content-type'] = 'application/json';
    init.body = $('try-body').value;
  }
  const began = performance.now();
  const response = await fetch(url, init);
  const text = await response.text();
  $('try-result').hidden = false;
  $('try-status').textContent = `${response.status} ${response.statusText}`;
  $('try-status').className = response.ok ? 'ok' : 'bad';
  $('try-meta').textContent =
    `${init.method} ${url} · ${Math.round(performance.now() - began)} ms · request id ${response.headers.get('x-request-id') ?? '–'}`;
  let shown = text;
  try {
    shown = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // Not JSON: show it as it came.
  }
  $('try-response').textContent = shown;
});

// ── start ────────────────────────────────────────────────────────────────────────────────────────────────────────
function report(error) {
  console.error(error);
}
startLog();
loaders.overview();
setInterval(() => {
  if (!$('overview').hidden) loadSeries().catch(report);
}, 5000);
