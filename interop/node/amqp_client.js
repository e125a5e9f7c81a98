// The interop scenario (interop/SCENARIO.md) with @cloudamqp/amqp-client
// (AMQPClient, over amqp:// and amqps://).
//
// Not expressible with amqp-client, so left out (see docs/compatibility.md):
//   - the cluster-id property: AMQPProperties has no clusterId.
//   - header field types 8- and 16-bit integers (signed or unsigned),
//     unsigned 32- and 64-bit integers and decimals: amqp-client encodes a
//     JavaScript number as a signed 32-bit 'I' or a signed 64-bit 'l' (a
//     bigint too), or as a float 'f' or double 'd', and has no decimal type.
'use strict';

const C = require('./common');
const { AMQPView } = require('@cloudamqp/amqp-client/amqp-view');
const { AMQPClient } = require('@cloudamqp/amqp-client');

const { check, assert, eq, env, W, WS, WIRE } = C;

// Every decoded table also carries its wire types (see common.js); the
// library's own decoded value is returned unchanged.
{
  const orig = AMQPView.prototype.getTable;
  AMQPView.prototype.getTable = function getTable(byteOffset, littleEndian) {
    const res = orig.call(this, byteOffset, littleEndian);
    const [table, len] = res;
    const bytes = Buffer.from(this.buffer, this.byteOffset + byteOffset + 4, len - 4);
    Object.defineProperty(table, WIRE, { value: C.decodeTypedTable(bytes), enumerable: false });
    return res;
  };
}

// ---- fixtures -----------------------------------------------------------------

const BYTES = [0, 1, 2, 127, 128, 254, 255];

// Every field type amqp-client can send.
const SEND_HEADERS = {
  bool: true,
  int32: -2000000000,
  int64: -1234567890123456789n,
  int64number: 2 ** 40,
  float: 1.5,
  double: 12345678901.25,
  longstr: 'long string \u2713',
  bytes: Buffer.from(BYTES),
  timestamp: new Date(1700000000 * 1000),
  void: null,
  table: { inner: 'x', n: 7, deeper: { flag: false } },
  array: ['a', 1, true, null, [2], { k: 'v' }],
};

const WIRE_HEADERS = {
  bool: W('t', true),
  int32: W('I', -2000000000),
  int64: W('l', -1234567890123456789n),
  int64number: W('l', 1099511627776n),
  float: W('f', 1.5),
  double: W('d', 12345678901.25),
  longstr: WS('long string \u2713'),
  bytes: W('x', Buffer.from(BYTES)),
  timestamp: W('T', 1700000000n),
  void: W('V', null),
  table: W('F', { inner: WS('x'), n: W('I', 7), deeper: W('F', { flag: W('t', false) }) }),
  array: W('A', [WS('a'), W('I', 1), W('t', true), W('V', null), W('A', [W('I', 2)]), W('F', { k: WS('v') })]),
};

// What amqp-client's decoder must hand the application (byte arrays are
// compared as Buffers).
const LIB_HEADERS = {
  bool: true,
  int32: -2000000000,
  int64: Number(-1234567890123456789n),
  int64number: 2 ** 40,
  float: 1.5,
  double: 12345678901.25,
  longstr: 'long string \u2713',
  bytes: Buffer.from(BYTES),
  timestamp: new Date(1700000000 * 1000),
  void: null,
  table: { inner: 'x', n: 7, deeper: { flag: false } },
  array: ['a', 1, true, null, [2], { k: 'v' }],
};

// ---- helpers ----------------------------------------------------------------------

// amqp-client reports a server close as "... closed: TEXT (CODE)".
function parseClose(e) {
  const m = /closed: ([\s\S]*) \((\d+)\)$/.exec((e && e.message) || '');
  return m ? { text: m[1], code: Number(m[2]) } : { text: undefined, code: undefined };
}

async function expectChannelError(promise, code, text, what) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert(err, `${what}: expected a ${code} channel error, but the call succeeded`);
  const got = parseClose(err);
  eq(got.code, code, `${what}: reply code (error: ${err.message})`);
  if (typeof text === 'string') eq(got.text, text, `${what}: reply text`);
  else assert(text.test(got.text || ''), `${what}: reply text ${JSON.stringify(got.text)} does not match ${text}`);
}

