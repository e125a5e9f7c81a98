// The interop scenario with amqplib's promise API (require('amqplib')).
'use strict';

const scenario = require('./amqplib_scenario');

scenario.installWireTap(); // before amqplib loads its codec users
const amqp = require('amqplib');

// The promise API already has the shape the scenario uses; only confirmed
// publishes (callback per publish) and a few accessors are adapted.
function wrap(ch) {
  ch.on('error', () => {}); // channel errors are asserted on the failing call
  return {
    raw: ch,
    number: ch.ch,
    on: (ev, fn) => ch.on(ev, fn),
    close: () => ch.close(),
    assertQueue: (q, o) => ch.assertQueue(q, o),
    checkQueue: (q) => ch.checkQueue(q),
    deleteQueue: (q, o) => ch.deleteQueue(q, o),
    purgeQueue: (q) => ch.purgeQueue(q),
    bindQueue: (q, x, k, a) => ch.bindQueue(q, x, k, a),
    unbindQueue: (q, x, k, a) => ch.unbindQueue(q, x, k, a),
    assertExchange: (x, t, o) => ch.assertExchange(x, t, o),
    checkExchange: (x) => ch.checkExchange(x),
    bindExchange: (d, s, k, a) => ch.bindExchange(d, s, k, a),
    unbindExchange: (d, s, k, a) => ch.unbindExchange(d, s, k, a),
    publish: (x, k, b, o) => ch.publish(x, k, b, o),
    sendToQueue: (q, b, o) => ch.sendToQueue(q, b, o),
    consume: (q, fn, o) => ch.consume(q, fn, o),
    cancel: (tag) => ch.cancel(tag),
    get: (q, o) => ch.get(q, o),
    ack: (m) => ch.ack(m),
    nack: (m, all, requeue) => ch.nack(m, all, requeue),
    reject: (m, requeue) => ch.reject(m, requeue),
    prefetch: (n) => ch.prefetch(n),
    publishConfirmed: (x, k, b, o) =>
      new Promise((resolve, reject) => ch.publish(x, k, b, o, (err) => (err ? reject(err) : resolve()))),
    waitForConfirms: () => ch.waitForConfirms(),
  };
}

scenario.run({
  tag: 'amqplib-promise',
  async connect(url, socketOptions) {
    const conn = await amqp.connect(url, socketOptions);
    conn.on('error', () => {}); // connection errors are asserted where expected
    return conn;
  },
  serverProperties: (conn) => conn.connection.serverProperties,
  socket: (conn) => conn.connection.stream,
  createChannel: async (conn) => wrap(await conn.createChannel()),
  createConfirmChannel: async (conn) => wrap(await conn.createConfirmChannel()),
  closeConnection: (conn) => conn.close(),
});
