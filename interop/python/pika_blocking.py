"""interop/SCENARIO.md with pika's BlockingConnection."""
import datetime
import decimal
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pika  # noqa: E402
import pika.compat  # noqa: E402
import pika.data  # noqa: E402
import pika.spec  # noqa: E402
from pika.exceptions import ChannelClosedByBroker, ProbableAuthenticationError  # noqa: E402

from common import (ALL_BYTES, CA, HOST, PORT, TLS_NAME, TLS_PORT, Report, compare_typed_tables,  # noqa: E402
                    expect, expect_eq, parse_basic_properties, tls_context, uname)

# Keep the raw octets of every content header pika decodes, to compare
# header field types on the wire (pika's decoded values lose them).
RAW_PROPS = []
_decode = pika.spec.BasicProperties.decode


def _recording_decode(self, encoded, offset=0):
    RAW_PROPS.append(bytes(encoded[offset:]))
    return _decode(self, encoded, offset)


pika.spec.BasicProperties.decode = _recording_decode

rep = Report()


def params(password="guest", tls=False):
    kw = dict(host=HOST, port=PORT, virtual_host="/",
              credentials=pika.PlainCredentials("guest", password),
              connection_attempts=1, socket_timeout=10, blocked_connection_timeout=30)
    if tls:
        kw.update(port=TLS_PORT, ssl_options=pika.SSLOptions(tls_context(), TLS_NAME))
    return pika.ConnectionParameters(**kw)


def connect(**kw):
    return pika.BlockingConnection(params(**kw))


def drain(ch, queue):
    """All bodies basic.get can take from the queue now (auto-ack)."""
    out = []
    while True:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append(body)


def count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def pump(conn, seconds, until=None):
    """Processes I/O for up to `seconds`, stopping early once until() is true."""
    deadline = time.monotonic() + seconds
    while True:
        if until is not None and until():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return until() if until else True
        conn.process_data_events(time_limit=min(left, 0.05))


def expect_channel_error(fn, code, text_prefix):
    try:
        fn()
    except ChannelClosedByBroker as e:
        expect_eq(e.reply_code, code, "reply code")
        expect(e.reply_text.startswith(text_prefix),
               "reply text: expected %r..., got %r" % (text_prefix, e.reply_text))
        return
    raise AssertionError("no channel error (expected %d %s)" % (code, text_prefix))


conn = None
ch = None


def fresh():
    """The shared connection and channel, reopened if an earlier check broke them."""
    global conn, ch
    if conn is None or not conn.is_open:
        conn = connect()
        ch = None
    if ch is None or not ch.is_open:
        ch = conn.channel()
    return ch

# 1. connect
with rep.check("connect tcp"):
    conn = connect()
    ch = conn.channel()
    expect(conn.is_open and ch.is_open, "connection or channel not open")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"tcp")
    expect_eq(drain(ch, q), [b"tcp"], "bodies over tcp")

if conn is None or not conn.is_open:
    rep.finish()

with rep.check("connect tls"):
    expect(CA, "WARREN_CA not set")
    tconn = connect(tls=True)
    try:
        tch = tconn.channel()
        q = tch.queue_declare("", exclusive=True).method.queue
        tch.basic_publish("", q, b"tls")
        expect_eq(drain(tch, q), [b"tls"], "bodies over tls")
    finally:
        tconn.close()

# 2. exchanges
EX = {t: uname("x-" + t) for t in ("direct", "fanout", "topic", "headers")}
with rep.check("declare exchanges"):
    fresh()
    for t, name in EX.items():
        ok = ch.exchange_declare(name, t)
        expect(isinstance(ok.method, pika.spec.Exchange.DeclareOk), "no declare-ok for %s" % t)
        ch.exchange_declare(name, t, passive=True)

# 3. queues
with rep.check("declare queues"):
    fresh()
    for kw in (dict(durable=True), dict(exclusive=True), dict(auto_delete=True)):
        name = uname("q")
        ok = ch.queue_declare(name, **kw).method
        expect_eq(ok.queue, name, "declare-ok queue for %r" % kw)
        expect_eq((ok.message_count, ok.consumer_count), (0, 0), "counts for %r" % kw)
        again = ch.queue_declare(name, **kw).method  # equivalent redeclare
        expect_eq(again.queue, name, "redeclare-ok queue for %r" % kw)
        ch.queue_delete(name)
    gen = ch.queue_declare("", exclusive=True).method.queue
    expect(gen.startswith("amq.gen-"), "server-named queue %r" % gen)