const buf = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const bodyString = (m) => buf(m.body).toString();

async function connect(url, tls) {
  const client = new AMQPClient(url, tls);
  client.onerror = () => {}; // errors are asserted on the failing calls
  await client.connect();
  return client;
}

// ---- the scenario -----------------------------------------------------------------

async function main() {
  C.globalTimeout(300000);
  const uniq = `amqp-client.${process.pid}`;
  const clients = [];
  const track = (c) => {
    clients.push(c);
    return c;
  };

  let conn;
  const channel = async (c = conn) => {
    assert(c, 'no connection (connect tcp failed)');
    const ch = await c.channel();
    ch.onerror = () => {}; // asserted on the failing call
    return ch;
  };
  const closeQuietly = async (ch) => {
    if (!ch || ch.closed) return;
    try {
      await C.withTimeout(ch.close(), 5000, 'channel.close-ok');
    } catch {
      /* already closed by the broker */
    }
  };
  const withChannel = async (fn, c) => {
    const ch = await channel(c);
    try {
      return await fn(ch);
    } finally {
      await closeQuietly(ch);
    }
  };
  const waitCount = async (ch, q, n, ms = 5000) => {
    const end = Date.now() + ms;
    for (;;) {
      const c = (await ch.queueDeclare(q, { passive: true })).messageCount;
      if (c >= n || Date.now() > end) return c;
      await C.sleep(10);
    }
  };
  const tempQueue = async (ch) => (await ch.queueDeclare('', { exclusive: true, autoDelete: false, durable: false })).name;
  const namedQueue = (ch, q, opts = {}) => ch.queueDeclare(q, { durable: false, autoDelete: false, exclusive: false, ...opts });

  // Everything published to q before this call, in order: a marker sent
  // last through the default exchange on the same channel comes after
  // anything routed earlier.
  const bodiesUntilMarker = async (ch, q) => {
    const marker = `marker-${Math.random().toString(36).slice(2)}`;
    await ch.basicPublish('', q, marker);
    const bodies = [];
    const end = Date.now() + 5000;
    for (;;) {
      const m = await ch.basicGet(q, { noAck: true });
      if (m === null) {
        assert(Date.now() < end, `queue ${q}: the marker never arrived (got ${C.show(bodies)})`);
        await C.sleep(10);
        continue;
      }
      const body = bodyString(m);
      if (body === marker) return bodies;
      bodies.push(body);
    }
  };

  // 1. connect
  await check('connect tcp', async () => {
    conn = track(await connect(env.url));
    assert(!conn.closed, 'connection not open');
    await withChannel(async (ch) => {
      await ch.exchangeDeclare('amq.direct', 'direct', { passive: true });
    });
  });

  await check('connect tls', async () => {
    const t = track(await connect(env.tlsUrl, C.tlsOptions()));
    assert(t.socket && t.socket.encrypted === true, 'the socket is not a TLS socket');
    assert(t.socket.authorized === true, `server certificate not verified: ${t.socket.authorizationError}`);
    await withChannel(async (ch) => {
      const q = await tempQueue(ch);
      await ch.basicPublish('', q, 'over tls');
      eq(await bodiesUntilMarker(ch, q), ['over tls'], 'body read back over TLS');
    }, t);
    await t.close();
  });

  // 2. exchanges
  const X = { direct: `${uniq}.direct`, fanout: `${uniq}.fanout`, topic: `${uniq}.topic`, headers: `${uniq}.headers` };
  await check('declare exchanges', () =>
    withChannel(async (ch) => {
      for (const [type, name] of Object.entries(X)) await ch.exchangeDeclare(name, type, { durable: false });
      for (const name of Object.values(X)) await ch.exchangeDeclare(name, '', { passive: true });
    }),
  );

  // 3. queues
  await check('declare queues', () =>
    withChannel(async (ch) => {
      const d = await namedQueue(ch, `${uniq}.durable`, { durable: true });
      eq(d, { name: `${uniq}.durable`, messageCount: 0, consumerCount: 0 }, 'durable declare-ok');
      const e = await namedQueue(ch, `${uniq}.exclusive`, { exclusive: true });
      eq(e.name, `${uniq}.exclusive`, 'exclusive declare-ok queue');
      const a = await namedQueue(ch, `${uniq}.autodelete`, { autoDelete: true });
      eq(a.name, `${uniq}.autodelete`, 'auto-delete declare-ok queue');
      const g = await ch.queueDeclare('', { exclusive: true, durable: false, autoDelete: false });
      assert(/^amq\.gen-.+/.test(g.name), `server-named queue is ${JSON.stringify(g.name)}`);
      for (const q of [d.name, e.name, a.name, g.name]) {
        const p = await ch.queueDeclare(q, { passive: true });
        eq(p.name, q, 'passive declare-ok queue');
      }
      await ch.queueDelete(d.name);
    }),
  );

  // 4. routing
  const declareBound = async (ch, exchange, type, bindings) => {
    await ch.exchangeDeclare(exchange, type, { durable: false });
    const names = [];
    for (const [suffix, key, args] of bindings) {
      const q = `${exchange}.${suffix}`;
      await namedQueue(ch, q, { exclusive: true });
      await ch.queuePurge(q);
      await ch.queueBind(q, exchange, key, args || {});
      names.push(q);
    }
    return names;
  };

  await check('route direct', () =>
    withChannel(async (ch) => {
      const [q1, q2] = await declareBound(ch, X.direct, 'direct', [
        ['q1', 'k1'],
        ['q2', 'k2'],
      ]);
      await ch.basicPublish(X.direct, 'k1', 'to k1');
      await ch.basicPublish(X.direct, 'k2', 'to k2');
      await ch.basicPublish(X.direct, 'k3', 'to nobody');
      eq(await bodiesUntilMarker(ch, q1), ['to k1'], `${q1} (key k1)`);
      eq(await bodiesUntilMarker(ch, q2), ['to k2'], `${q2} (key k2)`);
    }),
  );

  await check('route fanout', () =>
    withChannel(async (ch) => {
      const [q1, q2] = await declareBound(ch, X.fanout, 'fanout', [
        ['q1', ''],
        ['q2', 'ignored'],
      ]);
      await ch.basicPublish(X.fanout, 'any.key', 'fan');
      eq(await bodiesUntilMarker(ch, q1), ['fan'], q1);
      eq(await bodiesUntilMarker(ch, q2), ['fan'], q2);
    }),
  );

  await check('route topic', () =>
    withChannel(async (ch) => {
      const [qStar, qHash] = await declareBound(ch, X.topic, 'topic', [
        ['star', 'a.*.c'],
        ['hash', 'a.#'],
      ]);
      for (const key of ['a.b.c', 'a.b.b.c', 'a', 'a.c', 'x.b.c', 'a.b.c.d']) await ch.basicPublish(X.topic, key, key);
      eq(await bodiesUntilMarker(ch, qStar), ['a.b.c'], `${qStar} (a.*.c)`);
      eq(await bodiesUntilMarker(ch, qHash), ['a.b.c', 'a.b.b.c', 'a', 'a.c', 'a.b.c.d'], `${qHash} (a.#)`);
    }),
  );

  await check('route headers', () =>
    withChannel(async (ch) => {
      const [qAll, qAny] = await declareBound(ch, X.headers, 'headers', [
        ['all', '', { 'x-match': 'all', h1: 'v1', h2: 'v2' }],
        ['any', '', { 'x-match': 'any', h1: 'v1', h2: 'v2' }],
      ]);
      await ch.basicPublish(X.headers, '', 'both', { headers: { h1: 'v1', h2: 'v2', extra: 1 } });
      await ch.basicPublish(X.headers, '', 'h1 only', { headers: { h1: 'v1' } });
      await ch.basicPublish(X.headers, '', 'h2 wrong', { headers: { h1: 'v1', h2: 'nope' } });
      await ch.basicPublish(X.headers, '', 'none', { headers: { h3: 'v3' } });
      eq(await bodiesUntilMarker(ch, qAll), ['both'], `${qAll} (x-match all)`);
      eq(await bodiesUntilMarker(ch, qAny), ['both', 'h1 only', 'h2 wrong'], `${qAny} (x-match any)`);
    }),
  );

  // 5. bindings
  await check('exchange-to-exchange binding', () =>
    withChannel(async (ch) => {
      const e1 = `${uniq}.e1`;
      const e2 = `${uniq}.e2`;
      await ch.exchangeDeclare(e1, 'direct', { durable: false });
      await ch.exchangeDeclare(e2, 'fanout', { durable: false });
      await ch.exchangeBind(e2, e1, 'rk');
      const q = `${uniq}.e2e`;
      await namedQueue(ch, q, { exclusive: true });
      await ch.queueBind(q, e2, '');
      await ch.basicPublish(e1, 'rk', 'via e1');
      await ch.basicPublish(e1, 'other', 'unrouted');
      eq(await bodiesUntilMarker(ch, q), ['via e1'], 'queue behind e2 while bound');
      await ch.exchangeUnbind(e2, e1, 'rk');
      await ch.basicPublish(e1, 'rk', 'after unbind');
      eq(await bodiesUntilMarker(ch, q), [], 'queue behind e2 after exchange.unbind');
    }),
  );

  await check('queue unbind', () =>
    withChannel(async (ch) => {
      const q = `${uniq}.unbind`;
      await ch.exchangeDeclare(X.direct, 'direct', { durable: false });
      await namedQueue(ch, q, { exclusive: true });
      await ch.queueBind(q, X.direct, 'ub');
      await ch.basicPublish(X.direct, 'ub', 'bound');
      eq(await bodiesUntilMarker(ch, q), ['bound'], 'while bound');
      await ch.queueUnbind(q, X.direct, 'ub');
      await ch.basicPublish(X.direct, 'ub', 'after unbind');
      eq(await bodiesUntilMarker(ch, q), [], 'after queue.unbind');
    }),
  );

  // 6. properties
  await check('properties and headers round trip', () =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      const P = C.PROPS;
      // Compare inside the callback: decoded byte arrays are views of the
      // library's frame buffer.
      let resolve;
      const got = new Promise((r) => {
        resolve = r;
      });
      await ch.basicConsume(q, { noAck: true }, (m) => {
        try {
          const h = m.properties.headers;
          const libHeaders = h && { ...h, bytes: h.bytes instanceof Uint8Array ? Buffer.from(h.bytes) : h.bytes };
          resolve({ body: Buffer.from(m.body), props: { ...m.properties }, wire: h && h[WIRE], libHeaders });
        } catch (e) {
          resolve({ error: e });
        }
      });
      const sent = {
        contentType: P.contentType,
        contentEncoding: P.contentEncoding,
        headers: SEND_HEADERS,
        deliveryMode: P.deliveryMode,
        priority: P.priority,
        correlationId: P.correlationId,
        replyTo: P.replyTo,
        expiration: P.expiration,
        messageId: P.messageId,
        timestamp: new Date(P.timestamp * 1000),
        type: P.type,
        userId: P.userId,
        appId: P.appId,
      };
      await ch.basicPublish('', q, C.ALL_BYTES, sent);
      const m = await C.withTimeout(got, 5000, 'the delivery');
      if (m.error) throw m.error;
      assert(m.body.equals(C.ALL_BYTES), `body differs: ${C.show(m.body)}`);
      const { headers, ...props } = m.props;
      const { headers: _h, ...expected } = sent;
      eq(props, expected, 'properties');
      assert(m.wire, 'no headers table on the delivery');
      const diffs = C.diffTyped(m.wire, WIRE_HEADERS);
      assert(diffs.length === 0, `headers on the wire: ${diffs.join('; ')}`);
      eq(m.libHeaders, LIB_HEADERS, 'headers as decoded by amqp-client');
    }),
  );

  // 7. prefetch
  await check('prefetch honoured', () =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      for (let i = 0; i < 10; i++) await ch.basicPublish('', q, `p${i}`);
      eq(await waitCount(ch, q, 10), 10, 'messages waiting before consuming');
      await ch.basicQos(3);
      const got = [];
      await ch.basicConsume(q, { noAck: false }, (m) => got.push({ tag: m.deliveryTag, body: bodyString(m) }));
      await C.waitFor(() => got.length >= 3, 5000, '3 deliveries');
      await C.sleep(400);
      eq(got.length, 3, 'deliveries with none acknowledged (prefetch 3)');
      await ch.basicAck(got[0].tag);
      await C.waitFor(() => got.length >= 4, 5000, 'a 4th delivery after one ack');
      await C.sleep(400);
      eq(got.length, 4, 'deliveries after one ack');
      eq(
        got.map((m) => m.body),
        ['p0', 'p1', 'p2', 'p3'],
        'delivery order',
      );
    }),
  );

  // 8. basic.get
  await check('basic.get', () =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      for (const b of ['g1', 'g2', 'g3']) await ch.basicPublish('', q, b);
      eq(await waitCount(ch, q, 3), 3, 'messages in the queue');
      const m = await ch.basicGet(q, { noAck: false });
      assert(m, 'get-empty on a queue with three messages');
      eq([bodyString(m), m.messageCount, m.redelivered], ['g1', 2, false], 'get-ok body, message-count, redelivered');
      await ch.basicAck(m.deliveryTag);
      const m2 = await ch.basicGet(q, { noAck: true });
      eq([m2 && bodyString(m2), m2 && m2.messageCount], ['g2', 1], 'second get-ok body and message-count');
    }),
  );

  await check('basic.get empty', () =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      eq(await ch.basicGet(q, { noAck: true }), null, 'basic.get on an empty queue (get-empty)');
    }),
  );

  // 9. requeue
  const requeueCheck = (how) =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      await ch.basicPublish('', q, `${how} me`);
      eq(await waitCount(ch, q, 1), 1, 'messages in the queue');
      const m = await ch.basicGet(q, { noAck: false });
      assert(m, 'get-empty on a queue with one message');
      eq([bodyString(m), m.redelivered], [`${how} me`, false], 'first get: body, redelivered');
      if (how === 'reject') await ch.basicReject(m.deliveryTag, true);
      else await ch.basicNack(m.deliveryTag, true, false);
      const again = await ch.basicGet(q, { noAck: false });
      assert(again, `the message did not come back after basic.${how} requeue`);
      eq([bodyString(again), again.redelivered], [`${how} me`, true], 'after requeue: body, redelivered');
      await ch.basicAck(again.deliveryTag);
      eq(await ch.basicGet(q, { noAck: true }), null, 'queue after the ack');
    });
  await check('reject requeue', () => requeueCheck('reject'));
  await check('nack requeue', () => requeueCheck('nack'));

  // 10. confirms
  await check('publisher confirms', () =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      await ch.confirmSelect();
      const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => ch.basicPublish('', q, `c${i}`)));
      const acked = results.filter((r) => r.status === 'fulfilled').length;
      const problems = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
      eq({ acked, problems: [...new Set(problems)] }, { acked: 100, problems: [] }, 'confirms');
      eq((await ch.queueDeclare(q, { passive: true })).messageCount, 100, 'messages in the queue');
    }),
  );

  // 11. mandatory
  await check('mandatory return', () =>
    withChannel(async (ch) => {
      const key = `${uniq}.unbound.key`;
      const returned = new Promise((r) => {
        ch.onReturn = (m) => r({ m, body: bodyString(m) });
      });
      await ch.basicPublish('amq.direct', key, 'come back', { messageId: 'ret-1' }, true);
      const { m, body } = await C.withTimeout(returned, 5000, 'basic.return');
      eq([m.replyCode, m.replyText, m.exchange, m.routingKey], [312, 'NO_ROUTE', 'amq.direct', key], 'basic.return fields');
      eq([body, m.properties.messageId], ['come back', 'ret-1'], 'returned body and message-id');
    }),
  );

  // 12. transactions
  await check('tx commit', () =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      await withChannel(async (tx) => {
        await tx.txSelect();
        for (const b of ['t1', 't2', 't3']) await tx.basicPublish('', q, b);
        await C.sleep(300);
        eq((await ch.queueDeclare(q, { passive: true })).messageCount, 0, 'messages before commit');
        await tx.txCommit();
      });
      eq(await waitCount(ch, q, 3), 3, 'messages after commit');
      eq(await bodiesUntilMarker(ch, q), ['t1', 't2', 't3'], 'bodies after commit');
    }),
  );

  await check('tx rollback', () =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      await withChannel(async (tx) => {
        await tx.txSelect();
        for (const b of ['r1', 'r2']) await tx.basicPublish('', q, b);
        await tx.txRollback();
        // A commit after the rollback delivers only what came after it.
        await tx.basicPublish('', q, 'after rollback');
        await tx.txCommit();
      });
      eq(await waitCount(ch, q, 1), 1, 'messages after rollback and a later commit');
      await C.sleep(300);
      eq(await bodiesUntilMarker(ch, q), ['after rollback'], 'bodies');
    }),
  );

  // 13. purge
  await check('purge', () =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      for (let i = 0; i < 5; i++) await ch.basicPublish('', q, `x${i}`);
      eq(await waitCount(ch, q, 5), 5, 'messages before purge');
      eq(await ch.queuePurge(q), { messageCount: 5 }, 'purge-ok');
      eq((await ch.queueDeclare(q, { passive: true })).messageCount, 0, 'messages after purge');
    }),
  );

  // 14. conditional deletes
  const gone = (q) =>
    withChannel((ch) => expectChannelError(ch.queueDeclare(q, { passive: true }), 404, `NOT_FOUND - no queue '${q}' in vhost '/'`, 'queue after delete'));

  await check('delete if-unused', async () => {
    const q = `${uniq}.in-use`;
    await withChannel(async (holder) => {
      await namedQueue(holder, q);
      await holder.basicConsume(q, { noAck: true }, () => {});
      await withChannel((ch) =>
        expectChannelError(
          ch.queueDelete(q, { ifUnused: true }),
          406,
          `PRECONDITION_FAILED - queue '${q}' in vhost '/' in use`,
          'queue.delete if-unused',
        ),
      );
      await withChannel(async (ch) => {
        await ch.queueDeclare(q, { passive: true }); // still there
        eq(await ch.queueDelete(q), { messageCount: 0 }, 'plain delete: delete-ok');
      });
    });
    await gone(q);
  });

  await check('delete if-empty', async () => {
    const q = `${uniq}.not-empty`;
    await withChannel(async (ch) => {
      await namedQueue(ch, q);
      await ch.basicPublish('', q, 'keep');
      eq(await waitCount(ch, q, 1), 1, 'messages before delete');
      await expectChannelError(
        ch.queueDelete(q, { ifEmpty: true }),
        406,
        `PRECONDITION_FAILED - queue '${q}' in vhost '/' not empty`,
        'queue.delete if-empty',
      );
    });
    await withChannel(async (ch) => {
      eq((await ch.queueDeclare(q, { passive: true })).messageCount, 1, 'message still there');
      eq(await ch.queueDelete(q), { messageCount: 1 }, 'plain delete: delete-ok');
    });
    await gone(q);
  });

  // 15. error paths
  const newChannelWorks = (c) =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      await ch.basicPublish('', q, 'alive');
      eq(await bodiesUntilMarker(ch, q), ['alive'], 'new channel: publish and get');
    }, c);

  await check('406 on redeclare then new channel works', async () => {
    const q = `${uniq}.redeclare`;
    await withChannel(async (ch) => {
      await namedQueue(ch, q, { durable: false });
      await expectChannelError(
        namedQueue(ch, q, { durable: true }),
        406,
        `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '/': received 'true' but current is 'false'`,
        'queue.declare with another durable flag',
      );
    });
    await newChannelWorks();
  });

  await check('404 on passive declare then new channel works', async () => {
    const q = `${uniq}.no-such-queue`;
    await withChannel((ch) =>
      expectChannelError(ch.queueDeclare(q, { passive: true }), 404, `NOT_FOUND - no queue '${q}' in vhost '/'`, 'passive queue.declare'),
    );
    await newChannelWorks();
  });

  await check('405 on exclusive queue of another connection then new channel works', async () => {
    const q = `${uniq}.locked`;
    await withChannel((ch) => namedQueue(ch, q, { exclusive: true }));
    const other = track(await connect(env.url));
    try {
      const escaped = q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      await withChannel(
        (ch) =>
          expectChannelError(
            namedQueue(ch, q, { exclusive: true }),
            405,
            new RegExp(`^RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${escaped}' in vhost '/'`),
            'queue.declare of an exclusive queue from another connection',
          ),
        other,
      );
      await newChannelWorks(other);
    } finally {
      await other.close().catch(() => {});
    }
  });

  await check('403 on wrong password then new channel works', async () => {
    let err;
    try {
      const bad = track(await connect(env.badUrl));
      await bad.close().catch(() => {});
    } catch (e) {
      err = e;
    }
    assert(err, 'connecting with a wrong password succeeded');
    // amqp-client announces authentication_failure_close: connection.close 403.
    const got = parseClose(err);
    eq(got.code, 403, `reply code (error: ${err.message})`);
    assert(
      (got.text || '').startsWith('ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN'),
      `reply text: ${JSON.stringify(got.text)}`,
    );
    const good = track(await connect(env.url));
    await newChannelWorks(good);
    await good.close();
    await newChannelWorks();
  });

  // 16. 5 MiB
  await check(
    '5 MiB message',
    () =>
      withChannel(async (ch) => {
        const q = await tempQueue(ch);
        const body = C.bigBody(5 * 1024 * 1024);
        let resolve;
        const got = new Promise((r) => {
          resolve = r;
        });
        await ch.basicConsume(q, { noAck: true }, (m) => resolve(Buffer.from(m.body)));
        await ch.basicPublish('', q, body);
        const b = await C.withTimeout(got, 30000, 'the 5 MiB delivery');
        eq(b.length, body.length, 'body length');
        assert(b.equals(body), 'body differs');
      }),
    60000,
  );

  // 17. 500 channels
  await check(
    '500 channels',
    async () => {
      const q = `${uniq}.channels`;
      await withChannel((ch) => namedQueue(ch, q, { exclusive: true }));
      const chans = await Promise.all(Array.from({ length: 500 }, () => channel()));
      eq(new Set(chans.map((c) => c.id)).size, 500, 'distinct open channels');
      await Promise.all(chans.map((c, i) => c.basicPublish('', q, String(i))));
      await Promise.all(chans.map((c) => c.close()));
      await withChannel(async (ch) => {
        eq(await waitCount(ch, q, 500, 10000), 500, 'messages, one published on each channel');
        const seen = new Set();
        for (let m = await ch.basicGet(q); m; m = await ch.basicGet(q)) seen.add(bodyString(m));
        eq(seen.size, 500, 'distinct bodies');
      });
    },
    60000,
  );

  // 18. round robin
  await check('round-robin consumers', () =>
    withChannel(async (ch) => {
      const q = await tempQueue(ch);
      const counts = [0, 0, 0, 0];
      for (let i = 0; i < 4; i++) await ch.basicConsume(q, { noAck: true }, () => counts[i]++);
      await withChannel(async (pub) => {
        for (let i = 0; i < 40; i++) await pub.basicPublish('', q, `rr${i}`);
      });
      await C.waitFor(() => counts.reduce((a, b) => a + b) >= 40, 5000, '40 deliveries');
      await C.sleep(200);
      eq(counts, [10, 10, 10, 10], 'deliveries per consumer');
    }),
  );

  for (const c of clients.reverse()) {
    if (c.closed) continue;
    try {
      await C.withTimeout(c.close(), 5000, 'connection.close-ok');
    } catch {
      /* closed already */
    }
  }
  C.finish();
}

main().catch((e) => {
  C.fail('scenario', C.errText(e));
  C.finish();
});
