// The accounts web UI: signup, sign-in, consent, recovery, password change.
// Every cryptographic step runs in wasm built from our Rust crates
// (sealbase-wasm over sealbase-auth); this file only moves values between
// forms, the wasm module and the JSON API. The password and the account
// root key never leave the page; the root key lives only in wasm memory for
// as long as this page is open.
import init, { AccountKey, Login, Registration } from './pkg/sealbase_wasm.js';

const view = document.getElementById('view');
const who = document.getElementById('who');

/** In-memory session state (lost on reload, by design). */
const session = { account: null, ark: null };

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error_description || body?.error || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error;
  }
}

async function api(path, body) {
  const options = body === undefined
    ? { method: 'GET' }
    : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const response = await fetch(`/api/v1${path}`, { ...options, credentials: 'same-origin' });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// --- rendering helpers -----------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === undefined || v === null) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function field(label, name, type, extra = {}) {
  const id = `f-${name}`;
  return [el('label', { for: id }, label), el('input', { id, name, type, required: true, ...extra })];
}

function show(title, ...content) {
  document.title = `${title} · Sealbase`;
  view.replaceChildren(el('section', { class: 'card', 'aria-labelledby': 'title' }, el('h1', { id: 'title' }, title), ...content));
  view.focus();
}

/** A form whose submit runs `action(values)`, with a busy state and an error line. */
function form(fields, submitLabel, action, extra = []) {
  const error = el('p', { class: 'error', role: 'alert' });
  const button = el('button', { type: 'submit' }, submitLabel);
  const node = el('form', { novalidate: false }, ...fields, el('div', { class: 'actions' }, button, ...extra), error);
  node.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    button.disabled = true;
    try {
      await action(Object.fromEntries(new FormData(node).entries()));
    } catch (e) {
      error.textContent = e instanceof ApiError ? explain(e) : String(e.message || e);
    } finally {
      button.disabled = false;
    }
  });
  return node;
}

function explain(e) {
  switch (e.code) {
    case 'invalid_credentials': return 'Wrong username or password.';
    case 'locked': return 'Too many failed sign-ins. Try again later.';
    case 'rate_limited': return 'Too many attempts from here. Wait a moment and try again.';
    default: return e.message;
  }
}

function setWho() {
  who.textContent = session.account ? `Signed in as ${session.account.username}` : '';
}

// --- navigation --------------------------------------------------------------

/** Only paths on this server may be a `next` target. */
function safeNext(next) {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

function go(path) {
  history.pushState(null, '', path);
  route();
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-link]');
  if (link && link.origin === location.origin) {
    event.preventDefault();
    go(link.pathname + link.search);
  }
});
window.addEventListener('popstate', route);

async function loadAccount() {
  try {
    session.account = await api('/account');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) throw e;
    session.account = null;
    session.ark = null;
  }
  setWho();
  return session.account;
}

// --- flows -------------------------------------------------------------------

/** OPAQUE login; keeps ARK in memory. */
async function signIn(username, password) {
  const login = new Login(password);
  const started = await api('/login/start', { username, credential_request: login.request });
  const result = login.finish(password, started.credential_response);
  const done = await api('/login/finish', { login_id: started.login_id, credential_finalization: result.finalization });
  session.ark = result.openAccountKey(done.wrapped_ark);
  session.account = done.account;
  setWho();
}

function loginView(params) {
  const next = safeNext(params.get('next'));
  show('Sign in',
    form([
      ...field('Username', 'username', 'text', { autocomplete: 'username', autocapitalize: 'none' }),
      ...field('Password', 'password', 'password', { autocomplete: 'current-password' }),
    ], 'Sign in', async ({ username, password }) => {
      await signIn(username, password);
      go(next);
    }),
    el('p', { class: 'links' },
      el('a', { href: `/signup?next=${encodeURIComponent(next)}`, 'data-link': true }, 'Create an account'),
      el('a', { href: '/recover', 'data-link': true }, 'Forgot your password?')));
}

