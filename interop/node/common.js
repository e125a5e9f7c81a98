// Shared helpers for the Node.js interop clients (see interop/SCENARIO.md):
// result lines, environment, TLS options, a wire-level field-table decoder
// that keeps every value's type tag, and the property/header fixtures.
'use strict';

const fs = require('node:fs');
const util = require('node:util');

// ---- results ----------------------------------------------------------------

let passed = 0;
let failed = 0;
let finished = false;

function ok(name) {
  if (finished) return;
  passed++;
  console.log(`ok   ${name}`);
}

function fail(name, why) {
  if (finished) return;
  failed++;
  const text = String(why).replace(/\s*\n\s*/g, ' | ');
  console.log(`FAIL ${name}: ${text}`);
}

class CheckError extends Error {}

function assert(cond, why) {
  if (!cond) throw new CheckError(why);
}

function show(v) {
  return util.inspect(v, { depth: 6, breakLength: Infinity, maxArrayLength: 20, maxStringLength: 200 });
}

function eq(actual, expected, what) {
  if (!util.isDeepStrictEqual(actual, expected)) {
    throw new CheckError(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

function errText(e) {
  if (e instanceof CheckError) return e.message;
  if (e && e.message) return e.message;
  return show(e);
}

// Run one check: it passes only if `fn` returns without throwing, within
// `timeoutMs`. Every `fn` asserts what it prints ok for.
async function check(name, fn, timeoutMs = 20000) {
  let timer;
  try {
    await Promise.race([
      Promise.resolve().then(fn),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new CheckError(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    ok(name);
    return true;
  } catch (e) {
    fail(name, errText(e));
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function summary() {
  if (finished) return;
  finished = true;
  console.log(`${passed} passed, ${failed} failed`);
}

// Print the summary and exit; non-zero if anything failed.
function finish() {
  summary();
  process.exit(failed === 0 ? 0 : 1);
}

// A global watchdog: whatever hangs, the program ends with a summary and a
// non-zero exit.
function globalTimeout(ms) {
  const t = setTimeout(() => {
    fail('global timeout', `the scenario did not finish within ${ms} ms`);
    summary();
    process.exit(1);
  }, ms);
  t.unref();
  process.on('unhandledRejection', (e) => {
    // Stray rejections of promises nobody awaits (e.g. a library's pending
    // call on a channel the broker closed) are not check results.
    if (process.env.WARREN_DEBUG) console.error('unhandled rejection:', e);
  });
}

// ---- environment --------------------------------------------------------------

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.log(`FAIL environment: ${name} is not set`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  return v;
}

const env = {
  host: process.env.WARREN_HOST || '127.0.0.1',
  get port() {
    return Number(need('WARREN_PORT'));
  },
  get tlsPort() {
    return Number(need('WARREN_TLS_PORT'));
  },
  get url() {
    return need('WARREN_URL');
  },
  get tlsUrl() {
    return `amqps://guest:guest@${this.host}:${this.tlsPort}/%2f`;
  },
  // The same credentials as WARREN_URL but a wrong password.
  get badUrl() {
    const u = new URL(this.url);
    u.password = 'wrong-password';
    return u.toString();
  },
};

// Verify the server against WARREN_CA, by the name `localhost`.
function tlsOptions() {
  return { ca: [fs.readFileSync(need('WARREN_CA'))], servername: 'localhost', rejectUnauthorized: true };
}

// ---- misc ------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new CheckError(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

// `promise`, or a rejection after ms.
function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new CheckError(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

// Every byte value 0..255.
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

function bigBody(size) {
  const b = Buffer.allocUnsafe(size);
  // Deterministic, non-repeating-at-256 pattern.
  let x = 0x12345678;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

// ---- a typed field-table decoder ---------------------------------------------------
//
// The libraries decode tables into plain JavaScript values, which loses the
// wire type (an 8-bit and a 32-bit integer are both `number`). To compare
// header types, each client hooks its library's table decoder and also runs
// this decoder over the very bytes the broker sent, attaching the result
// under the WIRE symbol. Each value becomes {t: tag, v: value}.

const WIRE = Symbol('wire-typed-table');

function decodeTypedTable(buf) {
  const out = {};
  let off = 0;
  while (off < buf.length) {
    const klen = buf.readUInt8(off);
    off += 1;
    const key = buf.toString('utf8', off, off + klen);
    off += klen;
    const [val, n] = decodeTypedValue(buf, off);
    off += n;
    out[key] = val;
  }
  return out;
}

function decodeTypedValue(buf, start) {
  let off = start;
  const t = String.fromCharCode(buf[off]);
  off += 1;
  let v;
  switch (t) {
    case 't':
      v = buf[off] !== 0;
      off += 1;
      break;
    case 'b':
      v = buf.readInt8(off);
      off += 1;
      break;
    case 'B':
      v = buf.readUInt8(off);
      off += 1;
      break;
    case 's':
      v = buf.readInt16BE(off);
      off += 2;
      break;
    case 'u':
      v = buf.readUInt16BE(off);
      off += 2;
      break;
    case 'I':
      v = buf.readInt32BE(off);
      off += 4;
      break;
    case 'i':
      v = buf.readUInt32BE(off);
      off += 4;
      break;
    case 'l':
      v = buf.readBigInt64BE(off);
      off += 8;
      break;
    case 'L':
      v = buf.readBigUInt64BE(off);
      off += 8;
      break;
    case 'f':
      v = buf.readFloatBE(off);
      off += 4;
      break;
    case 'd':
      v = buf.readDoubleBE(off);
      off += 8;
      break;
    case 'D':
      v = { places: buf.readUInt8(off), digits: buf.readUInt32BE(off + 1) };
      off += 5;
      break;
    case 'S':
    case 'x': {
      const len = buf.readUInt32BE(off);
      off += 4;
      v = Buffer.from(buf.subarray(off, off + len)); // a copy: frame buffers get reused
      off += len;
      break;
    }
    case 'T':
      v = buf.readBigUInt64BE(off);
      off += 8;
      break;
    case 'V':
      v = null;
      break;
    case 'F': {
      const len = buf.readUInt32BE(off);
      off += 4;
      v = decodeTypedTable(buf.subarray(off, off + len));
      off += len;
      break;
    }
    case 'A': {
      const len = buf.readUInt32BE(off);
      off += 4;
      const end = off + len;
      v = [];
      while (off < end) {
        const [item, n] = decodeTypedValue(buf, off);
        v.push(item);
        off += n;
      }
      break;
    }
    default:
      throw new Error(`unknown field type tag ${JSON.stringify(t)} (0x${buf[start].toString(16)})`);
  }
  return [{ t, v }, off - start];
}

// Typed value constructors for expectations.
const W = (t, v) => ({ t, v });
const WS = (s) => W('S', Buffer.from(s, 'utf8'));

// Compare a typed table received against the expected one; returns a list of
// differences (empty when equal).
function diffTyped(actual, expected, path = 'headers') {
  const diffs = [];
  const cmp = (a, e, p) => {
    if (!a) return diffs.push(`${p}: missing`);
    if (a.t !== e.t) return diffs.push(`${p}: type '${a.t}', expected '${e.t}' (value ${show(a.v)})`);
    if (e.t === 'F') return diffTable(a.v, e.v, p);
    if (e.t === 'A') {
      if (a.v.length !== e.v.length) return diffs.push(`${p}: array of ${a.v.length}, expected ${e.v.length}`);
      e.v.forEach((x, i) => cmp(a.v[i], x, `${p}[${i}]`));
      return;
    }
    if (!util.isDeepStrictEqual(a.v, e.v)) diffs.push(`${p}: value ${show(a.v)}, expected ${show(e.v)}`);
  };
  const diffTable = (a, e, p) => {
    for (const k of Object.keys(e)) cmp(a[k], e[k], `${p}.${k}`);
    for (const k of Object.keys(a)) if (!(k in e)) diffs.push(`${p}.${k}: unexpected (${show(a[k])})`);
  };
  diffTable(actual, expected, path);
  return diffs;
}

// ---- property fixtures ---------------------------------------------------------------

// Basic properties (seconds for the timestamp); libraries map these onto
// their own option names. cluster-id is missing: neither Node client can
// set it.
const PROPS = {
  contentType: 'application/octet-stream',
  contentEncoding: 'identity',
  deliveryMode: 2,
  priority: 7,
  correlationId: 'corr-42',
  replyTo: 'reply.queue',
  expiration: '3600000',
  messageId: 'msg-0001',
  timestamp: 1700000000,
  type: 'interop.test',
  userId: 'guest',
  appId: 'warren-interop-node',
};

module.exports = {
  ok,
  fail,
  check,
  assert,
  eq,
  show,
  errText,
  CheckError,
  summary,
  finish,
  globalTimeout,
  env,
  tlsOptions,
  sleep,
  waitFor,
  withTimeout,
  ALL_BYTES,
  bigBody,
  WIRE,
  decodeTypedTable,
  W,
  WS,
  diffTyped,
  PROPS,
};