def bound_queue(exchange, key="", arguments=None):
    name = ch.queue_declare(uname("q"), exclusive=True).method.queue
    ch.queue_bind(name, exchange, key, arguments=arguments)
    return name


# 4. routing
with rep.check("route direct"):
    fresh()
    q1 = bound_queue(EX["direct"], "k1")
    q2 = bound_queue(EX["direct"], "k2")
    ch.basic_publish(EX["direct"], "k1", b"one")
    ch.basic_publish(EX["direct"], "k2", b"two")
    ch.basic_publish(EX["direct"], "k3", b"none")
    expect_eq(drain(ch, q1), [b"one"], "k1 queue")
    expect_eq(drain(ch, q2), [b"two"], "k2 queue")

with rep.check("route fanout"):
    fresh()
    q1 = bound_queue(EX["fanout"], "ignored")
    q2 = bound_queue(EX["fanout"])
    ch.basic_publish(EX["fanout"], "whatever", b"fan")
    expect_eq(drain(ch, q1), [b"fan"], "first queue")
    expect_eq(drain(ch, q2), [b"fan"], "second queue")

with rep.check("route topic"):
    fresh()
    q1 = bound_queue(EX["topic"], "a.*.c")
    q2 = bound_queue(EX["topic"], "a.#")
    for key in ("a.b.c", "a.b.b.c", "a", "x.b.c", "a.b"):
        ch.basic_publish(EX["topic"], key, key.encode())
    expect_eq(drain(ch, q1), [b"a.b.c"], "a.*.c queue")
    expect_eq(drain(ch, q2), [b"a.b.c", b"a.b.b.c", b"a", b"a.b"], "a.# queue")

with rep.check("route headers"):
    fresh()
    q_all = bound_queue(EX["headers"], "", {"x-match": "all", "h1": "v1", "h2": "v2"})
    q_any = bound_queue(EX["headers"], "", {"x-match": "any", "h1": "v1", "h2": "v2"})
    for body, headers in ((b"both", {"h1": "v1", "h2": "v2", "h3": "x"}),
                          (b"one", {"h1": "v1"}),
                          (b"wrong", {"h1": "v2", "h2": "v1"}),
                          (b"none", None)):
        ch.basic_publish(EX["headers"], "", body, pika.BasicProperties(headers=headers))
    expect_eq(drain(ch, q_all), [b"both"], "x-match all queue")
    expect_eq(drain(ch, q_any), [b"both", b"one"], "x-match any queue")

# 5. bindings
with rep.check("exchange-to-exchange binding"):
    fresh()
    e1, e2 = uname("e1"), uname("e2")
    ch.exchange_declare(e1, "direct")
    ch.exchange_declare(e2, "fanout")
    ch.exchange_bind(destination=e2, source=e1, routing_key="k")
    q = bound_queue(e2)
    ch.basic_publish(e1, "k", b"via-e1")
    ch.basic_publish(e1, "other", b"not-bound")
    expect_eq(drain(ch, q), [b"via-e1"], "queue behind e2")
    ch.exchange_unbind(destination=e2, source=e1, routing_key="k")
    ch.basic_publish(e1, "k", b"after-unbind")
    expect_eq(drain(ch, q), [], "queue behind e2 after exchange.unbind")
    ch.exchange_delete(e2)
    ch.exchange_delete(e1)

with rep.check("queue unbind"):
    fresh()
    q = bound_queue(EX["direct"], "unbind-me")
    ch.basic_publish(EX["direct"], "unbind-me", b"before")
    expect_eq(drain(ch, q), [b"before"], "queue before unbind")
    ch.queue_unbind(q, EX["direct"], "unbind-me")
    ch.basic_publish(EX["direct"], "unbind-me", b"after")
    expect_eq(drain(ch, q), [], "queue after unbind")

