// The customers web app of the Gantry example system: plain DOM, no framework, no build step. It talks to the
// customers API, follows /app/events (one Server-Sent Event per customer change) and shows the notifier's mailbox and
// the replica's status. Data from the API is only ever set as text, never parsed as HTML.

const PAGE_SIZE = 10;
const FEED_LENGTH = 20;
const SIDE_REFRESH_MS = 5_000;

const state = {
  page: 1,
  total: 0,
  items: [],
  filters: { name: '', email: '' },
  /** The customer in the form, or null when the form creates one. */
  editing: null,
  saving: false,
  /** Ids of rows to highlight at the next render: changes that arrived while the list was reloading. */
  flash: new Set(),
};

const byId = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === undefined || value === null) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

/** An answer of the API that is not a success, with its problem document when it sent one. */
class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `the server answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// ---- login ----------------------------------------------------------------------------------------------------

/** The cookie through which the server hands this page its session's CSRF token (absent while login is off). */
const CSRF_COOKIE = 'gantry_session_csrf';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** True once the server said who is logged in: a 401 then means the session ended. */
let loggedIn = false;
/** True once the user logged out on this page: nothing reconnects or reloads after that. */
let signedOut = false;

function csrfToken() {
  const prefix = `${CSRF_COOKIE}=`;
  const entry = document.cookie.split('; ').find((cookie) => cookie.startsWith(prefix));
  return entry ? decodeURIComponent(entry.slice(prefix.length)) : undefined;
}

/** The session ended (expired, or logged out in another tab): log in again and come back here. */
function loginAgain() {
  window.location.assign(`/auth/login?returnTo=${encodeURIComponent(window.location.pathname)}`);
}

async function showUser() {
  const response = await fetch('/auth/session', { headers: { accept: 'application/json' } });
  if (!response.ok) return; // login is off (404) or there is no session
  const { subject } = await response.json();
  if (signedOut) return;
  loggedIn = true;
  byId('user').textContent = subject;
  byId('account').hidden = false;
}

async function logout() {
  // From here on a 401 is expected: a list reload still in flight must not send the browser to the provider,
  // and the live feed must not reconnect.
  loggedIn = false;
  signedOut = true;
  source?.close();
  const token = csrfToken();
  await fetch('/auth/logout', { method: 'POST', headers: token ? { 'x-csrf-token': token } : {} });
  document.body.replaceChildren(
    h('main', { class: 'signed-out' }, h('p', {}, 'You are signed out. '), h('a', { href: '/app/' }, 'Sign in again')),
  );
}

async function api(method, url, body) {
  const headers = body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' };
  const token = csrfToken();
  if (token && UNSAFE.has(method)) headers['x-csrf-token'] = token;
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && loggedIn) loginAgain();
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') ?? '';
  const data = type.includes('json') ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Calls `fn` once, `ms` after the last of a burst of calls. */
function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

const time = (iso) => h('time', { datetime: iso, title: iso }, new Date(iso).toLocaleTimeString());

// ---- the list --------------------------------------------------------------------------------------------------

let listRequest = 0;

async function loadList() {
  const request = ++listRequest;
  const query = new URLSearchParams({ page: String(state.page), pageSize: String(PAGE_SIZE) });
  if (state.filters.name) query.set('name', state.filters.name);
  if (state.filters.email) query.set('email', state.filters.email);
  try {
    const page = await api('GET', `/customers?${query}`);
    if (request !== listRequest) return; // a newer request is on its way
    const lastPage = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
    if (state.page > lastPage) {
      // The page emptied (deletes elsewhere, or a narrower search): show the last one that has rows.
      state.page = lastPage;
      await loadList();
      return;
    }
    state.items = page.items;
    state.total = page.total;
    byId('list-error').textContent = '';
    renderList();
  } catch (error) {
    if (request === listRequest) byId('list-error').textContent = `Could not load customers: ${error.message}`;
  }
}

const reloadList = debounce(loadList, 100);

function renderList() {
  const rows = state.items.map((customer) => customerRow(customer, state.flash.has(customer.id)));
  state.flash.clear();
  if (rows.length === 0) {
    const filtered = state.filters.name || state.filters.email;
    const text = filtered ? 'No customer matches.' : 'No customers yet: create the first one.';
    rows.push(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, text)));
  }
  byId('customers').tBodies[0].replaceChildren(...rows);
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  const noun = state.total === 1 ? 'customer' : 'customers';
  byId('page-info').textContent = `Page ${state.page} of ${pages} · ${state.total} ${noun}`;
  byId('prev').disabled = state.page <= 1;
  byId('next').disabled = state.page >= pages;
}

function customerRow(customer, flash) {
  return h(
    'tr',
    { 'data-id': customer.id, class: flash ? 'flash' : undefined },
    h('td', { class: 'name' }, customer.name),
    h('td', { class: 'email' }, customer.email),
    h('td', { class: 'version' }, `v${customer.version}`),
    h('td', {}, time(customer.updatedAt)),
    h(
      'td',
      { class: 'actions' },
      h('button', { type: 'button', class: 'edit', onclick: () => startEditing(customer) }, 'Edit'),
      ' ',
      h('button', { type: 'button', class: 'delete danger', onclick: () => remove(customer) }, 'Delete'),
    ),
  );
}

/** True when the list's search would show this customer (the API matches parts of name and email, any case). */
function matchesFilters(customer) {
  if (!customer) return false;
  const { name, email } = state.filters;
  return (
    (!name || customer.name.toLowerCase().includes(name.toLowerCase())) &&
    (!email || customer.email.toLowerCase().includes(email.toLowerCase()))
  );
}

// ---- the form --------------------------------------------------------------------------------------------------

const form = byId('customer-form');

function clearErrors() {
  for (const element of form.querySelectorAll('[data-error-for]')) element.textContent = '';
  for (const input of form.querySelectorAll('input')) input.removeAttribute('aria-invalid');
  byId('form-error').textContent = '';
}

/** Shows a message next to a field of the form, or above the buttons when no field of that name exists. */
function showError(field, message) {
  const slot = field && form.querySelector(`[data-error-for="${field}"]`);
  if (!slot) {
    const formError = byId('form-error');
    formError.textContent = formError.textContent ? `${formError.textContent} ${message}` : message;
    return;
  }
  slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
  form.elements[field]?.setAttribute('aria-invalid', 'true');
}

/** Puts the API's answer next to the fields it names: `errors[].path` is a JSON pointer such as `/body/email`. */
function showProblem(error) {
  const problem = error.problem;
  if (problem?.errors?.length) {
    for (const { path, message } of problem.errors) {
      const match = /^\/body\/([^/]+)/.exec(path);
      showError(match ? match[1] : null, message);
    }
  } else if (error.status === 409) {
    // The one unique field of a customer is its email.
    showError('email', problem?.detail ?? error.message);
  } else if (error.status === 404 && state.editing) {
    showError(null, 'This customer no longer exists.');
  } else {
    showError(null, error.message);
  }
  form.querySelector('[aria-invalid="true"]')?.focus();
}

function resetForm() {
  state.editing = null;
  form.reset();
  clearErrors();
  byId('form-notice').textContent = '';
  byId('form-title').textContent = 'New customer';
  byId('save').textContent = 'Create';
  byId('cancel').hidden = true;
}

function startEditing(customer) {
  resetForm();
  state.editing = { id: customer.id, version: customer.version };
  form.elements.name.value = customer.name;
  form.elements.email.value = customer.email;
  byId('form-title').textContent = 'Edit customer';
  byId('save').textContent = 'Save';
  byId('cancel').hidden = false;
  form.elements.name.focus();
}

function say(text) {
  const status = byId('status');
  status.textContent = text;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => {
    status.textContent = '';
  }, 4_000);
}

async function save(event) {
  event.preventDefault();
  if (state.saving) return;
  clearErrors();
  const body = { name: form.elements.name.value.trim(), email: form.elements.email.value.trim() };
  const editing = state.editing;
  state.saving = true;
  byId('save').disabled = true;
  try {
    const customer = editing
      ? await api('PUT', `/customers/${editing.id}`, body)
      : await api('POST', '/customers', body);
    say(editing ? `Saved ${customer.name}.` : `Created ${customer.name}.`);
    resetForm();
    if (!editing) state.page = 1; // newest first: the new customer is on the first page
    state.flash.add(customer.id);
    reloadList();
  } catch (error) {
    if (error instanceof ApiError) showProblem(error);
    else showError(null, `Could not reach the server: ${error.message}`);
  } finally {
    state.saving = false;
    byId('save').disabled = false;
  }
}

async function remove(customer) {
  if (!window.confirm(`Delete ${customer.name} <${customer.email}>?`)) return;
  try {
    await api('DELETE', `/customers/${customer.id}`);
    say(`Deleted ${customer.name}.`);
  } catch (error) {
    // Already deleted elsewhere: the list is refreshed either way.
    if (!(error instanceof ApiError && error.status === 404)) {
      byId('list-error').textContent = `Could not delete ${customer.name}: ${error.message}`;
    }
  }
  if (state.editing?.id === customer.id) resetForm();
  reloadList();
}

// ---- live changes ----------------------------------------------------------------------------------------------

function setLive(stateName, text) {
  const live = byId('live');
  live.dataset.state = stateName;
  live.textContent = text;
}

function describeChange(change) {
  const { operation, before, after } = change;
  const who = after ?? before;
  const parts = [h('span', { class: 'op' }, operation), ' ', who ? `${who.name} <${who.email}>` : change.customerId];
  if (operation === 'updated' && before && after) {
    const diffs = [];
    if (before.name !== after.name) diffs.push(`name ${before.name} → ${after.name}`);
    if (before.email !== after.email) diffs.push(`email ${before.email} → ${after.email}`);
    if (diffs.length) parts.push(` (${diffs.join(', ')})`);
  }
  parts.push(` v${change.version} · `, time(change.changedAt));
  return h('li', { 'data-customer': change.customerId, 'data-operation': operation }, ...parts);
}

function applyChange(change) {
  const feed = byId('changes');
  feed.querySelector('.empty')?.remove();
  feed.prepend(describeChange(change));
  while (feed.children.length > FEED_LENGTH) feed.lastElementChild.remove();

  // The customer in the form changed elsewhere: say so, since saving would overwrite that change.
  if (state.editing?.id === change.customerId && change.version > state.editing.version && !state.saving) {
    byId('form-notice').textContent =
      change.operation === 'deleted'
        ? 'This customer was deleted elsewhere.'
        : `Changed elsewhere meanwhile (now v${change.version}: ${change.after.name} <${change.after.email}>). Saving overwrites that change.`;
  }

  if (!matchesFilters(change.before) && !matchesFilters(change.after)) return; // not in this search
  const row = document.querySelector(`#customers tr[data-id="${CSS.escape(change.customerId)}"]`);
  if (change.operation === 'updated' && row && matchesFilters(change.after)) {
    // On screen and still matching: update it in place rather than asking for the page again.
    const index = state.items.findIndex((customer) => customer.id === change.customerId);
    if (index >= 0 && state.items[index].version < change.version) {
      state.items[index] = change.after;
      row.replaceWith(customerRow(change.after, true));
    }
    return;
  }
  // Created, deleted, or moved in or out of the search: the page itself changes.
  state.flash.add(change.customerId);
  reloadList();
}

