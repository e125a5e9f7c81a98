"""A subset of interop/SCENARIO.md with pika's asyncio adapter (AsyncioConnection).

pika's callback API is wrapped in futures so the checks read top to bottom;
every broker reply still arrives through pika's own callbacks on the asyncio loop.
"""
import asyncio
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pika  # noqa: E402
import pika.spec  # noqa: E402
from pika.adapters.asyncio_connection import AsyncioConnection  # noqa: E402
from pika.exceptions import ChannelClosedByBroker  # noqa: E402

from common import (CA, HOST, PORT, TLS_NAME, TLS_PORT, Report, expect, expect_eq,  # noqa: E402
                    tls_context, uname)

rep = Report()
TIMEOUT = 10


def params(tls=False):
    kw = dict(host=HOST, port=PORT, virtual_host="/", credentials=pika.PlainCredentials("guest", "guest"),
              connection_attempts=1, socket_timeout=10)
    if tls:
        kw.update(port=TLS_PORT, ssl_options=pika.SSLOptions(tls_context(), TLS_NAME))
    return pika.ConnectionParameters(**kw)


async def open_connection(tls=False):
    loop = asyncio.get_running_loop()
    opened = loop.create_future()

    def on_open(conn):
        opened.done() or opened.set_result(conn)

    def on_error(conn, err):
        opened.done() or opened.set_exception(err if isinstance(err, BaseException) else Exception(str(err)))

    AsyncioConnection(params(tls), on_open_callback=on_open, on_open_error_callback=on_error,
                      on_close_callback=lambda c, reason: None, custom_ioloop=loop)
    return await asyncio.wait_for(opened, TIMEOUT)


async def close_connection(conn):
    if conn.is_closed:
        return
    done = asyncio.get_running_loop().create_future()
    conn.add_on_close_callback(lambda c, reason: done.done() or done.set_result(reason))
    if not conn.is_closing:
        conn.close()
    await asyncio.wait_for(done, TIMEOUT)


class Chan:
    """A pika Channel whose synchronous methods are awaitable; a broker
    channel.close fails whatever is pending with ChannelClosedByBroker."""

    def __init__(self, ch):
        self.ch = ch
        self.pending = set()
        self.closed_reason = None
        ch.add_on_close_callback(self._on_close)

    @classmethod
    async def open(cls, conn):
        f = asyncio.get_running_loop().create_future()
        conn.channel(on_open_callback=lambda ch: f.set_result(ch))
        return cls(await asyncio.wait_for(f, TIMEOUT))

    def _on_close(self, _ch, reason):
        self.closed_reason = reason
        for f in list(self.pending):
            if not f.done():
                f.set_exception(reason)

    async def _wait(self, f):
        self.pending.add(f)
        try:
            if self.closed_reason is not None and not f.done():
                f.set_exception(self.closed_reason)
            return await asyncio.wait_for(f, TIMEOUT)
        finally:
            self.pending.discard(f)

    async def call(self, name, *args, **kw):
        """Calls channel.<name>(..., callback=...) and returns the reply method."""
        f = asyncio.get_running_loop().create_future()
        getattr(self.ch, name)(*args, callback=lambda frame: f.done() or f.set_result(frame.method), **kw)
        return await self._wait(f)

    async def get(self, queue, auto_ack=False):
        """basic.get → (method, properties, body), or None on get-empty."""
        f = asyncio.get_running_loop().create_future()
        self.ch.add_callback(lambda frame: f.done() or f.set_result(None), [pika.spec.Basic.GetEmpty])
        self.ch.basic_get(queue, lambda ch, m, p, b: f.done() or f.set_result((m, p, b)), auto_ack=auto_ack)
        return await self._wait(f)

    async def sync(self, queue):
        """A passive queue.declare: a round trip after earlier publishes; returns the message count."""
        return (await self.call("queue_declare", queue, passive=True)).message_count

    async def close(self):
        if self.ch.is_open:
            f = asyncio.get_running_loop().create_future()
            self.ch.add_on_close_callback(lambda c, r: f.done() or f.set_result(r))
            self.ch.close()
            await asyncio.wait_for(f, TIMEOUT)


async def wait_until(pred, seconds):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not pred() and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return pred()