# 6. properties and headers
with rep.check("properties and headers round trip"):
    fresh()
    # Every type pika can put in a table: pika has no float/double, no
    # 8/16-bit or unsigned-32 codes, and encodes negative 64-bit values as
    # 'L', which neither RabbitMQ nor the 0-9-1 errata know.
    headers = {
        "bool-true": True,
        "bool-false": False,
        "int32": -2147483648,
        "int32-max": 2147483647,
        "int64": 2 ** 63 - 1,
        "int64-small": 2 ** 40,
        "decimal": decimal.Decimal("123.45"),
        "long-string": "h\u00e9llo w\u00f6rld \u2713",
        "bytes": ALL_BYTES,
        "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "void": None,
        "table": {"a": 1, "nested": {"b": "c", "n": None}},
        "array": [1, "two", True, None, {"x": 1}, [2, 3], b"xy", decimal.Decimal("1.5")],
    }
    props = pika.BasicProperties(
        content_type="application/octet-stream", content_encoding="identity", headers=headers,
        delivery_mode=2, priority=7, correlation_id="corr-1", reply_to="reply-to-q",
        expiration="600000", message_id="msg-1", timestamp=1700000000, type="interop.type",
        user_id="guest", app_id="warren-interop", cluster_id="cluster-1")
    q = ch.queue_declare("", exclusive=True).method.queue
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append((m, p, b, RAW_PROPS[-1])), auto_ack=True)
    ch.basic_publish("", q, ALL_BYTES, props)
    expect(pump(conn, 5, lambda: got), "no delivery within 5 s")
    ch.basic_cancel(tag)
    m, p, body, raw = got[0]
    expect_eq(body, ALL_BYTES, "body")
    expect_eq((m.exchange, m.routing_key, m.redelivered), ("", q, False), "deliver fields")
    for name in ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id",
                 "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id",
                 "cluster_id"):
        expect_eq(getattr(p, name), getattr(props, name), "property " + name)

    def same(a, b, path):
        ta, tb = (int if t is pika.compat.long else t for t in (type(a), type(b)))
        expect(ta is tb, "header %s: type %s, sent %s" % (path, ta.__name__, tb.__name__))
        if isinstance(b, dict):
            expect_eq(sorted(a), sorted(b), "header %s keys" % path)
            for k in b:
                same(a[k], b[k], path + "." + k)
        elif isinstance(b, list):
            expect_eq(len(a), len(b), "header %s length" % path)
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, "%s[%d]" % (path, i))
        else:
            expect_eq(a, b, "header " + path)

    same(p.headers, headers, "headers")
    pieces = []
    pika.data.encode_table(pieces, headers)
    sent_raw = b"".join(pieces)[4:]
    compare_typed_tables(parse_basic_properties(raw)["headers"], sent_raw)

# 7. prefetch
with rep.check("prefetch honoured"):
    fresh()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(10):
        ch.basic_publish("", q, b"p%d" % i)
    expect_eq(count(ch, q), 10, "messages waiting")
    pch = conn.channel()
    pch.basic_qos(prefetch_count=3)
    got = []
    pch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag), auto_ack=False)
    pump(conn, 5, lambda: len(got) >= 3)
    pump(conn, 0.4)  # room for a fourth that must not come
    expect_eq(len(got), 3, "unacknowledged deliveries with prefetch 3")
    pch.basic_ack(got[0])
    pump(conn, 5, lambda: len(got) >= 4)
    pump(conn, 0.4)
    expect_eq(len(got), 4, "deliveries after one ack")
    pch.close()

# 8. basic.get
with rep.check("basic.get"):
    fresh()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(3):
        ch.basic_publish("", q, b"get-%d" % i)
    m, _p, body = ch.basic_get(q, auto_ack=False)
    expect(m is not None, "get-empty on a queue with 3 messages")
    expect_eq(body, b"get-0", "body")
    expect_eq(m.message_count, 2, "get-ok message-count")
    expect_eq(m.redelivered, False, "redelivered")
    ch.basic_ack(m.delivery_tag)
    m, _p, body = ch.basic_get(q, auto_ack=True)
    expect_eq((body, m.message_count), (b"get-1", 1), "second get (body, message-count)")

with rep.check("basic.get empty"):
    fresh()
    q = ch.queue_declare("", exclusive=True).method.queue
    m, p, body = ch.basic_get(q)
    expect(m is None and body is None, "got a message from an empty queue: %r" % (body,))

# 9. reject / nack requeue
for label, settle in (("reject requeue", lambda c, t: c.basic_reject(t, requeue=True)),
                      ("nack requeue", lambda c, t: c.basic_nack(t, requeue=True))):
    with rep.check(label):
        fresh()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, label.encode())
        m, _p, body = ch.basic_get(q)
        expect_eq((body, m.redelivered), (label.encode(), False), "first get (body, redelivered)")
        settle(ch, m.delivery_tag)
        m, _p, body = ch.basic_get(q)
        expect(m is not None, "message did not come back")
        expect_eq((body, m.redelivered), (label.encode(), True), "second get (body, redelivered)")
        ch.basic_ack(m.delivery_tag)
        expect_eq(count(ch, q), 0, "messages left after ack")