let source;
let retryMs = 1_000;

function connect() {
  if (signedOut) return;
  source = new EventSource('/app/events');
  source.addEventListener('ready', (event) => {
    const { live } = JSON.parse(event.data);
    if (live) setLive('live', 'live');
    else setLive('no-feed', 'no live changes on this server');
    retryMs = 1_000;
    // Changes may have been missed while not connected: reload what is shown.
    reloadList();
    refreshSide();
  });
  source.addEventListener('change', (event) => {
    applyChange(JSON.parse(event.data));
    refreshSide();
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CONNECTING) {
      setLive('connecting', 'reconnecting…');
      return;
    }
    // Closed for good (the server refused, or answered something other than a stream): try again later ourselves.
    setLive('offline', 'offline');
    source.close();
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 30_000);
  });
}

// ---- mailbox and replica ---------------------------------------------------------------------------------------

async function loadMailbox() {
  try {
    const mails = await api('GET', '/mailbox?limit=10');
    const rows = mails.map((mail) =>
      h('tr', {}, h('td', {}, time(mail.sentAt)), h('td', {}, mail.to.join(', ')), h('td', {}, mail.subject)),
    );
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: 3, class: 'empty' }, 'No mail yet.')));
    byId('mailbox').tBodies[0].replaceChildren(...rows);
    byId('mailbox-error').textContent = '';
  } catch (error) {
    byId('mailbox-error').textContent =
      error.status === 404
        ? 'The notifier does not run on this server.'
        : `Could not load the mailbox: ${error.message}`;
  }
}

