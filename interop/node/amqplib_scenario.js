// The interop scenario (interop/SCENARIO.md) for amqplib. It is written once
// against a small promise-shaped interface; amqplib_callback.js and
// amqplib_promise.js each implement that interface with their own amqplib
// API (callback_api and the promise API), so every broker interaction goes
// through the API under test.
//
// Not expressible with amqplib, so left out (see docs/compatibility.md):
//   - `tx commit`, `tx rollback`: amqplib has no tx.select/commit/rollback.
//   - the cluster-id property: amqplib always sends it unset.
//   - unsigned 64-bit header values: amqplib has no encoding for them
//     (RabbitMQ's table types have none either).
'use strict';

const path = require('node:path');
const C = require('./common');

const { check, assert, eq, env, W, WS, WIRE } = C;

// Hook amqplib's field-table decoder before amqplib loads its codec users, so
// every decoded table also carries the wire types (see common.js). This only
// observes: amqplib's own decoded value is returned unchanged.
function installWireTap() {
  const codecPath = path.join(path.dirname(require.resolve('amqplib')), 'lib', 'codec.js');
  const codec = require(codecPath);
  if (codec.decodeFields.__wireTap) return;
  const orig = codec.decodeFields;
  const tapped = (slice) => {
    const fields = orig(slice);
    Object.defineProperty(fields, WIRE, { value: C.decodeTypedTable(slice), enumerable: false });
    return fields;
  };
  tapped.__wireTap = true;
  codec.decodeFields = tapped;
}

// ---- fixtures -----------------------------------------------------------------

// Every field type amqplib can send ('!' selects the wire type).
const SEND_HEADERS = {
  bool: true,
  int8: { '!': 'int8', value: -100 },
  uint8: { '!': 'uint8', value: 200 },
  int16: { '!': 'int16', value: -30000 },
  uint16: { '!': 'uint16', value: 60000 },
  int32: { '!': 'int32', value: -2000000000 },
  uint32: { '!': 'uint32', value: 4000000000 },
  int64: { '!': 'int64', value: -1234567890123456789n },
  float: { '!': 'float', value: 1.5 },
  double: 3.141592653589793,
  decimal: { '!': 'decimal', value: { places: 2, digits: 12345 } },
  longstr: 'long string \u2713',
  bytes: Buffer.from([0, 1, 2, 127, 128, 254, 255]),
  timestamp: { '!': 'timestamp', value: 1700000000 },
  void: null,
  table: { inner: 'x', n: { '!': 'int32', value: 7 }, deeper: { flag: false } },
  array: ['a', { '!': 'int32', value: 1 }, true, null, [{ '!': 'int16', value: 2 }], { k: 'v' }],
};

// What must come back on the wire: every value with its type tag.
const WIRE_HEADERS = {
  bool: W('t', true),
  int8: W('b', -100),
  uint8: W('B', 200),
  int16: W('s', -30000),
  uint16: W('u', 60000),
  int32: W('I', -2000000000),
  uint32: W('i', 4000000000),
  int64: W('l', -1234567890123456789n),
  float: W('f', 1.5),
  double: W('d', 3.141592653589793),
  decimal: W('D', { places: 2, digits: 12345 }),
  longstr: WS('long string \u2713'),
  bytes: W('x', Buffer.from([0, 1, 2, 127, 128, 254, 255])),
  timestamp: W('T', 1700000000n),
  void: W('V', null),
  table: W('F', { inner: WS('x'), n: W('I', 7), deeper: W('F', { flag: W('t', false) }) }),
  array: W('A', [WS('a'), W('I', 1), W('t', true), W('V', null), W('A', [W('s', 2)]), W('F', { k: WS('v') })]),
};