function signupView(params) {
  const next = safeNext(params.get('next'));
  show('Create your account',
    form([
      ...field('Username', 'username', 'text', { autocomplete: 'username', autocapitalize: 'none', minlength: 3, maxlength: 32 }),
      ...field('Email', 'email', 'email', { autocomplete: 'email' }),
    ], 'Send code', async ({ username, email }) => {
      const started = await api('/signup/start', { username, email });
      signupCodeView(started.signup_id, email, next);
    }),
    el('p', { class: 'links' }, el('a', { href: `/login?next=${encodeURIComponent(next)}`, 'data-link': true }, 'I have an account')));
}

function signupCodeView(signupId, email, next) {
  show('Check your email',
    el('p', { class: 'muted' }, `We sent a 6-digit code to ${email}. Choose your password; it never leaves this page.`),
    form([
      ...field('Code', 'code', 'text', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6 }),
      ...field('Password', 'password', 'password', { autocomplete: 'new-password', minlength: 10 }),
      ...field('Repeat the password', 'password2', 'password', { autocomplete: 'new-password' }),
    ], 'Create account', async ({ code, password, password2 }) => {
      if (password !== password2) throw new Error('The passwords differ.');
      const registration = new Registration(password);
      const verified = await api('/signup/verify', { signup_id: signupId, code: code.trim(), registration_request: registration.request });
      const keys = registration.finishSignup(password, verified.registration_response);
      const done = await api('/signup/finish', {
        signup_id: signupId,
        registration_upload: keys.upload,
        wrapped_ark: keys.wrappedArk,
        recovery_blob: keys.recoveryBlob,
        ark_proof: keys.arkProof,
      });
      session.ark = keys.takeAccountKey();
      session.account = done.account;
      setWho();
      recoveryKeyView(keys.recoveryKey, next);
    }));
}

function recoveryKeyView(recoveryKey, next) {
  const saved = el('input', { id: 'saved', type: 'checkbox' });
  const button = el('button', { type: 'button', disabled: true, onclick: () => go(next) }, 'Continue');
  saved.addEventListener('change', () => { button.disabled = !saved.checked; });
  show('Save your recovery key',
    el('p', {}, 'If you forget your password, this key and your email are the only way back into your data. We cannot show it again or recover it for you.'),
    el('p', { class: 'recovery', id: 'recovery-key' }, recoveryKey),
    el('p', {}, saved, ' ', el('label', { for: 'saved', class: 'inline' }, 'I have stored my recovery key somewhere safe')),
    el('div', { class: 'actions' }, button));
}

async function consentView(params) {
  const requestId = params.get('request') || '';
  const here = `/consent?request=${encodeURIComponent(requestId)}`;
  if (!(await loadAccount())) return go(`/login?next=${encodeURIComponent(here)}`);
  if (!session.ark) {
    // A fresh page load: the root key is only in memory after a sign-in here.
    show('Confirm your password',
      el('p', { class: 'muted' }, 'An app is asking for access. Confirm your password to continue.'),
      form([...field('Password', 'password', 'password', { autocomplete: 'current-password' })], 'Continue',
        async ({ password }) => { await signIn(session.account.username, password); route(); }));
    return;
  }
  let request;
  try {
    request = await api(`/oauth/requests/${encodeURIComponent(requestId)}`);
  } catch (e) {
    return show('Request expired', el('p', {}, explain(e)));
  }
  const answer = async (approve) => {
    const body = { request_id: request.request_id, approve };
    if (approve) {
      const keys = session.ark.consent(session.account.username, request.client_id, request.key_x25519 ?? undefined);
      body.identity = { did: keys.did, x25519: keys.x25519, attestation: keys.attestation };
      if (keys.keyJwe) body.key_jwe = keys.keyJwe;
    }
    const done = await api('/oauth/consent', body);
    location.assign(done.redirect_to);
  };
  const labels = { sync: 'Store and sync its data, end-to-end encrypted', profile: 'See your username', email: 'See your email address', directory: 'Look up other users of this app to share with them' };
  show(`${request.client_name} wants to use your account`,
    el('p', {}, `Signed in as `, el('strong', {}, session.account.username), '.'),
    el('ul', { class: 'scopes' }, request.scope.map((s) => el('li', {}, labels[s] || s))),
    request.key_x25519 ? el('p', { class: 'muted' }, 'The app receives its own encryption key, made in this page. The server only passes it on sealed.') : null,
    form([], 'Allow', () => answer(true), [el('button', { type: 'button', class: 'secondary', onclick: () => answer(false) }, 'Deny')]));
}