# 10. confirms
with rep.check("publisher confirms"):
    fresh()
    q = ch.queue_declare("", exclusive=True).method.queue
    cch = conn.channel()
    cch.confirm_delivery()
    for i in range(100):
        # In confirm mode pika waits for each basic.ack and raises on a nack.
        cch.basic_publish("", q, b"c%d" % i)
    expect_eq(count(cch, q), 100, "messages in the queue")
    cch.close()

# 11. mandatory
with rep.check("mandatory return"):
    fresh()
    rch = conn.channel()
    returned = []
    rch.add_on_return_callback(lambda c, m, p, b: returned.append((m, b)))
    key = uname("unbound")
    rch.basic_publish("amq.direct", key, b"bounce", mandatory=True)
    expect(pump(conn, 5, lambda: returned), "no basic.return within 5 s")
    m, body = returned[0]
    expect_eq((m.reply_code, m.reply_text, m.exchange, m.routing_key, body),
              (312, "NO_ROUTE", "amq.direct", key, b"bounce"), "basic.return")
    rch.close()

# 12. transactions
with rep.check("tx commit"):
    fresh()
    q = ch.queue_declare("", exclusive=True).method.queue
    tch = conn.channel()
    tch.tx_select()
    for i in range(3):
        tch.basic_publish("", q, b"tx-%d" % i)
    expect_eq(count(tch, q), 0, "messages before commit")
    tch.tx_commit()
    expect_eq(count(tch, q), 3, "messages after commit")
    expect_eq(drain(ch, q), [b"tx-0", b"tx-1", b"tx-2"], "bodies after commit")
    tch.close()

with rep.check("tx rollback"):
    fresh()
    q = ch.queue_declare("", exclusive=True).method.queue
    tch = conn.channel()
    tch.tx_select()
    for i in range(3):
        tch.basic_publish("", q, b"rb-%d" % i)
    expect_eq(count(tch, q), 0, "messages before rollback")
    tch.tx_rollback()
    tch.tx_commit()  # nothing left to commit
    expect_eq(count(tch, q), 0, "messages after rollback")
    expect_eq(drain(ch, q), [], "bodies after rollback")
    tch.close()

# 13. purge
with rep.check("purge"):
    fresh()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(5):
        ch.basic_publish("", q, b"x")
    ok = ch.queue_purge(q).method
    expect_eq(ok.message_count, 5, "purge-ok message-count")
    expect_eq(count(ch, q), 0, "messages after purge")

# 14. conditional deletes
with rep.check("delete if-unused"):
    fresh()
    q = ch.queue_declare(uname("q-unused")).method.queue
    cons = conn.channel()
    cons.basic_consume(q, lambda *a: None)
    dch = conn.channel()
    expect_channel_error(lambda: dch.queue_delete(q, if_unused=True), 406, "PRECONDITION_FAILED")
    expect_eq(ch.queue_declare(q, passive=True).method.consumer_count, 1, "consumers after refused delete")
    ok = conn.channel().queue_delete(q).method
    expect(isinstance(ok, pika.spec.Queue.DeleteOk), "plain delete: no delete-ok")
    expect_channel_error(lambda: conn.channel().queue_declare(q, passive=True), 404, "NOT_FOUND")

with rep.check("delete if-empty"):
    fresh()
    q = ch.queue_declare(uname("q-empty")).method.queue
    ch.basic_publish("", q, b"keep")
    dch = conn.channel()
    expect_channel_error(lambda: dch.queue_delete(q, if_empty=True), 406, "PRECONDITION_FAILED")
    expect_eq(count(ch, q), 1, "messages after refused delete")
    ok = conn.channel().queue_delete(q).method
    expect_eq(ok.message_count, 1, "plain delete: delete-ok message-count")
    expect_channel_error(lambda: conn.channel().queue_declare(q, passive=True), 404, "NOT_FOUND")

