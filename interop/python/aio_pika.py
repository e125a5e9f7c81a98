"""interop/SCENARIO.md with aio-pika (on aiormq / pamqp)."""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts

# This file is named like the package it tests: keep its directory (for
# common.py) but behind site-packages, so `import aio_pika` is the library.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE] + [HERE]

import asyncio  # noqa: E402
import datetime  # noqa: E402
import decimal  # noqa: E402

import aio_pika  # noqa: E402
import aiormq  # noqa: E402
import aiormq.exceptions as aerr  # noqa: E402
import pamqp.encode  # noqa: E402
import pamqp.header  # noqa: E402
from aio_pika import ExchangeType, Message  # noqa: E402

from common import (ALL_BYTES, CA, HOST, PORT, TLS_NAME, TLS_PORT, Report,  # noqa: E402
                    compare_typed_tables, expect, expect_eq, parse_basic_properties, tls_context, uname)

assert aio_pika.__file__ != os.path.abspath(__file__), "imported this script instead of aio-pika"

# Keep the raw octets of every content header, to compare header field types
# on the wire (decoded values lose them).
RAW_HEADERS = []
_unmarshal = pamqp.header.ContentHeader.unmarshal


def _recording_unmarshal(self, data):
    RAW_HEADERS.append(bytes(data[12:]))
    return _unmarshal(self, data)


pamqp.header.ContentHeader.unmarshal = _recording_unmarshal

rep = Report()
URL = "amqp://guest:guest@%s:%d/" % (HOST, PORT)
# aiormq verifies the certificate against the URL's host, so name it `localhost`.
TLS_URL = "amqps://guest:guest@%s:%d/" % (TLS_NAME, TLS_PORT)
T = 10


async def wait_until(pred, seconds):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not pred() and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return pred()


async def expect_channel_error(aw, exc_class, text_prefix):
    try:
        await aw
    except exc_class as e:
        text = e.args[0] if e.args else ""
        expect(isinstance(text, str) and text.startswith(text_prefix),
               "reply text: expected %r..., got %r" % (text_prefix, text))
        return
    raise AssertionError("no %s (expected %s)" % (exc_class.__name__, text_prefix))


async def drain(queue):
    out = []
    while True:
        m = await queue.get(no_ack=True, fail=False, timeout=T)
        if m is None:
            return out
        out.append(m.body)


