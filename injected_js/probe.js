/*
 * rsproxy browser probe, injected by the proxy into every HTML page. It records page views
 * (SPA route changes included), console output, uncaught errors, fetch/XHR calls and GraphQL
 * operations, web vitals, long tasks, a resource summary, large DOM insertions,
 * dataLayer/gtag calls, React renders (through __REACT_DEVTOOLS_GLOBAL_HOOK__) and Redux/Zustand
 * store actions (through the Redux DevTools extension's globals), streams them to the proxy over
 * a WebSocket, and runs the server's exec commands. This is the readable source; the proxy serves probe.min.js, made from it by
 * `python injected_js/build.py` (run it after every change; a test checks it is up to date).
 * A small core (page id, queue, transport, serializer) plus collectors: collector(name, fn)
 * calls fn(core) once to hook one thing; it reports with core.push(kind, data).
 * It runs inside someone else's app: it must never throw into the page, patched functions
 * must behave as before, window.__rsproxy is its only global, and it never logs itself.
 */
(function () {
  'use strict';

  // A second copy (e.g. the page was proxied twice) leaves the first alone.
  if (typeof window === 'undefined' || window.__rsproxy) return;

  const PROBE_PATH = '/__rsproxy/probe.js';
  const BATCH = 50; // events per message; a queue this long is sent at once
  const FLUSH_MS = 250;
  const MAX_QUEUE = 1000;
  const BACKOFF_MAX = 30000;

  // Taken before app code runs, which may replace them (fake timers, WebSocket wrappers).
  const NativeWS = window.WebSocket;
  const setT = window.setTimeout.bind(window);
  const clearT = window.clearTimeout.bind(window);
  const stringify = JSON.stringify;
  const now = Date.now;
  const loc = window.location;
  const NPromise = window.Promise;
  const geval = window.eval; // called by name, so an indirect eval: global scope, sloppy mode

  // ---- core

  // busy is set while probe code runs. Page hooks entered meanwhile (an app that logs each
  // WebSocket send, a getter that logs while we serialize it) record nothing: no loops.
  let busy = false;
  const handlers = Object.create(null); // server message type -> fn(msg)

  const core = {
    version: 1,
    page_id: randomId(), // replaced on each SPA route change
    hello: null, // the last {"type": "hello"} from the server
    collectors: [],
    push, // push(kind, data, pageId?): queue an event; data must be plain JSON data already
    ser, // ser(value): bounded JSON-safe copy of anything
    text, // text(value): value as the console prints it
    guard, // guard(fn, ...args): run fn for a page hook; never throws
    on(type, fn) { handlers[type] = fn; },
  };
  handlers.hello = (msg) => { core.hello = msg; };

  function randomId() {
    const b = new Uint8Array(8);
    try {
      window.crypto.getRandomValues(b);
    } catch (e) {
      for (let i = 0; i < 8; i++) b[i] = Math.random() * 256;
    }
    return Array.from(b, (x) => (x < 16 ? '0' : '') + x.toString(16)).join('');
  }

  function guard(fn, ...args) {
    if (!busy) locked(fn, args);
  }

  function locked(fn, args) {
    const prev = busy;
    busy = true;
    try {
      fn.apply(null, args);
    } catch (e) {
      // A probe bug must not surface in the page.
    } finally {
      busy = prev;
    }
  }

  function collector(name, install) {
    try {
      install(core);
      core.collectors.push(name);
    } catch (e) { /* skipped; the other collectors still work */ }
  }

  function cap(s, n) {
    return s.length > n ? s.slice(0, n) + '…[+' + (s.length - n) + ']' : s;
  }

  // ---- serialization

  function isError(v) {
    return v instanceof Error || Object.prototype.toString.call(v) === '[object Error]';
  }

  // Depth 4, 20 keys or items per level, strings of 2000. ctx.seen holds the objects on the
  // current path (cycles); ctx.left bounds the total work on a huge graph; ctx.quiet leaves
  // getters unread.
  function ser(v, ctx, depth) {
    ctx = ctx || { seen: new WeakSet(), left: 1000 };
    depth = depth || 0;
    ctx.left--;
    switch (typeof v) {
      case 'string': return cap(v, 2000);
      case 'number': return isFinite(v) ? v : String(v); // JSON has no NaN or Infinity
      case 'boolean': return v;
      case 'undefined': return '[undefined]';
      case 'function': return '[Function ' + (v.name || 'anonymous') + ']';
      case 'bigint': return v + 'n';
      case 'symbol': return String(v);
    }
    if (v === null) return null;
    try {
      if (v === window) return '[Window]';
      if (isError(v)) return { name: ser(v.name), message: ser(v.message), stack: ser(v.stack) };
      if (typeof v.nodeType === 'number' && typeof v.nodeName === 'string') {
        let s = '<' + v.nodeName.toLowerCase() + (v.id ? '#' + v.id : '');
        // SVG elements have an object className; skipped.
        if (typeof v.className === 'string' && v.className.trim()) s += '.' + v.className.trim().split(/\s+/).join('.');
        return cap(s, 200) + '>';
      }
      if (v instanceof Date) return isNaN(v) ? 'Invalid Date' : v.toISOString();
      if (v instanceof RegExp) return String(v);
      // Typed arrays can be huge and their items say little in a log line.
      if (ArrayBuffer.isView(v)) return '[' + Object.prototype.toString.call(v).slice(8, -1) + ']';
      if (ctx.seen.has(v)) return '[Circular]';
      const list = Array.isArray(v) || v instanceof Map || v instanceof Set; // Map: [[k, v], ...]
      if (depth >= 4 || ctx.left <= 0) return list ? '[Array]' : '[Object]';
      ctx.seen.add(v);
      try {
        if (list) {
          const out = [];
          for (const x of v) {
            if (out.length === 20) break;
            out.push(ser(x, ctx, depth + 1));
          }
          const total = Array.isArray(v) ? v.length : v.size;
          if (total > 20) out.push('…+' + (total - 20));
          return out;
        }
        const out = Object.create(null); // so a "__proto__" key stays a plain key
        const keys = Object.keys(v);
        for (const k of keys.slice(0, 20)) {
          try {
            // A getter is not run for the console (which shows it unexpanded): logging must
            // have no side effects in the page.
            const d = ctx.quiet ? Object.getOwnPropertyDescriptor(v, k) : null;
            out[k] = d && !('value' in d) ? '[Getter]' : ser(d ? d.value : v[k], ctx, depth + 1);
          } catch (e) {
            out[k] = '[Unreadable]'; // throwing getter
          }
        }
        if (keys.length > 20) out['…'] = '+' + (keys.length - 20);
        return out;
      } finally {
        ctx.seen.delete(v);
      }
    } catch (e) {
      return '[Unreadable]';
    }
  }

  // args as the console prints them: %-substitutions in a leading string, then the rest joined
  // by spaces. vals are the ser() copies of args.
  function format(args, vals) {
    const show = (i) => {
      const a = args[i];
      const s = vals[i];
      if (typeof a === 'string') return a;
      if (a === undefined) return 'undefined';
      if (isError(a) && typeof s === 'object') return s.name + ': ' + s.message;
      return typeof s === 'string' ? s : stringify(s);
    };
    const parts = [];
    let next = 0;
    if (typeof args[0] === 'string') {
      next = 1;
      parts.push(args[0].replace(/%[sdifoOc%]/g, (m) => {
        if (m === '%%') return '%'; // an escaped percent takes no argument
        if (next >= args.length) return m;
        const i = next++;
        const a = args[i];
        if (m === '%c') return ''; // CSS
        // Numbers from primitives only: converting an object would run its toString or
        // valueOf a second time, after the console's own formatter did.
        const prim = typeof a === 'number' || typeof a === 'string' || typeof a === 'boolean';
        if (m === '%f') return prim ? String(parseFloat(a)) : 'NaN';
        if (m === '%d' || m === '%i') return prim ? String(parseInt(a, 10)) : typeof a === 'bigint' ? a + 'n' : 'NaN';
        return show(i);
      }));
    }
    for (; next < args.length; next++) parts.push(show(next));
    return cap(parts.join(' '), 4000);
  }

  function text(v) {
    return format([v], [ser(v)]);
  }

  // The caller's stack without the probe's frames. V8 keeps 10 frames by default and some
  // are ours, so the limit is raised for this one Error and put back at once.
  function callerStack() {
    const limit = Error.stackTraceLimit;
    const deeper = typeof limit === 'number';
    try {
      if (deeper) Error.stackTraceLimit = limit + 10;
    } catch (e) { /* read-only */ }
    const raw = new Error().stack;
    try {
      if (deeper) Error.stackTraceLimit = limit;
    } catch (e) { /* read-only */ }
    if (typeof raw !== 'string') return undefined;
    return cap(raw.split('\n').filter((l) => l && l !== 'Error' && !l.includes(PROBE_PATH)).join('\n'), 4000);
  }

  // ---- transport

  const queue = [];
  let dropped = 0; // events pushed out of a full queue since the last message sent
  let sock = null;
  let openedAt = 0;
  let flushTimer = 0;
  let retryTimer = 0;
  let backoff = 500;
  let paused = false; // page is in the back/forward cache

  // pageId: the page view an event belongs to when it began in an earlier one (a request).
  function push(kind, data, pageId) {
    queue.push({ kind, ts: now(), page_id: pageId || core.page_id, data });
    if (queue.length > MAX_QUEUE) {
      queue.shift();
      dropped++;
    }
    if (!isOpen()) return; // kept for the socket's open (or a page-hide beacon)
    if (queue.length >= BATCH) flush();
    else if (!flushTimer) flushTimer = setT(flush, FLUSH_MS);
  }

  function isOpen() {
    return !!sock && sock.readyState === 1;
  }

  // Sends the queue in messages of up to BATCH events via send(body) -> bool; what a failed
  // send leaves stays queued for the next chance.
  function drain(send) {
    while (queue.length) {
      const events = queue.slice(0, BATCH);
      const msg = { type: 'events', v: 1, page_id: core.page_id, events };
      if (dropped) msg.dropped = dropped;
      if (!send(stringify(msg))) return;
      queue.splice(0, events.length);
      dropped = 0;
    }
  }

  function sendSocket(body) {
    if (!isOpen()) return false;
    try {
      sock.send(body);
      return true;
    } catch (e) {
      return false;
    }
  }

  // A page going away may not get socket data out; a beacon does. The body is a string, so
  // it goes as text/plain with no CORS preflight; the URL is absolute to ignore any <base>.
  function sendBeacon(body) {
    try {
      if (navigator.sendBeacon(loc.protocol + '//' + loc.host + '/__rsproxy/events', body)) return true;
    } catch (e) { /* no sendBeacon */ }
    return sendSocket(body);
  }

  function flush(viaBeacon) {
    clearT(flushTimer);
    flushTimer = 0;
    locked(drain, [viaBeacon === true ? sendBeacon : sendSocket]);
  }

  function connect() {
    retryTimer = 0;
    if (paused || !NativeWS || !loc.host) return;
    let ws;
    try {
      ws = sock = new NativeWS((loc.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + loc.host + '/__rsproxy/ws');
    } catch (e) {
      return reconnectLater();
    }
    ws.onopen = () => {
      openedAt = now();
      flush();
    };
    ws.onmessage = (ev) => locked(() => {
      const msg = JSON.parse(ev.data);
      const h = msg && handlers[msg.type];
      if (h) h(msg);
    }, []);
    ws.onclose = () => {
      if (sock !== ws) return; // closed by us on purpose
      sock = null;
      // Only a connection that lasted resets the backoff: a server that accepts and drops
      // us at once must not be hammered.
      if (openedAt && now() - openedAt > 10000) backoff = 500;
      openedAt = 0;
      reconnectLater();
    };
  }

  function reconnectLater() {
    if (retryTimer || paused) return;
    retryTimer = setT(connect, backoff * (0.75 + Math.random() / 2)); // jitter: tabs differ
    backoff = Math.min(backoff * 2, BACKOFF_MAX);
  }

  function startTransport() {
    document.addEventListener('visibilitychange', () => guard(() => {
      if (document.visibilityState === 'hidden') flush(true);
    }));
    window.addEventListener('pagehide', () => guard(() => {
      flush(true);
      // An open WebSocket keeps the page out of the back/forward cache, which would change
      // what Back does in the app: close it, and reconnect if the page is shown again.
      paused = true;
      clearT(retryTimer);
      retryTimer = 0;
      const s = sock;
      sock = null;
      if (s) s.close();
    }));
    window.addEventListener('pageshow', (ev) => guard(() => {
      if (!ev.persisted) return;
      paused = false;
      backoff = 500;
      connect();
    }));
    connect();
  }

  // ---- exec: {"type": "exec", "id", "code", "timeout_ms"} from the server, answered with one
  // {"type": "exec_result", "id", "page_id", "ok", "value" | "error": {name, message, stack}}
  // frame sent at once. The code runs outside the probe's lock, so its console output and
  // requests are recorded like the page's own; a returned thenable is awaited up to timeout_ms.

  function errorInfo(e) {
    if (e && typeof e === 'object' && 'message' in e) {
      return {
        name: cap(String(e.name || 'Error'), 200),
        message: cap(String(e.message), 4000),
        stack: typeof e.stack === 'string' ? cap(e.stack, 4000) : null,
      };
    }
    return { name: 'Error', message: 'Uncaught ' + text(e), stack: null };
  }

  function runExec(msg) {
    const limit = msg.timeout_ms > 0 ? Math.min(+msg.timeout_ms, 600000) : 5000;
    let settled = false;
    let timer = 0;
    const reply = (ok, v) => {
      if (settled) return;
      settled = true;
      clearT(timer);
      locked(() => {
        const out = { type: 'exec_result', id: msg.id, page_id: core.page_id, ok };
        if (ok) out.value = ser(v);
        else out.error = errorInfo(v);
        sendSocket(stringify(out));
      }, []);
    };
    timer = setT(() => reply(false, {
      name: 'TimeoutError', message: 'exec did not settle within ' + limit + ' ms', stack: null,
    }), limit);
    let result;
    try {
      result = geval(String(msg.code));
    } catch (e) {
      return reply(false, e instanceof EvalError ? {
        name: 'EvalError',
        message: "the page's Content-Security-Policy does not allow 'unsafe-eval', so exec cannot run code in it (" + e.message + ')',
        stack: null,
      } : e);
    }
    NPromise.resolve(result).then((v) => reply(true, v), (e) => reply(false, e));
  }

  handlers.exec = (msg) => {
    NPromise.resolve().then(() => {
      try {
        runExec(msg);
      } catch (e) { /* never into the page */ }
    });
  };

  // ---- the global

  const api = Object.freeze({
    version: 1,
    get page_id() { return core.page_id; },
    emit(kind, data) { // a custom event from app code
      guard(() => push(cap(String(kind), 100), ser(data)));
    },
  });
  try {
    // Not enumerable, so leak checks in the app's own tests do not see it.
    Object.defineProperty(window, '__rsproxy', { value: api, enumerable: false, writable: false, configurable: false });
  } catch (e) {
    return; // unmarked, a second copy would patch everything again
  }

  // ---- collectors

  // A wrapper reports its original's name and arity.
  function same(patched, orig) {
    Object.defineProperty(patched, 'name', { value: orig.name });
    Object.defineProperty(patched, 'length', { value: orig.length });
  }

  // A global for the page's libraries to find (the devtools hooks below), put on Window.prototype
  // so that window itself still has __rsproxy as its only own addition (leak checks in the app's
  // tests look there); the page can still assign its own, which then shadows ours. Nowhere to
  // put it (not a browser window): not installed.
  function defineGlobal(key, value) {
    const proto = Object.getPrototypeOf(window);
    if (!proto || proto === Object.prototype) throw 0;
    Object.defineProperty(proto, key, { value, configurable: true, writable: true, enumerable: false });
  }

  collector('page', (core) => {
    const view = (navigation) => core.push('page_view', {
      url: loc.href, title: document.title, referrer: document.referrer, navigation,
    });
    // The title is known once the head is parsed.
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', () => core.guard(view, 'load'), { once: true });
    } else {
      core.guard(view, 'load');
    }
    window.addEventListener('pageshow', (ev) => ev.persisted && core.guard(view, 'bfcache'));

    // SPA routes: a URL change by pushState, replaceState or Back/Forward (popstate, which
    // fragment navigations fire too) starts a new page view with a new page_id.
    let last = loc.href;
    const route = (navigation) => {
      if (loc.href === last) return;
      const referrer = last;
      const previous = core.page_id;
      last = loc.href;
      core.page_id = randomId();
      core.push('page_view', {
        url: last, title: document.title, referrer, navigation, previous_page_id: previous,
      });
    };
    const hist = window.history;
    for (const [name, navigation] of [['pushState', 'push'], ['replaceState', 'replace']]) {
      const orig = hist[name];
      if (typeof orig !== 'function') continue;
      const patched = function () {
        const r = Reflect.apply(orig, this, arguments);
        core.guard(route, navigation);
        return r;
      };
      try {
        same(patched, orig);
        hist[name] = patched;
      } catch (e) { /* left alone */ }
    }
    window.addEventListener('popstate', () => core.guard(route, 'pop'));
  });

  collector('console', (core) => {
    const con = window.console;
    function record(level, args) {
      const ctx = { seen: new WeakSet(), left: 1000, quiet: true };
      const vals = Array.from(args, (a) => core.ser(a, ctx));
      const data = { level, message: format(args, vals), args: vals.slice(0, 20) };
      if (vals.length > 20) data.args.push('…+' + (vals.length - 20));
      if (level === 'warn' || level === 'error') {
        const stack = callerStack();
        if (stack !== undefined) data.stack = stack;
      }
      core.push('console', data);
    }
    for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
      const orig = con[level];
      if (typeof orig !== 'function') continue;
      const patched = function () {
        core.guard(record, level, arguments);
        return Reflect.apply(orig, this, arguments);
      };
      try {
        same(patched, orig);
        con[level] = patched;
      } catch (e) { /* a frozen console stays as it is */ }
    }
  });

  collector('errors', (core) => {
    const stackOf = (e) => (e && typeof e.stack === 'string' ? cap(e.stack, 4000) : null);
    window.addEventListener('error', (ev) => core.guard(() => {
      // A failed <img>/<script> load fires 'error' at its element; it is not an exception.
      if (ev.target && ev.target !== window) return;
      core.push('error', {
        type: 'error',
        message: cap(String(ev.message || (ev.error === undefined ? '' : core.text(ev.error))), 4000),
        source: ev.filename || null,
        line: ev.lineno || null,
        column: ev.colno || null,
        stack: stackOf(ev.error),
      });
    }));
    window.addEventListener('unhandledrejection', (ev) => core.guard(() => {
      core.push('error', {
        type: 'unhandledrejection',
        message: core.text(ev.reason),
        source: null,
        line: null,
        column: null,
        stack: stackOf(ev.reason),
      });
    }));
  });

  // GraphQL document stats from a small tokenizer. Fields are counted in every selection set,
  // fragments' included; a field's depth is its selection-set nesting (1 = top level); depth is
  // the deepest field and complexity the sum of all fields' depths (nesting costs more than
  // breadth). Arguments, variables and directives are skipped.
  function gqlStats(src, opName) {
    const toks = (src.match(/#[^\n\r]*|"""[\s\S]*?"""|"(?:\\.|[^"\\\n])*"|\.\.\.|[_A-Za-z]\w*|[^\s,]/g) || [])
      .filter((t) => t[0] !== '#' && t[0] !== '"');
    const ops = [];
    let d = 0;
    let paren = 0;
    let fields = 0;
    let depth = 0;
    let complexity = 0;
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i];
      if (t === '(') paren++;
      else if (t === ')') paren--;
      else if (paren > 0) continue;
      else if (t === '{') d++;
      else if (t === '}') d--;
      else if (t === '...') {
        if (toks[i + 1] === 'on') i += 2; // inline fragment's type condition
        else if (/^\w/.test(toks[i + 1])) i++; // fragment spread
      } else if (t === '@' || t === '$') i++;
      else if (!/^[_A-Za-z]/.test(t)) continue;
      else if (d > 0) {
        if (toks[i + 1] === ':') continue; // an alias; the field name follows
        fields++;
        complexity += d;
        if (d > depth) depth = d;
      } else if (/^(query|mutation|subscription)$/.test(t) && (!i || toks[i - 1] === '}')) {
        ops.push({ type: t, name: /^[_A-Za-z]/.test(toks[i + 1]) ? toks[i + 1] : null });
      }
    }
    const op = ops.filter((o) => opName && o.name === opName)[0] || ops[0] || { type: 'query', name: null };
    return {
      operation_name: (typeof opName === 'string' && opName) || op.name,
      operation_type: op.type,
      field_count: fields,
      depth,
      complexity,
    };
  }

  collector('network', (core) => {
    const RID = 'x-rsproxy-request-id';
    const CAP = 2000;
    const perf = window.performance;
    const clock = () => perf.now();
    const since = (t) => Math.round((clock() - t) * 10) / 10;
    const enc = new TextEncoder();
    const textual = (ct) => /json|^\s*text\//i.test(ct || '');
    let seq = 0;

    // The call as it starts: null for the probe's own paths. Same-origin calls get a request
    // id; cross-origin ones never do, since a custom header would need a CORS preflight.
    // Apps call the same few URLs again and again, and parsing one costs more than the rest of
    // begin(), so parses are kept per (base, url), a bounded number of them.
    const parsed = new Map();
    function parse(url) {
      const base = document.baseURI;
      const key = base + ' ' + url;
      let p = parsed.get(key);
      if (!p) {
        const u = new URL(url, base);
        const same = u.origin === loc.origin && u.origin !== 'null';
        p = { href: u.href, same, own: same && u.pathname.indexOf('/__rsproxy/') === 0, query: null };
        if (u.search.indexOf('query=') >= 0 && u.searchParams.get('query')) {
          p.query = { query: u.searchParams.get('query'), operationName: u.searchParams.get('operationName') };
        }
        if (parsed.size >= 500) parsed.clear();
        parsed.set(key, p);
      }
      return p;
    }

    function begin(initiator, url, method, body, ctype) {
      const u = parse(url);
      if (u.own) return null;
      const rec = {
        initiator, method: String(method || 'GET').toUpperCase(), url: u.href, t0: clock(),
        page_id: core.page_id, ttfb: null, gql: [],
      };
      if (u.same) rec.request_id = core.page_id + '-' + ++seq;
      let s;
      if (typeof body === 'string') s = body;
      else if (body instanceof URLSearchParams) s = String(body);
      else if (body instanceof Blob) rec.request_size = body.size;
      else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) rec.request_size = body.byteLength;
      if (s !== undefined) {
        rec.request_size = enc.encode(s).length;
        if (textual(ctype || 'text/plain')) rec.request_body = cap(s, CAP);
      }
      let ops = [];
      if (rec.method === 'GET' && u.query) {
        ops = [u.query];
      } else if (s && /^\s*[[{]/.test(s)) {
        try {
          const j = JSON.parse(s);
          ops = Array.isArray(j) ? j : [j];
        } catch (e) { /* not JSON */ }
      }
      for (const o of ops.slice(0, 20)) {
        if (o && typeof o.query === 'string') rec.gql.push(gqlStats(o.query, o.operationName));
      }
      return rec;
    }

    // r: status, ok, error, aborted, ctype, size, text (the response body), full (text is all
    // of it), value (the body parsed as JSON), duration (when not the time until now).
    function finish(rec, r) {
      const data = {
        initiator: rec.initiator, method: rec.method, url: rec.url, status: r.status, ok: r.ok,
        ttfb_ms: rec.ttfb, duration_ms: r.duration === undefined ? since(rec.t0) : r.duration, request_size: rec.request_size === undefined ? null : rec.request_size,
        response_size: r.size === undefined || r.size === null || isNaN(r.size) ? null : +r.size,
        error: r.error || null, aborted: !!r.aborted,
      };
      if (rec.request_id) data.request_id = rec.request_id;
      if (rec.request_body !== undefined) data.request_body = rec.request_body;
      if (r.text !== undefined && textual(r.ctype)) data.response_body = cap(r.text, CAP);
      core.push('resource', data, rec.page_id);
      let reply = null;
      if (rec.gql.length && r.full && /json/i.test(r.ctype)) {
        try {
          reply = r.value !== undefined ? r.value : JSON.parse(r.text);
        } catch (e) { /* not JSON */ }
      }
      rec.gql.forEach((g, i) => {
        const out = Object.assign({}, g, {
          initiator: rec.initiator, method: rec.method, url: rec.url, status: r.status, ok: r.ok,
          duration_ms: data.duration_ms, error: data.error,
        });
        if (rec.request_id) out.request_id = rec.request_id;
        const one = Array.isArray(reply) ? reply[i] : reply;
        if (one && typeof one === 'object') out.errors = Array.isArray(one.errors) ? one.errors.length : 0;
        core.push('graphql', out, rec.page_id);
      });
    }

    const failure = (e) => (e && e.name === 'AbortError' ? 'abort' : e && e.name === 'TypeError' ? 'network' : cap(String(e && e.message || e), 500));

    // ---- fetch: the caller gets the same Response and the same rejection; the returned
    // promise is a new one so an unhandled rejection stays unhandled.
    // The probe never clones a Response (a clone costs Chromium about half a millisecond, five
    // times a whole in-memory fetch); it watches the page's own read of the body instead. A
    // call whose body the page starts to read as text or JSON within a task of the headers (as
    // `await (await fetch(u)).json()` does) is reported when that read ends, with the body;
    // any other (a stream, a blob, a body left unread) at once, from its headers.
    const origFetch = window.fetch;
    const awaiting = new WeakMap(); // Response -> [rec, r] until the page reads it or a task passes
    // A parsed JSON body back to text: a small one (by its Content-Length) as it is; any other
    // visiting about CAP nodes at most, since a replacer function makes stringify much slower.
    const bodyText = (v, size) => {
      if (size !== null && size <= CAP) return stringify(v);
      let budget = CAP;
      return stringify(v, (k, x) => (budget-- > 0 ? x : undefined));
    };
    const Res = window.Response;
    if (typeof origFetch === 'function' && typeof Res === 'function') {
      for (const name of ['text', 'json']) {
        const orig = Res.prototype[name];
        if (typeof orig !== 'function') continue;
        const patched = function () {
          const p = Reflect.apply(orig, this, []); // text() and json() take no arguments
          const waiting = awaiting.get(this);
          if (!waiting) return p;
          awaiting.delete(this);
          const [rec, r] = waiting;
          r.duration = undefined; // timed to the end of the read
          return p.then((v) => {
            core.guard(() => {
              r.text = name === 'json' ? bodyText(v, r.size) : v;
              r.value = name === 'json' ? v : undefined;
              r.full = true;
              if (r.size === null) r.size = r.text.length;
              finish(rec, r);
            });
            return v;
          }, (e) => {
            core.guard(() => finish(rec, Object.assign(r, { error: failure(e), aborted: !!e && e.name === 'AbortError' })));
            throw e;
          });
        };
        try {
          same(patched, orig);
          Res.prototype[name] = patched;
        } catch (e) { /* left alone: bodies are then not reported */ }
      }
      const onResponse = (rec, res) => {
        rec.ttfb = since(rec.t0);
        const ct = res.headers.get('content-type') || '';
        const len = res.headers.get('content-length');
        const r = { status: res.status, ok: res.ok, ctype: ct, size: len === null ? null : +len };
        if (!res.body || !textual(ct) || /event-stream/i.test(ct) || res.bodyUsed) return finish(rec, r);
        awaiting.set(res, [rec, r]);
        r.duration = rec.ttfb; // unless the page reads the body
        unread.push(res);
        if (!unreadTimer) unreadTimer = setT(reportUnread, 20);
      };
      // The responses the page has not begun to read a task after their headers, every 20 ms
      // (one timer per response would cost more than all the rest).
      const unread = [];
      let unreadTimer = 0;
      const reportUnread = () => core.guard(() => {
        unreadTimer = 0;
        for (const res of unread.splice(0)) {
          const waiting = awaiting.get(res);
          if (waiting && awaiting.delete(res)) finish(waiting[0], waiting[1]);
        }
      });
      const patched = function (input, init) {
        let rec = null;
        let args = arguments;
        core.guard(() => {
          const isReq = typeof Request === 'function' && input instanceof Request;
          const opts = init === undefined || init === null ? {} : init;
          if (typeof opts !== 'object') return;
          const h = new Headers(opts.headers !== undefined ? opts.headers : isReq ? input.headers : undefined);
          rec = begin('fetch', isReq ? input.url : input, opts.method || (isReq ? input.method : 'GET'),
            opts.body, h.get('content-type'));
          if (rec && rec.request_id) {
            if (h.has(RID)) return void delete rec.request_id; // the app set its own
            h.set(RID, rec.request_id);
            // Every other option as the caller gave it; an init that is not a plain object (a
            // Request used as init) is inherited from rather than copied.
            const plain = Object.getPrototypeOf(opts) === Object.prototype;
            args = [input, plain ? Object.assign({}, opts, { headers: h }) : Object.create(opts, { headers: { value: h, enumerable: true } })];
          }
        });
        const p = Reflect.apply(origFetch, this, args);
        if (!rec) return p;
        return p.then((res) => {
          core.guard(onResponse, rec, res);
          return res;
        }, (e) => {
          core.guard(() => finish(rec, { status: 0, ok: false, error: failure(e), aborted: !!e && e.name === 'AbortError' }));
          throw e;
        });
      };
      same(patched, origFetch);
      window.fetch = patched;
    }

    // ---- XMLHttpRequest: open/send/setRequestHeader patched on the prototype; the probe
    // only adds listeners, so events and readyState are as before.
    const XHR = window.XMLHttpRequest;
    if (typeof XHR !== 'function') return;
    const proto = XHR.prototype;
    const state = new WeakMap(); // xhr -> {method, url, ctype, own (app's request id), rec}
    const hooked = new WeakSet();
    const origOpen = proto.open;
    const origSend = proto.send;
    const origSet = proto.setRequestHeader;

    const onEvent = function (ev) {
      const xhr = this;
      core.guard(() => {
        const st = state.get(xhr);
        const rec = st && st.rec;
        if (!rec) return;
        if (ev.type === 'readystatechange') {
          if (xhr.readyState === 2 && rec.ttfb === null) rec.ttfb = since(rec.t0);
          return;
        }
        if (ev.type !== 'loadend') return void (rec.end = ev.type);
        st.rec = null;
        const end = rec.end;
        const ct = xhr.getResponseHeader('content-type') || '';
        const r = {
          status: xhr.status, ok: xhr.status >= 200 && xhr.status < 300 && end === 'load', ctype: ct,
          error: end === 'load' ? null : end === 'error' ? 'network' : end, aborted: end === 'abort',
        };
        if (rec.ttfb === null && end === 'load') rec.ttfb = since(rec.t0);
        const type = xhr.responseType;
        let body;
        if (type === '' || type === 'text') body = xhr.responseText;
        else if (type === 'json' && xhr.response !== null) body = stringify(xhr.response);
        if (body !== undefined && end === 'load') {
          r.text = body;
          r.full = true;
          r.size = enc.encode(body).length;
        } else {
          r.size = xhr.getResponseHeader('content-length');
        }
        finish(rec, r);
      });
    };

    proto.open = function () {
      const r = Reflect.apply(origOpen, this, arguments);
      const args = arguments;
      core.guard(() => state.set(this, { method: args[0], url: String(args[1]), ctype: null, own: false, rec: null }));
      return r;
    };
    proto.setRequestHeader = function (name, value) {
      const r = Reflect.apply(origSet, this, arguments);
      core.guard(() => {
        const st = state.get(this);
        const k = String(name).toLowerCase();
        if (st && k === 'content-type') st.ctype = String(value);
        if (st && k === RID) st.own = true;
      });
      return r;
    };
    proto.send = function (body) {
      core.guard(() => {
        const st = state.get(this);
        if (!st || this.readyState !== 1 || st.rec) return;
        const rec = begin('xhr', st.url, st.method, body, st.ctype);
        if (!rec) return;
        if (rec.request_id) {
          try {
            if (st.own) throw 0;
            origSet.call(this, RID, rec.request_id);
          } catch (e) {
            delete rec.request_id;
          }
        }
        st.rec = rec;
        if (!hooked.has(this)) {
          hooked.add(this);
          for (const t of ['readystatechange', 'load', 'error', 'abort', 'timeout', 'loadend']) this.addEventListener(t, onEvent);
        }
      });
      return Reflect.apply(origSend, this, arguments);
    };
    same(proto.open, origOpen);
    same(proto.setRequestHeader, origSet);
    same(proto.send, origSend);
  });

  // ---- performance: web vitals, long tasks, a resource summary and large DOM insertions, from
  // PerformanceObserver (buffered, so entries from before the probe ran count too).

  const round1 = (x) => Math.round(x * 10) / 10;

  // fn(entries) for each batch of one entry type; null where the browser lacks the type, so
  // one missing type leaves the rest of a collector working.
  function observe(type, fn, opts) {
    const PO = window.PerformanceObserver;
    try {
      if (!PO || (PO.supportedEntryTypes || []).indexOf(type) < 0) return null;
      const po = new PO((list) => guard(fn, list.getEntries()));
      po.observe(Object.assign({ type, buffered: true }, opts));
      return po;
    } catch (e) {
      return null;
    }
  }

  // "tag#id.class" for an element, with its parent's the same way: "body > ul#list".
  function describe(el) {
    const one = (e) => {
      if (!e || e.nodeType !== 1) return e && e.nodeName ? e.nodeName.toLowerCase() : '?';
      let s = e.nodeName.toLowerCase() + (e.id ? '#' + e.id : '');
      if (typeof e.className === 'string' && e.className.trim()) s += '.' + e.className.trim().split(/\s+/).slice(0, 2).join('.');
      return s;
    };
    return cap((el && el.parentNode && el.parentNode.nodeType === 1 ? one(el.parentNode) + ' > ' : '') + one(el), 200);
  }

  collector('vitals', (core) => {
    // Thresholds (good, poor) of the web-vitals library.
    const LIMITS = { LCP: [2500, 4000], CLS: [0.1, 0.25], INP: [200, 500], FCP: [1800, 3000], TTFB: [800, 1800] };
    const pageId = core.page_id; // the vitals are the document's, which began with this view
    const sent = Object.create(null); // name -> last value reported
    const report = (name, value) => {
      value = name === 'CLS' ? Math.round(value * 1e4) / 1e4 : round1(value);
      if (sent[name] === value) return;
      sent[name] = value;
      const t = LIMITS[name];
      const rating = value <= t[0] ? 'good' : value <= t[1] ? 'needs-improvement' : 'poor';
      core.push('vital', { name, value, rating }, pageId);
    };

    observe('paint', (es) => es.forEach((e) => e.name === 'first-contentful-paint' && report('FCP', e.startTime)));
    observe('navigation', (es) => es.forEach((e) => e.responseStart > 0 && report('TTFB', e.responseStart)));

    let lcp = -1;
    observe('largest-contentful-paint', (es) => es.forEach((e) => { lcp = e.startTime; }));

    // CLS: shifts not caused by input, in session windows (gaps under 1 s, at most 5 s long);
    // the value is the largest window's sum, 0 if nothing shifted.
    let cls = -1;
    let sum = 0;
    let first = 0;
    let prev = 0;
    if (observe('layout-shift', (es) => es.forEach((e) => {
      if (e.hadRecentInput) return;
      if (sum && e.startTime - prev < 1000 && e.startTime - first < 5000) {
        sum += e.value;
      } else {
        sum = e.value;
        first = e.startTime;
      }
      prev = e.startTime;
      if (sum > cls) cls = sum;
    }))) cls = Math.max(cls, 0);

    // INP: each interaction's longest event; the worst one, or the 98th percentile when there
    // are 50 or more.
    const inter = new Map();
    const onEvents = (es) => es.forEach((e) => {
      if (e.interactionId) inter.set(e.interactionId, Math.max(inter.get(e.interactionId) || 0, e.duration));
    });
    observe('event', onEvents, { durationThreshold: 40 });
    observe('first-input', onEvents);

    const onHide = () => guard(() => {
      if (lcp >= 0) report('LCP', lcp);
      if (cls >= 0) report('CLS', cls);
      const d = Array.from(inter.values()).sort((a, b) => b - a);
      if (d.length) report('INP', d[Math.min(d.length - 1, Math.floor(d.length / 50))]);
    });
    // Registered before the transport's own listeners, so these are in the last beacon.
    document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && onHide());
    window.addEventListener('pagehide', onHide);
  });

  collector('long_tasks', (core) => {
    observe('longtask', (es) => es.forEach((e) => core.push('long_task', {
      duration_ms: round1(e.duration), start_ms: round1(e.startTime),
    })));
  });

  // One summary of the page's resources, 2 s after load.
  collector('resources', (core) => {
    const list = [];
    const pageId = core.page_id;
    const po = observe('resource', (es) => es.forEach((e) => {
      if (e.name.indexOf(loc.origin + '/__rsproxy/') !== 0) list.push(e);
    }));
    if (!po) return;
    const summary = () => guard(() => {
      po.disconnect();
      const byType = Object.create(null);
      let bytes = 0;
      for (const e of list) {
        byType[e.initiatorType || 'other'] = (byType[e.initiatorType || 'other'] || 0) + 1;
        bytes += e.transferSize || 0;
      }
      const slowest = list.slice().sort((a, b) => b.duration - a.duration).slice(0, 5)
        .map((e) => ({ url: cap(e.name, 500), duration_ms: round1(e.duration) }));
      core.push('resource', { initiator: 'summary', count: list.length, by_type: byType, transfer_bytes: bytes, slowest }, pageId);
      list.length = 0;
    });
    const later = () => setT(summary, 2000);
    if (document.readyState === 'complete') later();
    else window.addEventListener('load', later, { once: true });
  });

  // A MutationObserver batch that adds more than 500 nodes (descendants included).
  collector('dom_mutation', (core) => {
    const MO = window.MutationObserver;
    if (!MO) return;
    new MO((records) => guard(() => {
      let total = 0;
      let most = 0;
      let target = null;
      for (const r of records) {
        let n = 0;
        for (const node of r.addedNodes) n += 1 + (node.nodeType === 1 ? node.getElementsByTagName('*').length : 0);
        total += n;
        if (n > most) {
          most = n;
          target = r.target;
        }
      }
      if (total > 500) core.push('dom_mutation', { added_nodes: total, target: describe(target) });
    })).observe(document, { childList: true, subtree: true });
  });

  // ---- tracking: Google Tag Manager's dataLayer.push and gtag(), wrapped when the page has
  // them at load, DOMContentLoaded or the load event (and again if the page replaced them).
  collector('tracking', (core) => {
    const mine = new WeakSet(); // the probe's wrappers
    let inGtag = 0; // gtag() pushes its arguments to the dataLayer: reported once, as gtag
    const report = (api, event, params) => core.push('tracking', {
      api, event: event === undefined || event === null ? null : cap(String(event), 200), params: core.ser(params),
    });
    // gtag('event', name, params), or gtag(command, ...rest) for config/set/consent/js.
    const gtagCall = (args) => (args[0] === 'event'
      ? report('gtag', args[1], args[2])
      : report('gtag', args[0], Array.prototype.slice.call(args, 1)));
    const wrap = (obj, key, before) => {
      const orig = obj[key];
      if (typeof orig !== 'function' || mine.has(orig)) return;
      const patched = function () {
        core.guard(before, arguments);
        return Reflect.apply(orig, this, arguments);
      };
      same(patched, orig);
      mine.add(patched);
      obj[key] = patched;
    };
    const check = () => guard(() => {
      const dl = window.dataLayer;
      if (dl && typeof dl === 'object') {
        try {
          wrap(dl, 'push', (items) => {
            if (inGtag) return;
            for (const item of items) {
              if (Object.prototype.toString.call(item) === '[object Arguments]') {
                gtagCall(item);
              } else if (item && typeof item === 'object' && !Array.isArray(item)) {
                const params = Object.assign({}, item);
                delete params.event;
                report('dataLayer', item.event, params);
              } else {
                report('dataLayer', null, item);
              }
            }
          });
        } catch (e) { /* a frozen dataLayer stays as it is */ }
      }
      const orig = window.gtag;
      if (typeof orig !== 'function' || mine.has(orig)) return;
      const patched = function () {
        core.guard(gtagCall, arguments);
        inGtag++;
        try {
          return Reflect.apply(orig, this, arguments);
        } finally {
          inGtag--;
        }
      };
      same(patched, orig);
      mine.add(patched);
      window.gtag = patched;
    });
    check();
    document.addEventListener('DOMContentLoaded', check);
    window.addEventListener('load', check);
  });

  // ---- state stores: Redux (via __REDUX_DEVTOOLS_EXTENSION_COMPOSE__, as Redux Toolkit's
  // configureStore uses it) and Zustand's devtools middleware (via
  // __REDUX_DEVTOOLS_EXTENSION__.connect). Installed at probe start, before the app's bundle;
  // a real extension is wrapped, never replaced: what the app calls on it still reaches it.
  // Each action becomes a "state" event with the top-level keys it changed.
  collector('stores', (core) => {
    const w = window;
    const real = w.__REDUX_DEVTOOLS_EXTENSION__;
    const realCompose = w.__REDUX_DEVTOOLS_EXTENSION_COMPOSE__;
    const isObj = (v) => v !== null && typeof v === 'object';
    const diff = (a, b) => {
      const out = Object.create(null);
      if (!isObj(a) || !isObj(b)) {
        if (!Object.is(a, b)) out['*'] = { before: core.ser(a), after: core.ser(b) };
        return out;
      }
      let n = 0;
      for (const k of new Set(Object.keys(a).concat(Object.keys(b)))) {
        if (Object.is(a[k], b[k])) continue;
        if (++n > 20) {
          out['…'] = 'more';
          break;
        }
        out[k] = { before: core.ser(a[k]), after: core.ser(b[k]) };
      }
      return out;
    };
    const record = (library, store, action, before, after) => core.push('state', {
      library,
      store: cap(String(store), 200),
      action: cap(String(isObj(action) ? action.type : action), 200),
      diff: diff(before, after),
    });
    const nameOf = (o) => (isObj(o) && o.name ? o.name : 'redux');

    // An enhancer that reports each plain action dispatched to the store it makes.
    const enhancer = (opts) => (next) => function () {
      const store = next.apply(this, arguments);
      core.guard(() => {
        const dispatch = store.dispatch;
        const name = nameOf(opts);
        store.dispatch = function (action) {
          let before;
          core.guard(() => { before = store.getState(); });
          const r = Reflect.apply(dispatch, this, arguments);
          if (isObj(action) && action.type !== undefined) core.guard(() => record('redux', name, action, before, store.getState()));
          return r;
        };
        same(store.dispatch, dispatch);
      });
      return store;
    };
    const compose = (fns) => (fns.length ? fns.reduce((f, g) => function () { return f(g.apply(this, arguments)); }) : (x) => x);

    let composeHook;
    if (typeof realCompose === 'function') {
      // Ours goes outside the extension's enhancer, which lifts the store's state and actions.
      composeHook = function () {
        const args = Array.from(arguments);
        if (args.length === 1 && isObj(args[0])) {
          const c = realCompose.apply(this, arguments);
          if (typeof c !== 'function') return c;
          return function () { return compose([enhancer(args[0]), c.apply(this, arguments)]); };
        }
        if (!args.length) return realCompose.apply(this, arguments);
        return compose([enhancer({}), realCompose.apply(this, arguments)]);
      };
      same(composeHook, realCompose);
    } else {
      composeHook = function () {
        const args = Array.from(arguments);
        if (!args.length) return enhancer({});
        if (args.length === 1 && isObj(args[0])) return function () { return compose(Array.from(arguments).concat(enhancer(args[0]))); };
        return compose(args.concat(enhancer({})));
      };
    }

    // Zustand: connect(options) -> connection; init(state) then send(action, state) per set().
    const watch = (conn, opts) => {
      const store = opts && opts.name ? opts.name : 'zustand';
      let last;
      const out = Object.create(conn || null);
      out.init = function (state) {
        last = state;
        if (conn && typeof conn.init === 'function') return conn.init.apply(conn, arguments);
      };
      out.send = function (action, state) {
        core.guard(() => {
          const prev = last;
          last = state;
          record('zustand', store, action, prev, state);
        });
        if (conn && typeof conn.send === 'function') return conn.send.apply(conn, arguments);
      };
      if (!conn) {
        out.subscribe = () => () => {};
        out.unsubscribe = () => {};
        out.error = () => {};
      }
      return out;
    };

    let extHook;
    if (real && (typeof real === 'function' || isObj(real))) {
      const realConnect = real.connect;
      if (typeof realConnect === 'function') {
        try {
          real.connect = function (opts) {
            return watch(Reflect.apply(realConnect, this, arguments), opts);
          };
          same(real.connect, realConnect);
        } catch (e) { /* frozen: left alone */ }
      }
    } else {
      extHook = function (opts) { return enhancer(opts); };
      extHook.connect = (opts) => watch(null, opts);
      extHook.disconnect = () => {};
      extHook.send = () => {};
      extHook.listen = () => {};
      extHook.open = () => {};
      extHook.notifyErrors = () => {};
    }
    if (typeof realCompose === 'function') w.__REDUX_DEVTOOLS_EXTENSION_COMPOSE__ = composeHook;
    else defineGlobal('__REDUX_DEVTOOLS_EXTENSION_COMPOSE__', composeHook);
    if (extHook) defineGlobal('__REDUX_DEVTOOLS_EXTENSION__', extHook);
  });

  // ---- React renders, from __REACT_DEVTOOLS_GLOBAL_HOOK__ (a minimal hook is installed when
  // the page has none, before React loads; a real DevTools hook is wrapped). Each commit's
  // rendered function/class components are summed per component and reported at most every
  // 500 ms as a "render" event.
  collector('react', (core) => {
    const KEY = '__REACT_DEVTOOLS_GLOBAL_HOOK__';
    const MAX_FIBERS = 5000;
    const COMPONENT = { 0: 1, 1: 1, 11: 1, 14: 1, 15: 1 }; // function, class, forwardRef, memo
    const agg = new Map(); // name -> render stats of this window
    let timer = 0;

    const nameOf = (f) => {
      let t = f.type;
      if (t && f.tag === 14) t = t.type; // memo(Component)
      if (t && f.tag === 11) t = t.render || t; // forwardRef
      if (typeof t === 'function') return t.displayName || t.name || 'Anonymous';
      return (f.type && f.type.displayName) || 'Anonymous';
    };
    const shallow = (a, b) => { // changed keys, or null when one is not an object
      if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return null;
      const out = [];
      for (const k of new Set(Object.keys(a).concat(Object.keys(b)))) {
        if (!Object.is(a[k], b[k])) out.push(k);
      }
      return out;
    };
    const stateChanged = (f, p) => {
      if (f.tag === 1) return f.memoizedState !== p.memoizedState;
      // Hooks: only those with an update queue (useState, useReducer, useSyncExternalStore...)
      // hold state; effects and memos are rebuilt or kept and say nothing.
      let a = f.memoizedState;
      let b = p.memoizedState;
      for (let i = 0; a && b && i < 200; i++, a = a.next, b = b.next) {
        if (a.queue && !Object.is(a.memoizedState, b.memoizedState)) return true;
      }
      return false;
    };
    const contextChanged = (f, p) => {
      let a = f.dependencies && f.dependencies.firstContext;
      let b = p.dependencies && p.dependencies.firstContext;
      for (let i = 0; a && b && i < 100; i++, a = a.next, b = b.next) {
        if (!Object.is(a.memoizedValue, b.memoizedValue)) return true;
      }
      return false;
    };

    const report = () => guard(() => {
      timer = 0;
      for (const [component, s] of agg) {
        core.push('render', {
          component, renders: s.renders, actual_duration_ms: round1(s.ms), reasons: s.reasons,
          changed_props: Array.from(s.props).slice(0, 20), identical_props: s.same, commit_components: s.commit,
        });
      }
      agg.clear();
    });

    const onCommit = (root) => {
      const top = root && root.current;
      if (!top) return;
      const rendered = [];
      const stack = [top];
      let seen = 0;
      while (stack.length && seen++ < MAX_FIBERS) {
        const f = stack.pop();
        const p = f.alternate;
        if (COMPONENT[f.tag] && (p === null || (f.flags & 1))) rendered.push(f);
        // A subtree that did not render this commit keeps its old child list.
        if (f.sibling) stack.push(f.sibling);
        if (f.child && (p === null || f.child !== p.child || f === top)) stack.push(f.child);
      }
      for (const f of rendered) {
        const name = nameOf(f);
        let s = agg.get(name);
        if (!s) agg.set(name, s = { renders: 0, ms: 0, reasons: {}, props: new Set(), same: 0, commit: 0 });
        s.renders++;
        s.ms += f.actualDuration > 0 ? f.actualDuration : 0;
        s.commit = Math.max(s.commit, rendered.length);
        const p = f.alternate;
        let reason = 'mount';
        if (p) {
          const changed = f.memoizedProps === p.memoizedProps ? [] : shallow(f.memoizedProps, p.memoizedProps);
          if (changed && !changed.length) s.same++;
          if (changed === null || changed.length) {
            reason = 'props';
            if (changed) changed.forEach((k) => s.props.size < 50 && s.props.add(k));
          } else if (stateChanged(f, p)) reason = 'state';
          else if (contextChanged(f, p)) reason = 'context';
          else reason = 'parent';
        }
        s.reasons[reason] = (s.reasons[reason] || 0) + 1;
      }
      if (agg.size && !timer) timer = setT(report, 500);
    };

    const w = window;
    let hook = w[KEY];
    if (hook && typeof hook === 'object') {
      const orig = hook.onCommitFiberRoot;
      const patched = function (id, root) {
        guard(onCommit, root);
        if (typeof orig === 'function') return Reflect.apply(orig, this, arguments);
      };
      if (typeof orig === 'function') same(patched, orig);
      hook.onCommitFiberRoot = patched;
      return;
    }
    const noop = () => {};
    let ids = 0;
    hook = {
      supportsFiber: true,
      isDisabled: false,
      renderers: new Map(),
      inject(renderer) {
        const id = ++ids;
        hook.renderers.set(id, renderer);
        return id;
      },
      onCommitFiberRoot(id, root) { guard(onCommit, root); },
      onCommitFiberUnmount: noop,
      onPostCommitFiberRoot: noop,
      onScheduleFiberRoot: noop,
      setStrictMode: noop,
      checkDCE: noop,
      sub() { return noop; },
      on: noop,
      off: noop,
      emit: noop,
    };
    defineGlobal(KEY, hook);
  });

  try {
    startTransport();
  } catch (e) { /* events stay queued; the page is unaffected */ }
})();
