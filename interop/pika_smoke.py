"""Smoke test with a stock client (pika): starts Warren with a TCP and a TLS
listener (certificates from a CA made here with trustme), publishes with
confirms, consumes with acks, over both, then stops Warren with SIGTERM.

Usage: pika_smoke.py PATH_TO_WARREN_BINARY
"""
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import pika
import trustme

checks = []


def check(name, ok):
    checks.append((name, bool(ok)))
    print(("ok   " if ok else "FAIL ") + name, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"warren did not listen on {port}")


def exercise(params, label):
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    check(f"{label}: server-named queue", q.startswith("amq.gen-"))
    for i in range(100):
        ch.basic_publish("", q, f"m{i}".encode(),
                         pika.BasicProperties(delivery_mode=2, headers={"i": i}),
                         mandatory=True)
    check(f"{label}: 100 confirmed publishes", True)
    try:
        ch.basic_publish("amq.direct", "nobody", b"x", mandatory=True)
        check(f"{label}: unroutable mandatory publish is returned", False)
    except pika.exceptions.UnroutableError:
        check(f"{label}: unroutable mandatory publish is returned", True)
    ch.basic_qos(prefetch_count=10)
    got = []
    for method, props, body in ch.consume(q, inactivity_timeout=5):
        if method is None:
            break
        got.append((body, props.headers["i"]))
        ch.basic_ack(method.delivery_tag)
        if len(got) == 100:
            break
    ch.cancel()
    check(f"{label}: consumed all 100 in order with headers",
          got == [(f"m{i}".encode(), i) for i in range(100)])
    conn.close()
    check(f"{label}: clean close", conn.is_closed)


def main():
    warren = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(os.path.join(tmp, "server.pem"))
        cert.private_key_pem.write_to_path(os.path.join(tmp, "server.key"))
        ca.cert_pem.write_to_path(os.path.join(tmp, "ca.pem"))
        tcp_port, tls_port = free_port(), free_port()
        config = os.path.join(tmp, "warren.toml")
        with open(config, "w") as f:
            f.write(f"""
data_dir = "{tmp}/data"
[listeners]
tcp = ["127.0.0.1:{tcp_port}"]
tls = ["127.0.0.1:{tls_port}"]
[tls]
cert = "{tmp}/server.pem"
key = "{tmp}/server.key"
""")
        server = subprocess.Popen([warren, "--config", config], stderr=subprocess.DEVNULL)
        try:
            wait_for(tcp_port)
            exercise(pika.ConnectionParameters("127.0.0.1", tcp_port), "tcp")
            context = ssl.create_default_context(cafile=os.path.join(tmp, "ca.pem"))
            exercise(pika.ConnectionParameters(
                "localhost", tls_port, ssl_options=pika.SSLOptions(context, "localhost")), "tls")
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=15)
        check("SIGTERM: exit code 0", code == 0)
    failed = sum(1 for _, ok in checks if not ok)
    print(f"{len(checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