function recoverView() {
  show('Recover your account',
    el('p', { class: 'muted' }, 'You need access to your email and your recovery key.'),
    form([...field('Email', 'email', 'email', { autocomplete: 'email' })], 'Send code', async ({ email }) => {
      const started = await api('/recovery/start', { email });
      recoverFinishView(started.recovery_id, email);
    }));
}

function recoverFinishView(recoveryId, email) {
  show('Set a new password',
    el('p', { class: 'muted' }, `If ${email} has an account, we sent it a code.`),
    form([
      ...field('Code', 'code', 'text', { inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6 }),
      ...field('Recovery key', 'recovery', 'text', { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' }),
      ...field('New password', 'password', 'password', { autocomplete: 'new-password', minlength: 10 }),
    ], 'Recover', async ({ code, recovery, password }) => {
      const registration = new Registration(password);
      const verified = await api('/recovery/verify', { recovery_id: recoveryId, code: code.trim(), registration_request: registration.request });
      const ark = AccountKey.fromRecovery(recovery.trim(), verified.recovery_blob);
      const rewrap = registration.finishRewrap(password, verified.registration_response, ark);
      const done = await api('/recovery/finish', { recovery_id: recoveryId, registration_upload: rewrap.upload, wrapped_ark: rewrap.wrappedArk, ark_proof: rewrap.arkProof });
      session.ark = ark;
      session.account = done.account;
      setWho();
      show('Account recovered', el('p', {}, 'Your new password is set and your data is readable as before. Other devices were signed out.'),
        el('p', { class: 'links' }, el('a', { href: '/', 'data-link': true }, 'Continue')));
    }));
}

async function passwordView() {
  if (!(await loadAccount())) return go(`/login?next=${encodeURIComponent('/password')}`);
  show('Change your password',
    form([
      ...field('Current password', 'current', 'password', { autocomplete: 'current-password' }),
      ...field('New password', 'password', 'password', { autocomplete: 'new-password', minlength: 10 }),
    ], 'Change password', async ({ current, password }) => {
      await signIn(session.account.username, current);
      const registration = new Registration(password);
      const started = await api('/password/start', { registration_request: registration.request });
      const rewrap = registration.finishRewrap(password, started.registration_response, session.ark);
      await api('/password/finish', { registration_upload: rewrap.upload, wrapped_ark: rewrap.wrappedArk, ark_proof: rewrap.arkProof });
      show('Password changed', el('p', {}, 'Other devices and apps were signed out; sign in there again.'),
        el('p', { class: 'links' }, el('a', { href: '/', 'data-link': true }, 'Continue')));
    }));
}

async function homeView() {
  if (!(await loadAccount())) {
    return show('Your Sealbase account',
      el('p', {}, 'One account for end-to-end encrypted apps.'),
      el('p', { class: 'links' }, el('a', { href: '/login', 'data-link': true }, 'Sign in'), el('a', { href: '/signup', 'data-link': true }, 'Create an account')));
  }
  show(`Hello, ${session.account.username}`,
    el('p', { class: 'muted' }, session.account.email),
    el('p', { class: 'links' }, el('a', { href: '/password', 'data-link': true }, 'Change password')),
    form([], 'Sign out', async () => {
      await api('/logout', {});
      session.account = null;
      session.ark = null;
      setWho();
      go('/');
    }));
}

async function route() {
  const params = new URLSearchParams(location.search);
  switch (location.pathname) {
    case '/login': return loginView(params);
    case '/signup': return signupView(params);
    case '/consent': return consentView(params);
    case '/recover': return recoverView();
    case '/password': return passwordView();
    default: return homeView();
  }
}

await init();
if (location.pathname !== '/consent' && location.pathname !== '/password') await loadAccount();
await route();