async def main():
    try:
        conn = await open_connection()
        ch = await Chan.open(conn)
    except Exception as e:
        rep.fail("connect tcp", "%s: %s" % (type(e).__name__, e))
        rep.finish()

    with rep.check("connect tcp"):
        q = (await ch.call("queue_declare", "", exclusive=True)).queue
        ch.ch.basic_publish("", q, b"tcp")
        m, _p, body = await ch.get(q, auto_ack=True)
        expect_eq(body, b"tcp", "body over tcp")

    with rep.check("connect tls"):
        expect(CA, "WARREN_CA not set")
        tconn = await open_connection(tls=True)
        try:
            tch = await Chan.open(tconn)
            q = (await tch.call("queue_declare", "", exclusive=True)).queue
            tch.ch.basic_publish("", q, b"tls")
            got = await tch.get(q, auto_ack=True)
            expect(got is not None, "get-empty over tls")
            expect_eq(got[2], b"tls", "body over tls")
        finally:
            await close_connection(tconn)

    async def fresh():
        nonlocal ch
        if ch.closed_reason is not None or not ch.ch.is_open:
            ch = await Chan.open(conn)
        return ch

    with rep.check("declare exchanges"):
        await fresh()
        for t in ("direct", "fanout", "topic", "headers"):
            name = uname("x-" + t)
            ok = await ch.call("exchange_declare", name, t)
            expect(isinstance(ok, pika.spec.Exchange.DeclareOk), "no declare-ok for %s" % t)
            await ch.call("exchange_declare", name, t, passive=True)
            await ch.call("exchange_delete", name)

    with rep.check("declare queues"):
        await fresh()
        for kw in (dict(durable=True), dict(exclusive=True), dict(auto_delete=True)):
            name = uname("q")
            ok = await ch.call("queue_declare", name, **kw)
            expect_eq((ok.queue, ok.message_count, ok.consumer_count), (name, 0, 0), "declare-ok for %r" % kw)
            await ch.call("queue_delete", name)
        ok = await ch.call("queue_declare", "", exclusive=True)
        expect(ok.queue.startswith("amq.gen-"), "server-named queue %r" % ok.queue)

    with rep.check("route direct"):
        await fresh()
        ex = uname("x-direct")
        await ch.call("exchange_declare", ex, "direct")
        q1 = (await ch.call("queue_declare", "", exclusive=True)).queue
        q2 = (await ch.call("queue_declare", "", exclusive=True)).queue
        await ch.call("queue_bind", q1, ex, "k1")
        await ch.call("queue_bind", q2, ex, "k2")
        ch.ch.basic_publish(ex, "k1", b"one")
        ch.ch.basic_publish(ex, "k2", b"two")
        ch.ch.basic_publish(ex, "k3", b"none")
        for q, want in ((q1, b"one"), (q2, b"two")):
            got = await ch.get(q, auto_ack=True)
            expect(got is not None and got[2] == want, "queue %s: expected %r, got %r" % (q, want, got and got[2]))
            expect(await ch.get(q) is None, "queue %s: more than one message" % q)
        await ch.call("exchange_delete", ex)

    with rep.check("prefetch honoured"):
        await fresh()
        q = (await ch.call("queue_declare", "", exclusive=True)).queue
        for i in range(10):
            ch.ch.basic_publish("", q, b"p%d" % i)
        expect_eq(await ch.sync(q), 10, "messages waiting")
        pch = await Chan.open(conn)
        await pch.call("basic_qos", prefetch_count=3)
        tags = []
        pch.ch.basic_consume(q, lambda c, m, p, b: tags.append(m.delivery_tag), auto_ack=False)
        await wait_until(lambda: len(tags) >= 3, 5)
        await asyncio.sleep(0.4)  # room for a fourth that must not come
        expect_eq(len(tags), 3, "unacknowledged deliveries with prefetch 3")
        pch.ch.basic_ack(tags[0])
        await wait_until(lambda: len(tags) >= 4, 5)
        await asyncio.sleep(0.4)
        expect_eq(len(tags), 4, "deliveries after one ack")
        await pch.close()

    with rep.check("basic.get"):
        await fresh()
        q = (await ch.call("queue_declare", "", exclusive=True)).queue
        for i in range(3):
            ch.ch.basic_publish("", q, b"get-%d" % i)
        got = await ch.get(q)
        expect(got is not None, "get-empty on a queue with 3 messages")
        m, _p, body = got
        expect_eq((body, m.message_count, m.redelivered), (b"get-0", 2, False), "get-ok (body, message-count, redelivered)")
        ch.ch.basic_ack(m.delivery_tag)

    with rep.check("basic.get empty"):
        await fresh()
        q = (await ch.call("queue_declare", "", exclusive=True)).queue
        got = await ch.get(q)
        expect(got is None, "got a message from an empty queue: %r" % (got,))

    for label, nack in (("reject requeue", False), ("nack requeue", True)):
        with rep.check(label):
            await fresh()
            q = (await ch.call("queue_declare", "", exclusive=True)).queue
            ch.ch.basic_publish("", q, label.encode())
            got = await ch.get(q)
            expect(got is not None, "get-empty after publish")
            expect_eq((got[2], got[0].redelivered), (label.encode(), False), "first get (body, redelivered)")
            if nack:
                ch.ch.basic_nack(got[0].delivery_tag, requeue=True)
            else:
                ch.ch.basic_reject(got[0].delivery_tag, requeue=True)
            got = await ch.get(q)
            expect(got is not None, "message did not come back")
            expect_eq((got[2], got[0].redelivered), (label.encode(), True), "second get (body, redelivered)")
            ch.ch.basic_ack(got[0].delivery_tag)
            expect_eq(await ch.sync(q), 0, "messages left after ack")

    with rep.check("publisher confirms"):
        await fresh()
        q = (await ch.call("queue_declare", "", exclusive=True)).queue
        cch = await Chan.open(conn)
        acked, nacked = set(), set()

        def on_confirm(frame):
            m = frame.method
            tags = range(1, m.delivery_tag + 1) if m.multiple else [m.delivery_tag]
            (acked if isinstance(m, pika.spec.Basic.Ack) else nacked).update(tags)

        await cch.call("confirm_delivery", on_confirm)
        for i in range(100):
            cch.ch.basic_publish("", q, b"c%d" % i)
        await wait_until(lambda: len(acked | nacked) >= 100, TIMEOUT)
        expect(not nacked, "nacked: %r" % sorted(nacked))
        expect_eq(acked, set(range(1, 101)), "acknowledged delivery tags")
        expect_eq(await cch.sync(q), 100, "messages in the queue")
        await cch.close()

    with rep.check("mandatory return"):
        await fresh()
        returned = []
        ch.ch.add_on_return_callback(lambda c, m, p, b: returned.append((m, b)))
        key = uname("unbound")
        ch.ch.basic_publish("amq.direct", key, b"bounce", mandatory=True)
        expect(await wait_until(lambda: returned, 5), "no basic.return within 5 s")
        m, body = returned[0]
        expect_eq((m.reply_code, m.reply_text, m.exchange, m.routing_key, body),
                  (312, "NO_ROUTE", "amq.direct", key, b"bounce"), "basic.return")

    with rep.check("406 on redeclare then new channel works"):
        await fresh()
        q = uname("q-redeclare")
        await ch.call("queue_declare", q, durable=False)
        ech = await Chan.open(conn)
        try:
            await ech.call("queue_declare", q, durable=True)
            raise AssertionError("redeclare with durable=true was accepted")
        except ChannelClosedByBroker as e:
            want = ("PRECONDITION_FAILED - inequivalent arg 'durable' for queue '%s' in vhost '/': "
                    "received 'true' but current is 'false'" % q)
            expect_eq((e.reply_code, e.reply_text), (406, want), "channel.close")
        nch = await Chan.open(conn)
        expect_eq((await nch.call("queue_declare", q, passive=True)).queue, q, "passive declare on new channel")
        await nch.call("queue_delete", q)
        await nch.close()

    with rep.check("5 MiB message"):
        await fresh()
        big = os.urandom(5 * 1024 * 1024)
        q = (await ch.call("queue_declare", "", exclusive=True)).queue
        got = []
        tag = ch.ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
        ch.ch.basic_publish("", q, big)
        expect(await wait_until(lambda: got, 30), "no delivery within 30 s")
        expect_eq(len(got[0]), len(big), "body length")
        expect(got[0] == big, "body differs")
        await ch.call("basic_cancel", tag)

    with rep.check("round-robin consumers"):
        await fresh()
        q = (await ch.call("queue_declare", "", exclusive=True)).queue
        per = [0, 0, 0, 0]
        chans = []
        for i in range(4):
            c = await Chan.open(conn)
            consumed = asyncio.get_running_loop().create_future()

            def on_msg(ch_, m, p, b, i=i):
                per[i] += 1
                ch_.basic_ack(m.delivery_tag)
            c.ch.basic_consume(q, on_msg, callback=lambda frame, f=consumed: f.done() or f.set_result(frame))
            await c._wait(consumed)
            chans.append(c)
        for i in range(40):
            ch.ch.basic_publish("", q, b"rr-%d" % i)
        await wait_until(lambda: sum(per) >= 40, TIMEOUT)
        await asyncio.sleep(0.3)
        expect_eq(per, [10, 10, 10, 10], "messages per consumer")
        for c in chans:
            await c.close()

    await close_connection(conn)


asyncio.run(main())
rep.finish()