async function loadReplica() {
  try {
    const status = await api('GET', '/replica/status');
    const last = status.lastApplied;
    const facts = [
      ['Store', status.store],
      ['Rows', String(status.rows)],
      ['Deleted', String(status.deleted)],
      ['Last applied', last ? `v${last.version} of ${last.customerId.slice(0, 8)}…` : 'nothing yet'],
    ];
    if (last) facts.push(['At', new Date(last.at).toLocaleTimeString()]);
    byId('replica').replaceChildren(
      ...facts.flatMap(([term, value]) => [h('dt', {}, term), h('dd', { 'data-fact': term.toLowerCase() }, value)]),
    );
    byId('replica-error').textContent = '';
  } catch (error) {
    byId('replica-error').textContent =
      error.status === 404
        ? 'The replicator does not run on this server.'
        : `Could not load the replica status: ${error.message}`;
  }
}

// The notifier and the replicator handle a change a moment after the browser hears of it; the poll catches up.
const refreshSide = debounce(() => Promise.all([loadMailbox(), loadReplica()]), 400);

// ---- wiring ----------------------------------------------------------------------------------------------------

const search = debounce(() => {
  state.filters = { name: byId('search-name').value.trim(), email: byId('search-email').value.trim() };
  state.page = 1;
  loadList();
}, 200);

byId('search').addEventListener('input', search);
byId('search').addEventListener('submit', (event) => event.preventDefault());
byId('prev').addEventListener('click', () => {
  state.page = Math.max(1, state.page - 1);
  loadList();
});
byId('next').addEventListener('click', () => {
  state.page += 1;
  loadList();
});
form.addEventListener('submit', save);
byId('logout').addEventListener('click', logout);
byId('cancel').addEventListener('click', resetForm);
setInterval(() => {
  if (!document.hidden) refreshSide();
}, SIDE_REFRESH_MS);

showUser();
loadList();
refreshSide();
connect();
