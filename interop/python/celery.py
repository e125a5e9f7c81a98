"""Celery 5 against Warren: broker_url = WARREN_URL, result_backend rpc://.

Run without arguments it starts a worker (this same file with the argument
`worker`, `--pool=solo`) as a subprocess, sends it tasks and checks the
results; the worker is stopped at the end.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts

# This file is named like the package it tests: keep its directory (for
# common.py) but behind site-packages, so `import celery` is the library.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE] + [HERE]

import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import celery  # noqa: E402
from celery import Celery, group  # noqa: E402

from common import URL, Report, expect, expect_eq  # noqa: E402

assert os.path.abspath(celery.__file__) != os.path.abspath(__file__), "imported this script instead of celery"

app = Celery("warren_interop", broker=URL, backend="rpc://")
app.conf.update(
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=3,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=4,
)


@app.task(name="interop.add")
def add(x, y):
    return x + y


@app.task(name="interop.echo")
def echo(value):
    return value


@app.task(name="interop.boom")
def boom(text):
    raise ValueError(text)


def worker():
    app.worker_main(["worker", "--pool=solo", "--concurrency=1", "--loglevel=WARNING",
                     "--without-gossip", "--without-mingle", "--hostname=interop@%h"])


def main():
    rep = Report()
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker"],
                            stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        with rep.check("celery worker ping"):
            replies = []
            deadline = time.monotonic() + 30
            while not replies and time.monotonic() < deadline:
                expect(proc.poll() is None, "worker exited with %s" % proc.returncode)
                replies = app.control.ping(timeout=1.0)
            expect(replies, "no reply to control ping within 30 s")
            (name, reply), = replies[0].items()
            expect(name.startswith("interop@"), "reply from %r" % name)
            expect_eq(reply, {"ok": "pong"}, "ping reply")

        with rep.check("celery task round trip"):
            r = add.delay(2, 3)
            expect_eq(r.get(timeout=30), 5, "add(2, 3)")

        with rep.check("celery rpc result"):
            value = {"s": "h\u00e9llo \u2713", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
            r = echo.apply_async(args=[value])
            expect_eq(r.get(timeout=30), value, "echo result")
            expect_eq(r.state, "SUCCESS", "state")
            expect(r.successful(), "not successful")

        with rep.check("celery task error"):
            r = boom.delay("kaboom")
            try:
                r.get(timeout=30)
                raise AssertionError("no exception from a failing task")
            except ValueError as e:
                expect_eq(str(e), "kaboom", "exception text")
            expect_eq(r.state, "FAILURE", "state")

        with rep.check("celery group"):
            res = group(add.s(i, i) for i in range(10))()
            expect_eq(res.get(timeout=30), [2 * i for i in range(10)], "group results")

        with rep.check("celery countdown"):
            t0 = time.monotonic()
            r = add.apply_async((20, 22), countdown=1)
            expect_eq(r.get(timeout=30), 42, "add(20, 22) with countdown=1")
            expect(time.monotonic() - t0 >= 0.9, "ran before its countdown")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if rep.failed or os.environ.get("INTEROP_DEBUG"):
            with open(log.name, errors="replace") as f:
                tail = f.read()[-4000:]
            print("---- celery worker log (tail) ----\n" + tail, file=sys.stderr)
        os.unlink(log.name)
    rep.finish()


if __name__ == "__main__":
    if sys.argv[1:] == ["worker"]:
        worker()
    else:
        main()