// What amqplib's decoder must hand the application.
const LIB_HEADERS = {
  bool: true,
  int8: -100,
  uint8: 200,
  int16: -30000,
  uint16: 60000,
  int32: -2000000000,
  uint32: 4000000000,
  int64: Number(-1234567890123456789n),
  float: 1.5,
  double: 3.141592653589793,
  decimal: { '!': 'decimal', value: { places: 2, digits: 12345 } },
  longstr: 'long string \u2713',
  bytes: Buffer.from([0, 1, 2, 127, 128, 254, 255]),
  timestamp: { '!': 'timestamp', value: 1700000000 },
  void: null,
  table: { inner: 'x', n: 7, deeper: { flag: false } },
  array: ['a', 1, true, null, [2], { k: 'v' }],
};

// ---- helpers ----------------------------------------------------------------------

// The reply text inside amqplib's error message: ... with message "TEXT"
function replyText(e) {
  const m = /with message "([\s\S]*)"$/.exec((e && e.message) || '');
  return m ? m[1] : undefined;
}

async function expectChannelError(promise, code, text, what) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert(err, `${what}: expected a ${code} channel error, but the call succeeded`);
  eq(err.code, code, `${what}: reply code (error: ${err.message})`);
  if (typeof text === 'string') eq(replyText(err), text, `${what}: reply text`);
  else assert(text.test(replyText(err) || ''), `${what}: reply text ${JSON.stringify(replyText(err))} does not match ${text}`);
}

// ---- the scenario -----------------------------------------------------------------

