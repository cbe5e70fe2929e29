/*
 * rsproxy browser probe, injected by the proxy into every HTML page. It records page views,
 * console output and uncaught errors and streams them to the proxy over a WebSocket.
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

  // ---- core

  // busy is set while probe code runs. Page hooks entered meanwhile (an app that logs each
  // WebSocket send, a getter that logs while we serialize it) record nothing: no loops.
  let busy = false;
  const handlers = Object.create(null); // server message type -> fn(msg)

  const core = {
    version: 1,
    page_id: randomId(),
    hello: null, // the last {"type": "hello"} from the server
    collectors: [],
    push, // push(kind, data): queue an event; data must be plain JSON data already
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
  // current path (cycles); ctx.left bounds the total work on a huge graph.
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
            out[k] = ser(v[k], ctx, depth + 1);
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
      parts.push(args[0].replace(/%[sdifoOc]/g, (m) => {
        if (next >= args.length) return m;
        const i = next++;
        const a = args[i];
        if (m === '%c') return ''; // CSS
        if (m === '%f') return typeof a === 'symbol' ? 'NaN' : String(parseFloat(a));
        if (m === '%d' || m === '%i') return typeof a === 'symbol' ? 'NaN' : String(parseInt(a, 10));
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

  function push(kind, data) {
    queue.push({ kind, ts: now(), page_id: core.page_id, data });
    if (queue.length > MAX_QUEUE) {
      queue.shift();
      dropped++;
    }
    if (queue.length >= BATCH) flush();
    else if (!flushTimer && isOpen()) flushTimer = setT(flush, FLUSH_MS);
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

  // ---- the global

  const api = Object.freeze({
    version: 1,
    page_id: core.page_id,
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
  });

  collector('console', (core) => {
    const con = window.console;
    function record(level, args) {
      const ctx = { seen: new WeakSet(), left: 1000 };
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
        Object.defineProperty(patched, 'name', { value: orig.name });
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

  try {
    startTransport();
  } catch (e) { /* events stay queued; the page is unaffected */ }
})();
