"""kombu (py-amqp transport) against Warren: SimpleQueue put/get/ack, requeue,
a topic exchange with Producer/Consumer, publisher confirms, and TLS."""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts

# This file is named like the package it tests: keep its directory (for
# common.py) but behind site-packages, so `import kombu` is the library.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE] + [HERE]

import ssl  # noqa: E402

import kombu  # noqa: E402
from kombu import Connection, Consumer, Exchange, Producer, Queue  # noqa: E402

from common import (ALL_BYTES, CA, HOST, TLS_NAME, TLS_PORT, URL, Report, expect, expect_eq,  # noqa: E402
                    uname)

assert os.path.abspath(kombu.__file__) != os.path.abspath(__file__), "imported this script instead of kombu"

rep = Report()
T = 10


def tls_connection():
    # py-amqp: `context` holds ssl.create_default_context() arguments (plus
    # check_hostname); the rest go to SSLContext.wrap_socket.
    return Connection(hostname=HOST, port=TLS_PORT, userid="guest", password="guest", virtual_host="/",
                      ssl={"context": {"cafile": CA, "check_hostname": True}, "server_hostname": TLS_NAME},
                      connect_timeout=T)


conn = Connection(URL, connect_timeout=T)

with rep.check("kombu connect tcp"):
    conn.connect()
    expect(conn.connected, "not connected")
    expect_eq(conn.transport_cls, "amqp", "transport")
    expect(conn.connection.server_properties.get("product"), "no server product in connection.start")

with rep.check("kombu connect tls"):
    expect(CA, "WARREN_CA not set")
    with tls_connection() as tconn:
        tconn.connect()
        sock = tconn.connection.transport.sock
        expect(isinstance(sock, ssl.SSLSocket), "socket is %s, not TLS" % type(sock).__name__)
        expect_eq(sock.server_hostname, TLS_NAME, "verified server name")
        name = uname("kombu-tls")
        sq = tconn.SimpleQueue(name, queue_opts={"auto_delete": True})
        sq.put({"over": "tls"})
        m = sq.get(block=True, timeout=T)
        expect_eq(m.payload, {"over": "tls"}, "payload over tls")
        m.ack()
        sq.close()  # cancels the consumer; then the queue can go
        sq.queue.delete()

with rep.check("kombu SimpleQueue put/get"):
    name = uname("kombu-simple")
    sq = conn.SimpleQueue(name)
    payload = {"n": 1, "s": "h\u00e9llo", "list": [1, 2, 3], "none": None}
    sq.put(payload, headers={"x-interop": "yes"})
    sq.put(ALL_BYTES, serializer=None, content_type="application/octet-stream", content_encoding="binary")
    expect_eq(sq.qsize(), 2, "qsize after two puts")
    m = sq.get(block=True, timeout=T)
    expect_eq(m.payload, payload, "json payload")
    expect_eq(m.content_type, "application/json", "content type")
    expect_eq(m.headers.get("x-interop"), "yes", "header")
    expect_eq(m.delivery_info["routing_key"], name, "routing key")
    m.ack()
    m = sq.get(block=True, timeout=T)
    expect_eq(m.body, ALL_BYTES, "binary body")
    m.ack()
    try:
        m = sq.get_nowait()
        raise AssertionError("queue not empty after two acks: %r" % (m.body,))
    except sq.Empty:
        pass
    expect_eq(sq.qsize(), 0, "qsize after acks")
    sq.close()
    sq.queue.delete()

with rep.check("kombu requeue"):
    sq = conn.SimpleQueue(uname("kombu-requeue"))
    sq.put("again")
    m = sq.get(block=True, timeout=T)
    expect_eq((m.payload, m.delivery_info["redelivered"]), ("again", False), "first get (payload, redelivered)")
    m.requeue()
    m = sq.get(block=True, timeout=T)
    expect_eq((m.payload, m.delivery_info["redelivered"]), ("again", True), "second get (payload, redelivered)")
    m.ack()
    expect_eq(sq.qsize(), 0, "qsize after ack")
    sq.close()
    sq.queue.delete()

with rep.check("kombu topic exchange consume"):
    ex = Exchange(uname("kombu-topic"), type="topic", auto_delete=True)
    q_c = Queue(uname("kombu-abc"), ex, routing_key="a.*.c", auto_delete=True)
    q_all = Queue(uname("kombu-a"), ex, routing_key="a.#", auto_delete=True)
    with conn.channel() as chan:
        got = {q_c.name: [], q_all.name: []}

        def on_message_for(name):
            def on_message(body, message):
                got[name].append(body)
                message.ack()
            return on_message
        consumers = [Consumer(chan, queues=[q], callbacks=[on_message_for(q.name)]) for q in (q_c, q_all)]
        for c in consumers:
            c.consume()
        producer = Producer(chan, exchange=ex)
        for key in ("a.b.c", "a.x", "b.b.c"):
            producer.publish({"key": key}, routing_key=key)
        want = 3  # a.b.c twice, a.x once
        while sum(len(v) for v in got.values()) < want:
            conn.drain_events(timeout=T)
        try:
            conn.drain_events(timeout=0.3)
        except OSError:  # socket.timeout: nothing more
            pass
        by_queue = {n: sorted(b["key"] for b in v) for n, v in got.items()}
        expect_eq(by_queue, {q_c.name: ["a.b.c"], q_all.name: ["a.b.c", "a.x"]}, "bodies per queue")
        for c in consumers:
            c.cancel()

with rep.check("kombu confirm_publish"):
    with Connection(URL, connect_timeout=T, transport_options={"confirm_publish": True}) as cconn:
        name = uname("kombu-confirm")
        q = Queue(name, routing_key=name, auto_delete=False)
        with cconn.channel() as chan:
            producer = Producer(chan)
            for i in range(20):
                # With confirm_publish py-amqp waits for basic.ack and raises on a nack.
                producer.publish({"i": i}, routing_key=name, declare=[q])
            expect(chan._confirm_selected, "channel not in confirm mode")
            expect_eq(q(chan).queue_declare(passive=True).message_count, 20, "messages in the queue")
            q(chan).delete()

conn.release()
rep.finish()