async function run(api) {
  C.globalTimeout(300000);
  const uniq = `${api.tag}.${process.pid}`;
  const conns = [];
  const track = (c) => {
    conns.push(c);
    return c;
  };

  let conn;
  const channel = async () => {
    assert(conn, 'no connection (connect tcp failed)');
    return api.createChannel(conn);
  };
  const closeQuietly = async (ch) => {
    if (!ch) return;
    try {
      await C.withTimeout(ch.close(), 5000, 'channel.close-ok');
    } catch {
      /* already closed by the broker, or closing: nothing to check here */
    }
  };
  // Run fn with a fresh channel, closed afterwards whatever happens.
  const withChannel = async (fn) => {
    const ch = await channel();
    try {
      return await fn(ch);
    } finally {
      await closeQuietly(ch);
    }
  };

  // Poll passive declares until q holds n messages (publishes are async).
  const waitCount = async (ch, q, n, ms = 5000) => {
    const end = Date.now() + ms;
    for (;;) {
      const c = (await ch.checkQueue(q)).messageCount;
      if (c >= n || Date.now() > end) return c;
      await C.sleep(10);
    }
  };

  // Everything published to q before this call, in order: a marker sent
  // last through the default exchange on the same channel arrives after
  // anything routed earlier, so no sleeping is needed to see "nothing".
  const bodiesUntilMarker = async (ch, q) => {
    const marker = `marker-${Math.random().toString(36).slice(2)}`;
    ch.sendToQueue(q, Buffer.from(marker));
    const bodies = [];
    const end = Date.now() + 5000;
    for (;;) {
      const m = await ch.get(q, { noAck: true });
      if (m === false) {
        assert(Date.now() < end, `queue ${q}: the marker never arrived (got ${C.show(bodies)})`);
        await C.sleep(10);
        continue;
      }
      const body = m.content.toString();
      if (body === marker) return bodies;
      bodies.push(body);
    }
  };

  // 1. connect
  await check('connect tcp', async () => {
    conn = track(await api.connect(env.url, {}));
    const props = api.serverProperties(conn);
    assert(props && typeof props === 'object', 'no server properties');
    assert(props.capabilities && props.capabilities.publisher_confirms === true, `capabilities: ${C.show(props.capabilities)}`);
    const ch = await channel();
    await ch.checkExchange('amq.direct');
    await ch.close();
  });

  await check('connect tls', async () => {
    const tconn = track(await api.connect(env.tlsUrl, C.tlsOptions()));
    const sock = api.socket(tconn);
    assert(sock && sock.encrypted === true, 'the socket is not a TLS socket');
    assert(sock.authorized === true, `server certificate not verified: ${sock.authorizationError}`);
    const ch = await api.createChannel(tconn);
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    ch.sendToQueue(q, Buffer.from('over tls'));
    const got = await bodiesUntilMarker(ch, q);
    eq(got, ['over tls'], 'body read back over TLS');
    await ch.close();
    await api.closeConnection(tconn);
  });

  // 2. exchanges
  const X = { direct: `${uniq}.direct`, fanout: `${uniq}.fanout`, topic: `${uniq}.topic`, headers: `${uniq}.headers` };
  await check('declare exchanges', () =>
    withChannel(async (ch) => {
      for (const [type, name] of Object.entries(X)) {
        const r = await ch.assertExchange(name, type, { durable: false, autoDelete: false });
        eq(r.exchange, name, `exchange.declare ${type}`);
      }
      // They exist: passive declares succeed (and a missing one would 404).
      for (const name of Object.values(X)) await ch.checkExchange(name);
    }),
  );

  // 3. queues
  await check('declare queues', () =>
    withChannel(async (ch) => {
      const durable = await ch.assertQueue(`${uniq}.durable`, { durable: true });
      eq([durable.queue, durable.messageCount, durable.consumerCount], [`${uniq}.durable`, 0, 0], 'durable declare-ok');
      const excl = await ch.assertQueue(`${uniq}.exclusive`, { exclusive: true, durable: false });
      eq(excl.queue, `${uniq}.exclusive`, 'exclusive declare-ok queue');
      const ad = await ch.assertQueue(`${uniq}.autodelete`, { autoDelete: true, durable: false });
      eq(ad.queue, `${uniq}.autodelete`, 'auto-delete declare-ok queue');
      const gen = await ch.assertQueue('', { exclusive: true });
      assert(/^amq\.gen-.+/.test(gen.queue), `server-named queue is ${JSON.stringify(gen.queue)}`);
      for (const q of [durable.queue, excl.queue, ad.queue, gen.queue]) {
        const p = await ch.checkQueue(q);
        eq(p.queue, q, 'passive declare-ok queue');
      }
      await ch.deleteQueue(durable.queue);
    }),
  );

  // 4. routing
  const declareBound = async (ch, exchange, type, bindings) => {
    await ch.assertExchange(exchange, type, { durable: false });
    const names = [];
    for (const [suffix, key, args] of bindings) {
      const q = `${exchange}.${suffix}`;
      await ch.assertQueue(q, { exclusive: true });
      await ch.purgeQueue(q);
      await ch.bindQueue(q, exchange, key, args);
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
      ch.publish(X.direct, 'k1', Buffer.from('to k1'));
      ch.publish(X.direct, 'k2', Buffer.from('to k2'));
      ch.publish(X.direct, 'k3', Buffer.from('to nobody'));
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
      ch.publish(X.fanout, 'any.key', Buffer.from('fan'));
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
      for (const key of ['a.b.c', 'a.b.b.c', 'a', 'a.c', 'x.b.c', 'a.b.c.d']) ch.publish(X.topic, key, Buffer.from(key));
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
      ch.publish(X.headers, '', Buffer.from('both'), { headers: { h1: 'v1', h2: 'v2', extra: 1 } });
      ch.publish(X.headers, '', Buffer.from('h1 only'), { headers: { h1: 'v1' } });
      ch.publish(X.headers, '', Buffer.from('h2 wrong'), { headers: { h1: 'v1', h2: 'nope' } });
      ch.publish(X.headers, '', Buffer.from('none'), { headers: { h3: 'v3' } });
      eq(await bodiesUntilMarker(ch, qAll), ['both'], `${qAll} (x-match all)`);
      eq(await bodiesUntilMarker(ch, qAny), ['both', 'h1 only', 'h2 wrong'], `${qAny} (x-match any)`);
    }),
  );

  // 5. bindings
  await check('exchange-to-exchange binding', () =>
    withChannel(async (ch) => {
      const e1 = `${uniq}.e1`;
      const e2 = `${uniq}.e2`;
      await ch.assertExchange(e1, 'direct', { durable: false });
      await ch.assertExchange(e2, 'fanout', { durable: false });
      await ch.bindExchange(e2, e1, 'rk');
      const q = `${uniq}.e2e`;
      await ch.assertQueue(q, { exclusive: true });
      await ch.bindQueue(q, e2, '');
      ch.publish(e1, 'rk', Buffer.from('via e1'));
      ch.publish(e1, 'other', Buffer.from('unrouted'));
      eq(await bodiesUntilMarker(ch, q), ['via e1'], 'queue behind e2 while bound');
      await ch.unbindExchange(e2, e1, 'rk');
      ch.publish(e1, 'rk', Buffer.from('after unbind'));
      eq(await bodiesUntilMarker(ch, q), [], 'queue behind e2 after exchange.unbind');
    }),
  );

  await check('queue unbind', () =>
    withChannel(async (ch) => {
      const q = `${uniq}.unbind`;
      await ch.assertExchange(X.direct, 'direct', { durable: false });
      await ch.assertQueue(q, { exclusive: true });
      await ch.bindQueue(q, X.direct, 'ub');
      ch.publish(X.direct, 'ub', Buffer.from('bound'));
      eq(await bodiesUntilMarker(ch, q), ['bound'], 'while bound');
      await ch.unbindQueue(q, X.direct, 'ub');
      ch.publish(X.direct, 'ub', Buffer.from('after unbind'));
      eq(await bodiesUntilMarker(ch, q), [], 'after queue.unbind');
    }),
  );

  // 6. properties
  await check('properties and headers round trip', () =>
    withChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      const P = C.PROPS;
      let resolve;
      const got = new Promise((r) => {
        resolve = r;
      });
      await ch.consume(q, (m) => resolve(m), { noAck: true });
      ch.sendToQueue(q, C.ALL_BYTES, {
        contentType: P.contentType,
        contentEncoding: P.contentEncoding,
        headers: SEND_HEADERS,
        deliveryMode: P.deliveryMode,
        priority: P.priority,
        correlationId: P.correlationId,
        replyTo: P.replyTo,
        expiration: P.expiration,
        messageId: P.messageId,
        timestamp: P.timestamp,
        type: P.type,
        userId: P.userId,
        appId: P.appId,
      });
      const m = await C.withTimeout(got, 5000, 'the delivery');
      assert(Buffer.compare(m.content, C.ALL_BYTES) === 0, `body differs: ${C.show(m.content)}`);
      const p = m.properties;
      const props = {};
      for (const k of [
        'contentType',
        'contentEncoding',
        'deliveryMode',
        'priority',
        'correlationId',
        'replyTo',
        'expiration',
        'messageId',
        'timestamp',
        'type',
        'userId',
        'appId',
        'clusterId',
      ])
        props[k] = p[k];
      const expected = { ...P, clusterId: undefined };
      eq(props, expected, 'properties');
      const wire = p.headers && p.headers[WIRE];
      assert(wire, 'no headers table on the delivery');
      const diffs = C.diffTyped(wire, WIRE_HEADERS);
      assert(diffs.length === 0, `headers on the wire: ${diffs.join('; ')}`);
      eq({ ...p.headers }, LIB_HEADERS, 'headers as decoded by amqplib');
    }),
  );

  // 7. prefetch
  await check('prefetch honoured', () =>
    withChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      for (let i = 0; i < 10; i++) ch.sendToQueue(q, Buffer.from(`p${i}`));
      eq(await waitCount(ch, q, 10), 10, 'messages waiting before consuming');
      await ch.prefetch(3);
      const got = [];
      await ch.consume(q, (m) => got.push(m), { noAck: false });
      await C.waitFor(() => got.length >= 3, 5000, '3 deliveries');
      await C.sleep(400);
      eq(got.length, 3, 'deliveries with none acknowledged (prefetch 3)');
      ch.ack(got[0]);
      await C.waitFor(() => got.length >= 4, 5000, 'a 4th delivery after one ack');
      await C.sleep(400);
      eq(got.length, 4, 'deliveries after one ack');
      eq(
        got.map((m) => m.content.toString()),
        ['p0', 'p1', 'p2', 'p3'],
        'delivery order',
      );
    }),
  );

  // 8. basic.get
  await check('basic.get', () =>
    withChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      for (const b of ['g1', 'g2', 'g3']) ch.sendToQueue(q, Buffer.from(b));
      eq(await waitCount(ch, q, 3), 3, 'messages in the queue');
      const m = await ch.get(q, { noAck: false });
      assert(m, 'get-empty on a queue with three messages');
      eq(m.content.toString(), 'g1', 'get-ok body');
      eq(m.fields.messageCount, 2, 'get-ok message-count');
      eq(m.fields.redelivered, false, 'get-ok redelivered');
      ch.ack(m);
      const m2 = await ch.get(q, { noAck: true });
      eq([m2 && m2.content.toString(), m2 && m2.fields.messageCount], ['g2', 1], 'second get-ok body and message-count');
    }),
  );

  await check('basic.get empty', () =>
    withChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      const m = await ch.get(q, { noAck: true });
      eq(m, false, 'basic.get on an empty queue (get-empty)');
    }),
  );

  // 9. requeue
  const requeueCheck = (how) =>
    withChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      ch.sendToQueue(q, Buffer.from(`${how} me`));
      eq(await waitCount(ch, q, 1), 1, 'messages in the queue');
      const m = await ch.get(q, { noAck: false });
      assert(m, 'get-empty on a queue with one message');
      eq([m.content.toString(), m.fields.redelivered], [`${how} me`, false], 'first get: body, redelivered');
      if (how === 'reject') ch.reject(m, true);
      else ch.nack(m, false, true);
      const again = await ch.get(q, { noAck: false });
      assert(again, `the message did not come back after basic.${how} requeue`);
      eq([again.content.toString(), again.fields.redelivered], [`${how} me`, true], 'after requeue: body, redelivered');
      ch.ack(again);
      const empty = await ch.get(q, { noAck: true });
      eq(empty, false, 'queue after the ack');
    });
  await check('reject requeue', () => requeueCheck('reject'));
  await check('nack requeue', () => requeueCheck('nack'));

  // 10. confirms
  await check('publisher confirms', async () => {
    const ch = await api.createConfirmChannel(conn);
    try {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      let acked = 0;
      let nacked = 0;
      const confirms = [];
      for (let i = 0; i < 100; i++) {
        confirms.push(
          ch.publishConfirmed('', q, Buffer.from(`c${i}`), {}).then(
            () => acked++,
            () => nacked++,
          ),
        );
      }
      await ch.waitForConfirms();
      await Promise.all(confirms);
      eq({ acked, nacked }, { acked: 100, nacked: 0 }, 'confirms');
      eq((await ch.checkQueue(q)).messageCount, 100, 'messages in the queue');
    } finally {
      await closeQuietly(ch);
    }
  });

  // 11. mandatory
  await check('mandatory return', () =>
    withChannel(async (ch) => {
      const key = `${uniq}.unbound.key`;
      const returned = new Promise((r) => ch.on('return', r));
      ch.publish('amq.direct', key, Buffer.from('come back'), { mandatory: true, messageId: 'ret-1' });
      const m = await C.withTimeout(returned, 5000, 'basic.return');
      eq(
        [m.fields.replyCode, m.fields.replyText, m.fields.exchange, m.fields.routingKey],
        [312, 'NO_ROUTE', 'amq.direct', key],
        'basic.return fields',
      );
      eq([m.content.toString(), m.properties.messageId], ['come back', 'ret-1'], 'returned body and message-id');
    }),
  );

  // 12. tx: not expressible with amqplib (no tx.* methods).

  // 13. purge
  await check('purge', () =>
    withChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      for (let i = 0; i < 5; i++) ch.sendToQueue(q, Buffer.from(`x${i}`));
      eq(await waitCount(ch, q, 5), 5, 'messages before purge');
      const r = await ch.purgeQueue(q);
      eq(r.messageCount, 5, 'purge-ok message-count');
      eq((await ch.checkQueue(q)).messageCount, 0, 'messages after purge');
    }),
  );

  // 14. conditional deletes
  await check('delete if-unused', async () => {
    const q = `${uniq}.in-use`;
    await withChannel(async (holder) => {
      await holder.assertQueue(q, { durable: false });
      await holder.consume(q, () => {}, { noAck: true });
      const ch = await channel();
      await expectChannelError(
        ch.deleteQueue(q, { ifUnused: true }),
        406,
        `PRECONDITION_FAILED - queue '${q}' in vhost '/' in use`,
        'queue.delete if-unused',
      );
      await closeQuietly(ch);
      await withChannel(async (ch2) => {
        await ch2.checkQueue(q); // still there
        const r = await ch2.deleteQueue(q);
        eq(r.messageCount, 0, 'plain delete: delete-ok message-count');
      });
    });
    await withChannel(async (ch) => expectChannelError(ch.checkQueue(q), 404, `NOT_FOUND - no queue '${q}' in vhost '/'`, 'queue after delete'));
  });

  await check('delete if-empty', async () => {
    const q = `${uniq}.not-empty`;
    await withChannel(async (ch) => {
      await ch.assertQueue(q, { durable: false });
      ch.sendToQueue(q, Buffer.from('keep'));
      eq(await waitCount(ch, q, 1), 1, 'messages before delete');
      await expectChannelError(
        ch.deleteQueue(q, { ifEmpty: true }),
        406,
        `PRECONDITION_FAILED - queue '${q}' in vhost '/' not empty`,
        'queue.delete if-empty',
      );
    });
    await withChannel(async (ch) => {
      eq((await ch.checkQueue(q)).messageCount, 1, 'message still there');
      const r = await ch.deleteQueue(q);
      eq(r.messageCount, 1, 'plain delete: delete-ok message-count');
    });
    await withChannel(async (ch) => expectChannelError(ch.checkQueue(q), 404, `NOT_FOUND - no queue '${q}' in vhost '/'`, 'queue after delete'));
  });

  // 15. error paths, each followed by a new channel that works
  const newChannelWorks = () =>
    withChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      ch.sendToQueue(q, Buffer.from('alive'));
      eq(await bodiesUntilMarker(ch, q), ['alive'], 'new channel: publish and get');
    });

  await check('406 on redeclare then new channel works', async () => {
    const q = `${uniq}.redeclare`;
    await withChannel(async (ch) => {
      await ch.assertQueue(q, { durable: false });
      await expectChannelError(
        ch.assertQueue(q, { durable: true }),
        406,
        `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '/': received 'true' but current is 'false'`,
        'queue.declare with another durable flag',
      );
    });
    await newChannelWorks();
  });

  await check('404 on passive declare then new channel works', async () => {
    const q = `${uniq}.no-such-queue`;
    await withChannel((ch) => expectChannelError(ch.checkQueue(q), 404, `NOT_FOUND - no queue '${q}' in vhost '/'`, 'passive queue.declare'));
    await newChannelWorks();
  });

  await check('405 on exclusive queue of another connection then new channel works', async () => {
    const q = `${uniq}.locked`;
    await withChannel(async (ch) => {
      await ch.assertQueue(q, { exclusive: true });
    });
    const other = track(await api.connect(env.url, {}));
    try {
      const escaped = q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const ch = await api.createChannel(other);
      await expectChannelError(
        ch.assertQueue(q, { exclusive: true }),
        405,
        new RegExp(`^RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${escaped}' in vhost '/'`),
        'queue.declare of an exclusive queue from another connection',
      );
      await closeQuietly(ch);
      const ch2 = await api.createChannel(other);
      const p = await ch2.assertQueue('', { exclusive: true });
      ch2.sendToQueue(p.queue, Buffer.from('alive'));
      eq(await bodiesUntilMarker(ch2, p.queue), ['alive'], 'new channel on the other connection');
      await ch2.close();
    } finally {
      await api.closeConnection(other).catch(() => {});
    }
  });

  await check('403 on wrong password then new channel works', async () => {
    let err;
    try {
      const bad = track(await api.connect(env.badUrl, {}));
      await api.closeConnection(bad).catch(() => {});
    } catch (e) {
      err = e;
    }
    assert(err, 'connecting with a wrong password succeeded');
    // amqplib announces authentication_failure_close, so the broker must
    // answer with connection.close 403 (amqplib: "Handshake terminated by server").
    assert(/Handshake terminated by server: 403 \(ACCESS-REFUSED\)/.test(err.message), `not a connection.close 403: ${err.message}`);
    assert(
      (replyText(err) || '').startsWith('ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN'),
      `reply text: ${JSON.stringify(replyText(err))}`,
    );
    // The broker still takes logins and channels.
    const good = track(await api.connect(env.url, {}));
    const ch = await api.createChannel(good);
    await ch.checkExchange('amq.direct');
    await ch.close();
    await api.closeConnection(good);
    await newChannelWorks();
  });

  // 16. 5 MiB
  await check(
    '5 MiB message',
    () =>
      withChannel(async (ch) => {
        const q = (await ch.assertQueue('', { exclusive: true })).queue;
        const body = C.bigBody(5 * 1024 * 1024);
        let resolve;
        const got = new Promise((r) => {
          resolve = r;
        });
        await ch.consume(q, resolve, { noAck: true });
        ch.sendToQueue(q, body);
        const m = await C.withTimeout(got, 30000, 'the 5 MiB delivery');
        eq(m.content.length, body.length, 'body length');
        assert(m.content.equals(body), 'body differs');
      }),
    60000,
  );

  // 17. 500 channels
  await check(
    '500 channels',
    async () => {
      const q = `${uniq}.channels`;
      await withChannel((ch) => ch.assertQueue(q, { exclusive: true }));
      const chans = await Promise.all(Array.from({ length: 500 }, () => channel()));
      const numbers = new Set(chans.map((c) => c.number));
      eq(numbers.size, 500, 'distinct open channels');
      chans.forEach((c, i) => c.sendToQueue(q, Buffer.from(String(i))));
      await Promise.all(chans.map((c) => c.close()));
      await withChannel(async (ch) => {
        eq(await waitCount(ch, q, 500, 10000), 500, 'messages, one published on each channel');
        const seen = new Set();
        for (let m = await ch.get(q, { noAck: true }); m; m = await ch.get(q, { noAck: true })) seen.add(m.content.toString());
        eq(seen.size, 500, 'distinct bodies');
      });
    },
    60000,
  );

  // 18. round robin
  await check('round-robin consumers', () =>
    withChannel(async (ch) => {
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      const counts = [0, 0, 0, 0];
      for (let i = 0; i < 4; i++) await ch.consume(q, () => counts[i]++, { noAck: true });
      await withChannel(async (pub) => {
        for (let i = 0; i < 40; i++) pub.sendToQueue(q, Buffer.from(`rr${i}`));
        await pub.checkQueue(q);
      });
      await C.waitFor(() => counts.reduce((a, b) => a + b) >= 40, 5000, '40 deliveries');
      await C.sleep(200);
      eq(counts, [10, 10, 10, 10], 'deliveries per consumer');
    }),
  );

  for (const c of conns.reverse()) {
    try {
      await C.withTimeout(api.closeConnection(c), 5000, 'connection.close-ok');
    } catch {
      /* closed already */
    }
  }
  C.finish();
}

function runSafely(api) {
  return run(api).catch((e) => {
    C.fail('scenario', C.errText(e));
    C.finish();
  });
}

module.exports = { run: runSafely, installWireTap };
