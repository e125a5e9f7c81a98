"""Shared helpers for the Python interop clients (see interop/SCENARIO.md).

Every check prints `ok   <name>` or `FAIL <name>: <why>`; `Report.finish()`
prints `N passed, M failed` and exits 1 if anything failed.
"""
import os
import ssl
import struct
import sys
import traceback
import uuid

HOST = os.environ.get("WARREN_HOST", "127.0.0.1")
PORT = int(os.environ.get("WARREN_PORT", "5672"))
TLS_PORT = int(os.environ.get("WARREN_TLS_PORT", "5671"))
CA = os.environ.get("WARREN_CA", "")
URL = os.environ.get("WARREN_URL", "amqp://guest:guest@%s:%d/%%2f" % (HOST, PORT))
TLS_NAME = "localhost"

# All 256 byte values, used as a body in several checks.
ALL_BYTES = bytes(range(256))


def tls_context():
    """A client context that verifies the server against WARREN_CA as `localhost`."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=CA)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def uname(prefix):
    """A name unique to this run."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class CheckFailed(AssertionError):
    pass


def expect(cond, why):
    if not cond:
        raise CheckFailed(why)


def expect_eq(actual, expected, what):
    if actual != expected:
        raise CheckFailed("%s: expected %r, got %r" % (what, _short(expected), _short(actual)))


def _short(v):
    r = v
    if isinstance(v, (bytes, bytearray)) and len(v) > 80:
        r = "<%d bytes %r...>" % (len(v), bytes(v[:16]))
    return r


class _Check:
    def __init__(self, report, name):
        self.report = report
        self.name = name
        self.done = False

    def rename(self, name):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.report.ok(self.name)
        elif issubclass(et, (KeyboardInterrupt, SystemExit)):
            return False
        else:
            if isinstance(ev, CheckFailed):
                why = str(ev)
            else:
                why = "%s: %s" % (et.__name__, ev)
            if os.environ.get("INTEROP_DEBUG"):
                traceback.print_exception(et, ev, tb, file=sys.stderr)
            self.report.fail(self.name, why)
        return True


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name):
        """`with report.check(name):` — ok if the block ends normally, FAIL on any exception."""
        return _Check(self, name)

    def ok(self, name):
        self.passed += 1
        print("ok   %s" % name, flush=True)

    def fail(self, name, why):
        self.failed += 1
        why = " ".join(str(why).split())
        if len(why) > 600:
            why = why[:600] + "..."
        print("FAIL %s: %s" % (name, why), flush=True)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.stdout.flush()
        sys.stderr.flush()
        code = 1 if self.failed or not self.passed else 0
        os._exit(code)  # do not hang on library threads at exit


# ---- raw content-header decoding, to compare header field types on the wire ----

_PROPS = [
    # (name, kind) in flag order, bit 15 downwards
    ("content_type", "shortstr"),
    ("content_encoding", "shortstr"),
    ("headers", "table"),
    ("delivery_mode", "octet"),
    ("priority", "octet"),
    ("correlation_id", "shortstr"),
    ("reply_to", "shortstr"),
    ("expiration", "shortstr"),
    ("message_id", "shortstr"),
    ("timestamp", "u64"),
    ("type", "shortstr"),
    ("user_id", "shortstr"),
    ("app_id", "shortstr"),
    ("cluster_id", "shortstr"),
]


def parse_basic_properties(raw):
    """Parses basic-class properties (property flags first) into
    {name: value}; the headers value is the raw table octets (without the
    length prefix)."""
    off = 0
    flags = []
    while True:
        (f,) = struct.unpack_from(">H", raw, off)
        off += 2
        flags.append(f)
        if not f & 1:
            break
    out = {}
    for i, (name, kind) in enumerate(_PROPS):
        word, bit = divmod(i, 15)
        if word >= len(flags) or not flags[word] & (1 << (15 - bit)):
            continue
        if kind == "shortstr":
            n = raw[off]
            out[name] = bytes(raw[off + 1:off + 1 + n])
            off += 1 + n
        elif kind == "octet":
            out[name] = raw[off]
            off += 1
        elif kind == "u64":
            (out[name],) = struct.unpack_from(">Q", raw, off)
            off += 8
        else:
            (n,) = struct.unpack_from(">I", raw, off)
            out[name] = bytes(raw[off + 4:off + 4 + n])
            off += 4 + n
    return out


_FIXED = {
    b"t": ">B", b"b": ">b", b"B": ">B", b"s": ">h", b"u": ">H", b"I": ">i", b"i": ">I",
    b"l": ">q", b"L": ">Q", b"f": ">f", b"d": ">d", b"T": ">Q",
}


def typed_value(raw, off):
    """Decodes one field value into (type code, value), keeping the wire type."""
    tag = raw[off:off + 1]
    off += 1
    if tag in _FIXED:
        fmt = _FIXED[tag]
        (v,) = struct.unpack_from(fmt, raw, off)
        return (tag.decode(), v), off + struct.calcsize(fmt)
    if tag == b"D":
        scale, v = struct.unpack_from(">BI", raw, off)
        return ("D", (scale, v)), off + 5
    if tag == b"V":
        return ("V", None), off
    if tag in (b"S", b"x", b"A", b"F"):
        (n,) = struct.unpack_from(">I", raw, off)
        body = bytes(raw[off + 4:off + 4 + n])
        off += 4 + n
        if tag == b"F":
            return ("F", typed_table(body)), off
        if tag == b"A":
            items, i = [], 0
            while i < len(body):
                v, i = typed_value(body, i)
                items.append(v)
            return ("A", items), off
        return (tag.decode(), body), off
    raise ValueError("unknown field type %r at %d" % (tag, off - 1))


def typed_table(body):
    """Decodes table octets (without length prefix) into an ordered list of (key, (type, value))."""
    items, off = [], 0
    while off < len(body):
        n = body[off]
        key = body[off + 1:off + 1 + n].decode("utf-8", "replace")
        off += 1 + n
        v, off = typed_value(body, off)
        items.append((key, v))
    return items


def compare_typed_tables(got_raw, want_raw, what="headers"):
    """Raises CheckFailed naming the first differing entry (type or value)."""
    if got_raw == want_raw:
        return
    got = dict(typed_table(got_raw))
    want = dict(typed_table(want_raw))
    for k, v in want.items():
        if k not in got:
            raise CheckFailed("%s: entry %r missing" % (what, k))
        if got[k] != v:
            raise CheckFailed("%s: entry %r: sent %r, got %r" % (what, k, v, got[k]))
    extra = set(got) - set(want)
    if extra:
        raise CheckFailed("%s: unexpected entries %r" % (what, sorted(extra)))
    raise CheckFailed("%s: octets differ (entry order?) sent %r got %r" % (what, want_raw, got_raw))