async def main():
    conn = None
    ch = None
    with rep.check("connect tcp"):
        conn = await aio_pika.connect(URL, timeout=T)
        ch = await conn.channel(publisher_confirms=False)
        q = await ch.declare_queue("", exclusive=True)
        await ch.default_exchange.publish(Message(b"tcp"), q.name)
        expect_eq(await drain(q), [b"tcp"], "bodies over tcp")
    if conn is None:
        return

    with rep.check("connect tls"):
        expect(CA, "WARREN_CA not set")
        tconn = await aio_pika.connect(TLS_URL, ssl_context=tls_context(), timeout=T)
        try:
            tch = await tconn.channel()
            q = await tch.declare_queue("", exclusive=True)
            await tch.default_exchange.publish(Message(b"tls"), q.name)
            expect_eq(await drain(q), [b"tls"], "bodies over tls")
        finally:
            await tconn.close()

    async def fresh():
        nonlocal ch
        if ch is None or ch.is_closed:
            ch = await conn.channel(publisher_confirms=False)
        return ch

    async def publish(exchange, key, body, **props):
        await exchange.publish(Message(body, **props), routing_key=key, mandatory=False)

    ex = {}
    with rep.check("declare exchanges"):
        await fresh()
        for t in (ExchangeType.DIRECT, ExchangeType.FANOUT, ExchangeType.TOPIC, ExchangeType.HEADERS):
            e = await ch.declare_exchange(uname("x-" + t.value), t)
            await ch.declare_exchange(e.name, t, passive=True)
            ex[t.value] = e
        expect_eq(len(ex), 4, "exchanges declared")

    with rep.check("declare queues"):
        await fresh()
        for kw in (dict(durable=True), dict(exclusive=True), dict(auto_delete=True)):
            name = uname("q")
            q = await ch.declare_queue(name, **kw)
            ok = q.declaration_result
            expect_eq((ok.queue, ok.message_count, ok.consumer_count), (name, 0, 0), "declare-ok for %r" % kw)
            await ch.declare_queue(name, **kw)
            await q.delete(if_unused=False, if_empty=False)
        q = await ch.declare_queue("", exclusive=True)
        expect(q.name.startswith("amq.gen-"), "server-named queue %r" % q.name)

    async def bound_queue(exchange, key="", arguments=None):
        q = await ch.declare_queue(uname("q"), exclusive=True)
        await q.bind(exchange, key, arguments=arguments)
        return q

    with rep.check("route direct"):
        await fresh()
        q1 = await bound_queue(ex["direct"], "k1")
        q2 = await bound_queue(ex["direct"], "k2")
        for key in ("k1", "k2", "k3"):
            await publish(ex["direct"], key, key.encode())
        expect_eq(await drain(q1), [b"k1"], "k1 queue")
        expect_eq(await drain(q2), [b"k2"], "k2 queue")

    with rep.check("route fanout"):
        await fresh()
        q1 = await bound_queue(ex["fanout"], "ignored")
        q2 = await bound_queue(ex["fanout"])
        await publish(ex["fanout"], "whatever", b"fan")
        expect_eq(await drain(q1), [b"fan"], "first queue")
        expect_eq(await drain(q2), [b"fan"], "second queue")

    with rep.check("route topic"):
        await fresh()
        q1 = await bound_queue(ex["topic"], "a.*.c")
        q2 = await bound_queue(ex["topic"], "a.#")
        for key in ("a.b.c", "a.b.b.c", "a", "x.b.c", "a.b"):
            await publish(ex["topic"], key, key.encode())
        expect_eq(await drain(q1), [b"a.b.c"], "a.*.c queue")
        expect_eq(await drain(q2), [b"a.b.c", b"a.b.b.c", b"a", b"a.b"], "a.# queue")

    with rep.check("route headers"):
        await fresh()
        q_all = await bound_queue(ex["headers"], "", {"x-match": "all", "h1": "v1", "h2": "v2"})
        q_any = await bound_queue(ex["headers"], "", {"x-match": "any", "h1": "v1", "h2": "v2"})
        for body, headers in ((b"both", {"h1": "v1", "h2": "v2", "h3": "x"}), (b"one", {"h1": "v1"}),
                              (b"wrong", {"h1": "v2", "h2": "v1"}), (b"none", None)):
            await publish(ex["headers"], "", body, headers=headers)
        expect_eq(await drain(q_all), [b"both"], "x-match all queue")
        expect_eq(await drain(q_any), [b"both", b"one"], "x-match any queue")

    with rep.check("exchange-to-exchange binding"):
        await fresh()
        e1 = await ch.declare_exchange(uname("e1"), ExchangeType.DIRECT)
        e2 = await ch.declare_exchange(uname("e2"), ExchangeType.FANOUT)
        await e2.bind(e1, "k")
        q = await bound_queue(e2)
        await publish(e1, "k", b"via-e1")
        await publish(e1, "other", b"not-bound")
        expect_eq(await drain(q), [b"via-e1"], "queue behind e2")
        await e2.unbind(e1, "k")
        await publish(e1, "k", b"after-unbind")
        expect_eq(await drain(q), [], "queue behind e2 after exchange.unbind")
        await e2.delete()
        await e1.delete()

    with rep.check("queue unbind"):
        await fresh()
        q = await bound_queue(ex["direct"], "unbind-me")
        await publish(ex["direct"], "unbind-me", b"before")
        expect_eq(await drain(q), [b"before"], "queue before unbind")
        await q.unbind(ex["direct"], "unbind-me")
        await publish(ex["direct"], "unbind-me", b"after")
        expect_eq(await drain(q), [], "queue after unbind")

    with rep.check("properties and headers round trip"):
        await fresh()
        # pamqp picks the smallest integer code for a value; it has no
        # unsigned 8-bit code and no double ('d'), and Message has no cluster-id.
        headers = {
            "bool-true": True,
            "bool-false": False,
            "int8": 100,  # pamqp cannot encode a negative 8-bit value
            "int16": -1000,
            "uint16": 40000,
            "int32": -100000,
            "uint32": 3000000000,
            "int64": -2 ** 63,
            "int64-max": 2 ** 63 - 1,
            "float": 1.5,
            "decimal": decimal.Decimal("123.45"),
            "long-string": "h\u00e9llo w\u00f6rld \u2713",
            "bytes": bytearray(ALL_BYTES),
            "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            "void": None,
            "table": {"a": 1, "nested": {"b": "c", "n": None}},
            "array": [1, "two", True, None, {"x": 1}, [2, 3], bytearray(b"xy"), -0.25],
        }
        props = dict(content_type="application/octet-stream", content_encoding="identity", headers=headers,
                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT, priority=7, correlation_id="corr-1",
                     reply_to="reply-to-q", expiration=600, message_id="msg-1",
                     timestamp=datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc),
                     type="interop.type", user_id="guest", app_id="warren-interop")
        q = await ch.declare_queue("", exclusive=True)
        got = []

        async def on_message(m):
            got.append((m, RAW_HEADERS[-1]))
        tag = await q.consume(on_message, no_ack=True)
        await ch.default_exchange.publish(Message(ALL_BYTES, **props), q.name)
        expect(await wait_until(lambda: got, 5), "no delivery within 5 s")
        await q.cancel(tag)
        m, raw = got[0]
        expect_eq(m.body, ALL_BYTES, "body")
        expect_eq((m.exchange, m.routing_key, m.redelivered), ("", q.name, False), "deliver fields")
        want = dict(props, delivery_mode=2, expiration=600.0)
        for name, value in want.items():
            if name != "headers":
                expect_eq(getattr(m, name), value, "property " + name)
        expect_eq(m.headers, headers, "headers (decoded)")
        rawp = parse_basic_properties(raw)
        expect_eq(rawp.get("expiration"), b"600000", "expiration on the wire")
        expect_eq(rawp.get("timestamp"), 1700000000, "timestamp on the wire")
        compare_typed_tables(rawp["headers"], pamqp.encode.field_table(headers)[4:])

    with rep.check("prefetch honoured"):
        await fresh()
        q = await ch.declare_queue("", exclusive=True)
        for i in range(10):
            await publish(ch.default_exchange, q.name, b"p%d" % i)
        expect_eq((await ch.declare_queue(q.name, passive=True)).declaration_result.message_count, 10,
                  "messages waiting")
        pch = await conn.channel()
        await pch.set_qos(prefetch_count=3)
        pq = await pch.get_queue(q.name)
        msgs = []

        async def on_message(m):
            msgs.append(m)
        await pq.consume(on_message, no_ack=False)
        await wait_until(lambda: len(msgs) >= 3, 5)
        await asyncio.sleep(0.4)  # room for a fourth that must not come
        expect_eq(len(msgs), 3, "unacknowledged deliveries with prefetch 3")
        await msgs[0].ack()
        await wait_until(lambda: len(msgs) >= 4, 5)
        await asyncio.sleep(0.4)
        expect_eq(len(msgs), 4, "deliveries after one ack")
        await pch.close()

    with rep.check("basic.get"):
        await fresh()
        q = await ch.declare_queue("", exclusive=True)
        for i in range(3):
            await publish(ch.default_exchange, q.name, b"get-%d" % i)
        m = await q.get(no_ack=False, fail=False, timeout=T)
        expect(m is not None, "get-empty on a queue with 3 messages")
        expect_eq((m.body, m.message_count, m.redelivered), (b"get-0", 2, False),
                  "get-ok (body, message-count, redelivered)")
        await m.ack()

    with rep.check("basic.get empty"):
        await fresh()
        q = await ch.declare_queue("", exclusive=True)
        m = await q.get(fail=False, timeout=T)
        expect(m is None, "got a message from an empty queue: %r" % (m and m.body,))

    for label in ("reject requeue", "nack requeue"):
        with rep.check(label):
            await fresh()
            q = await ch.declare_queue("", exclusive=True)
            await publish(ch.default_exchange, q.name, label.encode())
            m = await q.get(fail=False, timeout=T)
            expect(m is not None, "get-empty after publish")
            expect_eq((m.body, m.redelivered), (label.encode(), False), "first get (body, redelivered)")
            if label.startswith("nack"):
                await m.nack(requeue=True)
            else:
                await m.reject(requeue=True)
            m = await q.get(fail=False, timeout=T)
            expect(m is not None, "message did not come back")
            expect_eq((m.body, m.redelivered), (label.encode(), True), "second get (body, redelivered)")
            await m.ack()
            expect_eq((await ch.declare_queue(q.name, passive=True)).declaration_result.message_count, 0,
                      "messages left after ack")

    with rep.check("publisher confirms"):
        await fresh()
        q = await ch.declare_queue("", exclusive=True)
        cch = await conn.channel(publisher_confirms=True)
        results = await asyncio.gather(*(cch.default_exchange.publish(Message(b"c%d" % i), q.name)
                                         for i in range(100)), return_exceptions=True)
        bad = [r for r in results if not isinstance(r, aiormq.spec.Basic.Ack)]
        expect(not bad, "%d of 100 not acknowledged, e.g. %r" % (len(bad), bad[:1]))
        expect_eq((await cch.declare_queue(q.name, passive=True)).declaration_result.message_count, 100,
                  "messages in the queue")
        await cch.close()

    with rep.check("mandatory return"):
        rch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        key = uname("unbound")
        amq_direct = await rch.get_exchange("amq.direct")
        try:
            await amq_direct.publish(Message(b"bounce"), key, mandatory=True)
            raise AssertionError("mandatory publish to an unbound key was not returned")
        except aerr.PublishError as e:
            r = e.message.delivery
            expect(isinstance(r, aiormq.spec.Basic.Return), "not a basic.return: %r" % (r,))
            expect_eq((r.reply_code, r.reply_text, r.exchange, r.routing_key, e.message.body),
                      (312, "NO_ROUTE", "amq.direct", key, b"bounce"), "basic.return")
        await rch.close()

    with rep.check("tx commit"):
        await fresh()
        q = await ch.declare_queue("", exclusive=True)
        tch = await conn.channel(publisher_confirms=False)
        tx = tch.transaction()
        await tx.select()
        for i in range(3):
            await tch.default_exchange.publish(Message(b"tx-%d" % i), q.name)
        tq = await tch.declare_queue(q.name, passive=True)
        expect_eq(tq.declaration_result.message_count, 0, "messages before commit")
        await tx.commit()
        tq = await tch.declare_queue(q.name, passive=True)
        expect_eq(tq.declaration_result.message_count, 3, "messages after commit")
        expect_eq(await drain(q), [b"tx-0", b"tx-1", b"tx-2"], "bodies after commit")
        await tch.close()

    with rep.check("tx rollback"):
        await fresh()
        q = await ch.declare_queue("", exclusive=True)
        tch = await conn.channel(publisher_confirms=False)
        tx = tch.transaction()
        await tx.select()
        for i in range(3):
            await tch.default_exchange.publish(Message(b"rb-%d" % i), q.name)
        tq = await tch.declare_queue(q.name, passive=True)
        expect_eq(tq.declaration_result.message_count, 0, "messages before rollback")
        await tx.rollback()
        tq = await tch.declare_queue(q.name, passive=True)
        expect_eq(tq.declaration_result.message_count, 0, "messages after rollback")
        expect_eq(await drain(q), [], "bodies after rollback")
        await tch.close()

    with rep.check("purge"):
        await fresh()
        q = await ch.declare_queue("", exclusive=True)
        for i in range(5):
            await publish(ch.default_exchange, q.name, b"x")
        ok = await q.purge()
        expect_eq(ok.message_count, 5, "purge-ok message-count")
        expect_eq(await drain(q), [], "messages after purge")

    with rep.check("delete if-unused"):
        await fresh()
        q = await ch.declare_queue(uname("q-unused"))
        cch = await conn.channel()
        cq = await cch.get_queue(q.name)

        async def ignore(m):
            pass
        await cq.consume(ignore)
        dch = await conn.channel()
        dq = await dch.get_queue(q.name)
        await expect_channel_error(dq.delete(if_unused=True, if_empty=False), aerr.ChannelPreconditionFailed,
                                   "PRECONDITION_FAILED")
        expect(dch.is_closed, "channel open after 406")
        expect_eq((await ch.declare_queue(q.name, passive=True)).declaration_result.consumer_count, 1,
                  "consumers after refused delete")
        await q.delete(if_unused=False, if_empty=False)
        xch = await conn.channel()
        await expect_channel_error(xch.declare_queue(q.name, passive=True), aerr.ChannelNotFoundEntity,
                                   "NOT_FOUND")

    with rep.check("delete if-empty"):
        await fresh()
        q = await ch.declare_queue(uname("q-empty"))
        await publish(ch.default_exchange, q.name, b"keep")
        dch = await conn.channel()
        dq = await dch.get_queue(q.name)
        await expect_channel_error(dq.delete(if_unused=False, if_empty=True), aerr.ChannelPreconditionFailed,
                                   "PRECONDITION_FAILED")
        expect_eq((await ch.declare_queue(q.name, passive=True)).declaration_result.message_count, 1,
                  "messages after refused delete")
        ok = await q.delete(if_unused=False, if_empty=False)
        expect_eq(ok.message_count, 1, "plain delete: delete-ok message-count")

    with rep.check("406 on redeclare then new channel works"):
        await fresh()
        name = uname("q-redeclare")
        await ch.declare_queue(name, durable=False)
        ech = await conn.channel()
        await expect_channel_error(
            ech.declare_queue(name, durable=True), aerr.ChannelPreconditionFailed,
            "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '%s' in vhost '/': "
            "received 'true' but current is 'false'" % name)
        nch = await conn.channel()
        nq = await nch.declare_queue(name, passive=True)
        expect_eq(nq.name, name, "passive declare on new channel")
        await nq.delete(if_unused=False, if_empty=False)
        await nch.close()

    with rep.check("404 on passive declare then new channel works"):
        await fresh()
        name = uname("q-missing")
        ech = await conn.channel()
        await expect_channel_error(ech.declare_queue(name, passive=True), aerr.ChannelNotFoundEntity,
                                   "NOT_FOUND - no queue '%s' in vhost '/'" % name)
        nch = await conn.channel()
        expect((await nch.declare_queue("", exclusive=True)).name.startswith("amq.gen-"), "declare on new channel")
        await nch.close()

    with rep.check("405 on exclusive queue of another connection then new channel works"):
        await fresh()
        q = await ch.declare_queue(uname("q-excl"), exclusive=True)
        other = await aio_pika.connect(URL, timeout=T)
        try:
            och = await other.channel()
            await expect_channel_error(
                och.declare_queue(q.name, passive=True), aerr.ChannelLockedResource,
                "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s'" % q.name)
            nch = await other.channel()
            expect((await nch.declare_queue("", exclusive=True)).name.startswith("amq.gen-"),
                   "declare on new channel")
        finally:
            await other.close()

    with rep.check("403 on wrong password then new channel works"):
        try:
            bad = await aio_pika.connect("amqp://guest:wrong-password@%s:%d/" % (HOST, PORT), timeout=T)
            await bad.close()
            raise AssertionError("connection with a wrong password was accepted")
        except aerr.ProbableAuthenticationError as e:
            # aiormq raises this only for a connection.close with reply-code 403.
            text = e.args[0] if e.args else ""
            expect(str(text).startswith("ACCESS_REFUSED"), "reply text %r" % (text,))
        good = await aio_pika.connect(URL, timeout=T)
        try:
            gch = await good.channel()
            expect((await gch.declare_queue("", exclusive=True)).name.startswith("amq.gen-"),
                   "declare on new connection's channel")
        finally:
            await good.close()

    with rep.check("5 MiB message"):
        await fresh()
        big = os.urandom(5 * 1024 * 1024)
        q = await ch.declare_queue("", exclusive=True)
        await publish(ch.default_exchange, q.name, big)
        m = await q.get(no_ack=True, fail=False, timeout=30)
        expect(m is not None, "get-empty after publishing 5 MiB")
        expect_eq(len(m.body), len(big), "body length")
        expect(m.body == big, "body differs")

    with rep.check("500 channels"):
        mconn = await aio_pika.connect(URL, timeout=T)
        try:
            chans = [await mconn.channel(publisher_confirms=True) for _ in range(500)]
            expect_eq(len({c.number for c in chans}), 500, "distinct channel numbers")
            q = await chans[0].declare_queue("", exclusive=True)
            for i, c in enumerate(chans):
                await c.default_exchange.publish(Message(b"%d" % i), q.name)  # waits for the confirm
            bodies = await drain(q)
            expect_eq(sorted(int(b) for b in bodies), list(range(500)), "one message per channel")
        finally:
            await mconn.close()

    with rep.check("round-robin consumers"):
        await fresh()
        q = await ch.declare_queue("", exclusive=True)
        per = [0, 0, 0, 0]
        chans = []
        for i in range(4):
            c = await conn.channel()
            cq = await c.get_queue(q.name)

            async def on_message(m, i=i):
                per[i] += 1
                await m.ack()
            await cq.consume(on_message)
            chans.append(c)
        for i in range(40):
            await publish(ch.default_exchange, q.name, b"rr-%d" % i)
        await wait_until(lambda: sum(per) >= 40, T)
        await asyncio.sleep(0.3)
        expect_eq(per, [10, 10, 10, 10], "messages per consumer")
        for c in chans:
            await c.close()

    await conn.close()


asyncio.run(main())
rep.finish()
