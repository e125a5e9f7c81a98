// The interop scenario with amqplib's callback API
// (require('amqplib/callback_api')). Each callback call is turned into a
// promise here, so the scenario can await it; the calls themselves go
// through the callback API.
'use strict';

const scenario = require('./amqplib_scenario');

scenario.installWireTap(); // before amqplib loads its codec users
const amqp = require('amqplib/callback_api');

// call(k => ch.method(..., k)): a promise of the callback's result.
const call = (fn) =>
  new Promise((resolve, reject) => {
    fn((err, ok) => (err ? reject(err) : resolve(ok)));
  });

function wrap(ch) {
  ch.on('error', () => {}); // channel errors are asserted on the failing call
  return {
    raw: ch,
    number: ch.ch,
    on: (ev, fn) => ch.on(ev, fn),
    close: () => call((k) => ch.close(k)),
    assertQueue: (q, o) => call((k) => ch.assertQueue(q, o, k)),
    checkQueue: (q) => call((k) => ch.checkQueue(q, k)),
    deleteQueue: (q, o) => call((k) => ch.deleteQueue(q, o, k)),
    purgeQueue: (q) => call((k) => ch.purgeQueue(q, k)),
    bindQueue: (q, x, rk, a) => call((k) => ch.bindQueue(q, x, rk, a, k)),
    unbindQueue: (q, x, rk, a) => call((k) => ch.unbindQueue(q, x, rk, a, k)),
    assertExchange: (x, t, o) => call((k) => ch.assertExchange(x, t, o, k)),
    checkExchange: (x) => call((k) => ch.checkExchange(x, k)),
    bindExchange: (d, s, rk, a) => call((k) => ch.bindExchange(d, s, rk, a, k)),
    unbindExchange: (d, s, rk, a) => call((k) => ch.unbindExchange(d, s, rk, a, k)),
    publish: (x, rk, b, o) => ch.publish(x, rk, b, o),
    sendToQueue: (q, b, o) => ch.sendToQueue(q, b, o),
    consume: (q, fn, o) => call((k) => ch.consume(q, fn, o, k)),
    cancel: (tag) => call((k) => ch.cancel(tag, k)),
    get: (q, o) => call((k) => ch.get(q, o, k)),
    ack: (m) => ch.ack(m),
    nack: (m, all, requeue) => ch.nack(m, all, requeue),
    reject: (m, requeue) => ch.reject(m, requeue),
    prefetch: (n) => call((k) => ch.prefetch(n, false, k)),
    publishConfirmed: (x, rk, b, o) => call((k) => ch.publish(x, rk, b, o, (err) => k(err || null))),
    waitForConfirms: () => call((k) => ch.waitForConfirms((err) => k(err || null))),
  };
}

scenario.run({
  tag: 'amqplib-callback',
  async connect(url, socketOptions) {
    const conn = await call((k) => amqp.connect(url, socketOptions, k));
    conn.on('error', () => {}); // connection errors are asserted where expected
    return conn;
  },
  serverProperties: (conn) => conn.connection.serverProperties,
  socket: (conn) => conn.connection.stream,
  createChannel: async (conn) => wrap(await call((k) => conn.createChannel(k))),
  createConfirmChannel: async (conn) => wrap(await call((k) => conn.createConfirmChannel(k))),
  closeConnection: (conn) => call((k) => conn.close(k)),
});