# 15. error paths
with rep.check("406 on redeclare then new channel works"):
    fresh()
    q = uname("q-redeclare")
    ch.queue_declare(q, durable=False)
    ech = conn.channel()
    expect_channel_error(
        lambda: ech.queue_declare(q, durable=True), 406,
        "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '%s' in vhost '/': "
        "received 'true' but current is 'false'" % q)
    expect(not ech.is_open, "channel still open after 406")
    nch = conn.channel()
    expect_eq(nch.queue_declare(q, passive=True).method.queue, q, "passive declare on new channel")
    nch.queue_delete(q)
    nch.close()

with rep.check("404 on passive declare then new channel works"):
    fresh()
    q = uname("q-missing")
    ech = conn.channel()
    expect_channel_error(lambda: ech.queue_declare(q, passive=True), 404,
                         "NOT_FOUND - no queue '%s' in vhost '/'" % q)
    nch = conn.channel()
    expect(nch.queue_declare("", exclusive=True).method.queue.startswith("amq.gen-"),
           "declare on new channel")
    nch.close()

with rep.check("405 on exclusive queue of another connection then new channel works"):
    fresh()
    q = ch.queue_declare(uname("q-excl"), exclusive=True).method.queue
    other = connect()
    try:
        och = other.channel()
        expect_channel_error(lambda: och.queue_declare(q, passive=True), 405,
                             "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s'" % q)
        och2 = other.channel()
        expect_channel_error(lambda: och2.basic_consume(q, lambda *a: None), 405, "RESOURCE_LOCKED")
        nch = other.channel()
        expect(nch.queue_declare("", exclusive=True).method.queue.startswith("amq.gen-"),
               "declare on new channel")
    finally:
        other.close()
    expect_eq(ch.queue_declare(q, passive=True).method.queue, q, "owner still sees its queue")

with rep.check("403 on wrong password then new channel works"):
    fresh()
    try:
        bad = connect(password="wrong-password")
        bad.close()
        raise AssertionError("connection with a wrong password was accepted")
    except ProbableAuthenticationError as e:
        # pika announces authentication_failure_close; it wraps the broker's
        # connection.close in ProbableAuthenticationError.
        text = str(e)
        expect("ConnectionClosedByBroker" in text and "403" in text and "ACCESS_REFUSED" in text,
               "expected connection.close 403 ACCESS_REFUSED, got %s" % text)
    good = connect()
    try:
        gch = good.channel()
        expect(gch.queue_declare("", exclusive=True).method.queue.startswith("amq.gen-"),
               "declare on new connection's channel")
    finally:
        good.close()

# 16. big message
with rep.check("5 MiB message"):
    fresh()
    big = os.urandom(5 * 1024 * 1024)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, big)
    m, _p, body = ch.basic_get(q, auto_ack=True)
    expect(m is not None, "get-empty after publishing 5 MiB")
    expect_eq(len(body), len(big), "body length")
    expect(body == big, "body differs")

# 17. many channels
with rep.check("500 channels"):
    fresh()
    mconn = connect()
    try:
        q = mconn.channel().queue_declare("", exclusive=True).method.queue
        chans = [mconn.channel() for _ in range(500)]
        expect_eq(len({c.channel_number for c in chans}), 500, "distinct channel numbers")
        for i, c in enumerate(chans):
            c.basic_publish("", q, b"%d" % i)
        # A synchronous method on each channel, after its publish.
        for c in chans:
            c.queue_declare(q, passive=True)
        bodies = drain(chans[-1], q)
        expect_eq(sorted(int(b) for b in bodies), list(range(500)), "one message per channel")
        for c in chans:
            c.close()
    finally:
        mconn.close()

# 18. round robin
with rep.check("round-robin consumers"):
    fresh()
    q = ch.queue_declare("", exclusive=True).method.queue
    per = {}
    consumers = []
    for i in range(4):
        c = conn.channel()

        def on_msg(c_, m, p, b, i=i):
            per[i] = per.get(i, 0) + 1
            c_.basic_ack(m.delivery_tag)
        c.basic_consume(q, on_msg)
        consumers.append(c)
    for i in range(40):
        ch.basic_publish("", q, b"rr-%d" % i)
    pump(conn, 10, lambda: sum(per.values()) >= 40)
    pump(conn, 0.3)
    expect_eq([per.get(i, 0) for i in range(4)], [10, 10, 10, 10], "messages per consumer")
    for c in consumers:
        c.close()

try:
    conn.close()
except Exception as e:  # closing is not a check
    print("note: close failed: %r" % e, file=sys.stderr)
rep.finish()
