/* The interop scenario (interop/SCENARIO.md) with rabbitmq-c itself
 * (Debian's librabbitmq-dev 0.11), beyond its command-line tools.
 *
 * Every check is run. rabbitmq-c answers nothing by itself: after a channel
 * error this program sends channel.close-ok, as an application must. */
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *HOST;
static int PORT, TLS_PORT;
static const char *CA;
static int passed, failed;
static char why[2048];
static unsigned counter;

#define FAIL(...)                                  \
  do {                                             \
    snprintf(why, sizeof why, __VA_ARGS__);        \
    return 0;                                      \
  } while (0)
#define EXPECT(cond, ...) \
  do {                    \
    if (!(cond)) FAIL(__VA_ARGS__); \
  } while (0)

static void check(const char *name, int (*body)(void)) {
  why[0] = 0;
  if (body() && !why[0]) {
    printf("ok   %s\n", name);
    passed++;
  } else {
    printf("FAIL %s: %s\n", name, why[0] ? why : "failed");
    failed++;
  }
  fflush(stdout);
}

static amqp_bytes_t S(const char *s) { return amqp_cstring_bytes(s); }

static char *uname(const char *prefix) {
  static char names[64][64];
  char *name = names[counter % 64];
  snprintf(name, 64, "%s-%d-%u", prefix, (int)getpid(), ++counter);
  return name;
}

/* Whether the last synchronous call succeeded; on a channel or connection
 * exception, `code` gets its reply code (and a channel's close is answered). */
static int reply_ok(amqp_connection_state_t c, amqp_channel_t ch, int *code) {
  amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return 1;
  if (code) *code = 0;
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
    if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      amqp_channel_close_t *m = r.reply.decoded;
      if (code) *code = m->reply_code;
      amqp_channel_close_ok_t ok;
      amqp_send_method(c, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      amqp_connection_close_t *m = r.reply.decoded;
      if (code) *code = m->reply_code;
    }
  }
  return 0;
}

static amqp_connection_state_t connect_to(const char *password, int tls) {
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s;
  if (tls) {
    s = amqp_ssl_socket_new(c);
    amqp_ssl_socket_set_cacert(s, CA);
    amqp_ssl_socket_set_verify_peer(s, 1);
    amqp_ssl_socket_set_verify_hostname(s, 1);
    if (amqp_socket_open(s, "localhost", TLS_PORT) != AMQP_STATUS_OK) return NULL;
  } else {
    s = amqp_tcp_socket_new(c);
    if (amqp_socket_open(s, HOST, PORT) != AMQP_STATUS_OK) return NULL;
  }
  amqp_rpc_reply_t r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", password);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    amqp_destroy_connection(c);
    return NULL;
  }
  return c;
}

static void disconnect(amqp_connection_state_t c) {
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
}

static amqp_connection_state_t conn;
static amqp_channel_t next_channel = 1;

static amqp_channel_t open_channel(amqp_connection_state_t c, amqp_channel_t n) {
  amqp_channel_open(c, n);
  return reply_ok(c, n, NULL) ? n : 0;
}

static amqp_channel_t channel(void) { return open_channel(conn, next_channel++); }

static void publish_props(amqp_channel_t ch, const char *ex, const char *key, amqp_bytes_t body,
                          int mandatory, amqp_basic_properties_t *props) {
  amqp_basic_publish(conn, ch, S(ex), S(key), mandatory, 0, props, body);
}

static void publish(amqp_channel_t ch, const char *ex, const char *key, const char *body) {
  publish_props(ch, ex, key, S(body), 0, NULL);
}

/* basic.get: 1 with a message (its body in `out`), 0 when empty, -1 on error. */
static int get(amqp_channel_t ch, const char *q, int no_ack, amqp_message_t *out, uint32_t *count,
               uint64_t *tag, int *redelivered) {
  amqp_rpc_reply_t r = amqp_basic_get(conn, ch, S(q), no_ack);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) return -1;
  if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return 0;
  amqp_basic_get_ok_t *ok = r.reply.decoded;
  if (count) *count = ok->message_count;
  if (tag) *tag = ok->delivery_tag;
  if (redelivered) *redelivered = ok->redelivered;
  if (amqp_read_message(conn, ch, out, 0).reply_type != AMQP_RESPONSE_NORMAL) return -1;
  return 1;
}

/* Every body in the queue, joined by '|'. */
static const char *drain(amqp_channel_t ch, const char *q) {
  static char all[8192];
  all[0] = 0;
  amqp_message_t m;
  int first = 1;
  while (get(ch, q, 1, &m, NULL, NULL, NULL) == 1) {
    if (!first) strcat(all, "|");
    strncat(all, m.body.bytes, m.body.len < 1000 ? m.body.len : 1000);
    first = 0;
    amqp_destroy_message(&m);
  }
  return all;
}

static int get_one(amqp_channel_t ch, const char *q, int no_ack, amqp_message_t *m, uint32_t *count,
                   uint64_t *tag, int *redelivered) {
  for (int i = 0; i < 500; i++) {
    int got = get(ch, q, no_ack, m, count, tag, redelivered);
    if (got != 0) return got;
    usleep(10000);
  }
  return 0;
}

static const char *queue_named(amqp_channel_t ch, const char *name, int durable, int exclusive,
                               int auto_delete) {
  static char names[16][256];
  static int n;
  amqp_queue_declare_ok_t *ok =
      amqp_queue_declare(conn, ch, S(name), 0, durable, exclusive, auto_delete, amqp_empty_table);
  if (!ok) return NULL;
  char *out = names[n++ % 16];
  snprintf(out, 256, "%.*s", (int)ok->queue.len, (char *)ok->queue.bytes);
  return out;
}

static const char *queue(amqp_channel_t ch) { return queue_named(ch, uname("q"), 0, 1, 0); }

static amqp_channel_t ch1;

static int connect_tcp(void) {
  conn = connect_to("guest", 0);
  EXPECT(conn, "no connection");
  ch1 = channel();
  EXPECT(ch1, "no channel");
  const char *q = queue_named(ch1, "", 0, 1, 0);
  publish(ch1, "", q, "tcp");
  EXPECT(!strcmp(drain(ch1, q), "tcp"), "bodies over tcp");
  return 1;
}

static int connect_tls(void) {
  amqp_connection_state_t saved = conn;
  amqp_connection_state_t c = connect_to("guest", 1);
  EXPECT(c, "no TLS connection");
  conn = c;
  amqp_channel_t ch = open_channel(c, 1);
  const char *q = queue_named(ch, "", 0, 1, 0);
  publish(ch, "", q, "tls");
  int same = !strcmp(drain(ch, q), "tls");
  conn = saved;
  disconnect(c);
  EXPECT(same, "bodies over tls");
  return 1;
}

static const char *TYPES[] = {"direct", "fanout", "topic", "headers"};
static char EX[4][64];

static int declare_exchanges(void) {
  for (int i = 0; i < 4; i++) {
    snprintf(EX[i], 64, "%s", uname(TYPES[i]));
    amqp_exchange_declare(conn, ch1, S(EX[i]), S(TYPES[i]), 0, 0, 0, 0, amqp_empty_table);
    EXPECT(reply_ok(conn, ch1, NULL), "declare %s", TYPES[i]);
    amqp_exchange_declare(conn, ch1, S(EX[i]), S(TYPES[i]), 1, 0, 0, 0, amqp_empty_table);
    EXPECT(reply_ok(conn, ch1, NULL), "passive declare %s", TYPES[i]);
  }
  return 1;
}

static int declare_queues(void) {
  int flags[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  for (int i = 0; i < 3; i++) {
    const char *name = uname("q");
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, ch1, S(name), 0, flags[i][0], flags[i][1],
                                                     flags[i][2], amqp_empty_table);
    EXPECT(ok && ok->queue.len == strlen(name) && !memcmp(ok->queue.bytes, name, ok->queue.len),
           "declare-ok queue");
    EXPECT(ok->message_count == 0 && ok->consumer_count == 0, "declare-ok counts");
    ok = amqp_queue_declare(conn, ch1, S(name), 0, flags[i][0], flags[i][1], flags[i][2],
                            amqp_empty_table);
    EXPECT(ok, "redeclare");
    amqp_queue_delete(conn, ch1, S(name), 0, 0);
  }
  const char *gen = queue_named(ch1, "", 0, 1, 0);
  EXPECT(gen && !strncmp(gen, "amq.gen-", 8), "a server-named queue");
  return 1;
}

static const char *bound(const char *ex, const char *key, amqp_table_t args) {
  const char *q = queue(ch1);
  amqp_queue_bind(conn, ch1, S(q), S(ex), S(key), args);
  return reply_ok(conn, ch1, NULL) ? q : NULL;
}

static int route_direct(void) {
  const char *q1 = bound(EX[0], "k1", amqp_empty_table), *q2 = bound(EX[0], "k2", amqp_empty_table);
  publish(ch1, EX[0], "k1", "one");
  publish(ch1, EX[0], "k2", "two");
  publish(ch1, EX[0], "k3", "none");
  EXPECT(!strcmp(drain(ch1, q1), "one"), "k1 queue");
  EXPECT(!strcmp(drain(ch1, q2), "two"), "k2 queue");
  return 1;
}

static int route_fanout(void) {
  const char *q1 = bound(EX[1], "ignored", amqp_empty_table), *q2 = bound(EX[1], "", amqp_empty_table);
  publish(ch1, EX[1], "whatever", "fan");
  EXPECT(!strcmp(drain(ch1, q1), "fan"), "first queue");
  EXPECT(!strcmp(drain(ch1, q2), "fan"), "second queue");
  return 1;
}

static int route_topic(void) {
  const char *q1 = bound(EX[2], "a.*.c", amqp_empty_table), *q2 = bound(EX[2], "a.#", amqp_empty_table);
  const char *keys[] = {"a.b.c", "a.b.b.c", "a", "x.b.c", "a.b"};
  for (int i = 0; i < 5; i++) publish(ch1, EX[2], keys[i], keys[i]);
  EXPECT(!strcmp(drain(ch1, q1), "a.b.c"), "a.*.c queue");
  const char *got = drain(ch1, q2);
  EXPECT(!strcmp(got, "a.b.c|a.b.b.c|a|a.b"), "a.# queue: %s", got);
  return 1;
}

static amqp_table_entry_t text_entry(const char *key, const char *value) {
  amqp_table_entry_t e;
  e.key = S(key);
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = S(value);
  return e;
}

static int route_headers(void) {
  amqp_table_entry_t all_e[] = {text_entry("x-match", "all"), text_entry("h1", "v1"), text_entry("h2", "v2")};
  amqp_table_entry_t any_e[] = {text_entry("x-match", "any"), text_entry("h1", "v1"), text_entry("h2", "v2")};
  amqp_table_t all = {3, all_e}, any = {3, any_e};
  const char *qa = bound(EX[3], "", all), *qy = bound(EX[3], "", any);
  amqp_table_entry_t both[] = {text_entry("h1", "v1"), text_entry("h2", "v2"), text_entry("h3", "x")};
  amqp_table_entry_t one[] = {text_entry("h1", "v1")};
  amqp_table_entry_t wrong[] = {text_entry("h1", "v2"), text_entry("h2", "v1")};
  struct { const char *body; amqp_table_t headers; int has; } cases[] = {
      {"both", {3, both}, 1}, {"one", {1, one}, 1}, {"wrong", {2, wrong}, 1}, {"none", {0, NULL}, 0}};
  for (int i = 0; i < 4; i++) {
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    if (cases[i].has) {
      p._flags = AMQP_BASIC_HEADERS_FLAG;
      p.headers = cases[i].headers;
    }
    publish_props(ch1, EX[3], "", S(cases[i].body), 0, &p);
  }
  EXPECT(!strcmp(drain(ch1, qa), "both"), "x-match all queue");
  EXPECT(!strcmp(drain(ch1, qy), "both|one"), "x-match any queue");
  return 1;
}

static int exchange_to_exchange(void) {
  const char *e1 = uname("e1"), *e2 = uname("e2");
  amqp_exchange_declare(conn, ch1, S(e1), S("direct"), 0, 0, 0, 0, amqp_empty_table);
  amqp_exchange_declare(conn, ch1, S(e2), S("fanout"), 0, 0, 0, 0, amqp_empty_table);
  amqp_exchange_bind(conn, ch1, S(e2), S(e1), S("k"), amqp_empty_table);
  EXPECT(reply_ok(conn, ch1, NULL), "exchange.bind");
  const char *q = bound(e2, "", amqp_empty_table);
  publish(ch1, e1, "k", "via-e1");
  publish(ch1, e1, "other", "not-bound");
  EXPECT(!strcmp(drain(ch1, q), "via-e1"), "queue behind e2");
  amqp_exchange_unbind(conn, ch1, S(e2), S(e1), S("k"), amqp_empty_table);
  publish(ch1, e1, "k", "after-unbind");
  EXPECT(!strcmp(drain(ch1, q), ""), "queue behind e2 after exchange.unbind");
  amqp_exchange_delete(conn, ch1, S(e2), 0);
  amqp_exchange_delete(conn, ch1, S(e1), 0);
  return 1;
}

static int queue_unbind(void) {
  const char *q = bound(EX[0], "unbind-me", amqp_empty_table);
  publish(ch1, EX[0], "unbind-me", "before");
  EXPECT(!strcmp(drain(ch1, q), "before"), "queue before unbind");
  amqp_queue_unbind(conn, ch1, S(q), S(EX[0]), S("unbind-me"), amqp_empty_table);
  EXPECT(reply_ok(conn, ch1, NULL), "queue.unbind");
  publish(ch1, EX[0], "unbind-me", "after");
  EXPECT(!strcmp(drain(ch1, q), ""), "queue after unbind");
  return 1;
}

static unsigned char ALL_BYTES[256];

static int field_equal(amqp_field_value_t *a, amqp_field_value_t *b) {
  if (a->kind != b->kind) return 0;
  switch (a->kind) {
    case AMQP_FIELD_KIND_BOOLEAN: return a->value.boolean == b->value.boolean;
    case AMQP_FIELD_KIND_I8: return a->value.i8 == b->value.i8;
    case AMQP_FIELD_KIND_U8: return a->value.u8 == b->value.u8;
    case AMQP_FIELD_KIND_I16: return a->value.i16 == b->value.i16;
    case AMQP_FIELD_KIND_U16: return a->value.u16 == b->value.u16;
    case AMQP_FIELD_KIND_I32: return a->value.i32 == b->value.i32;
    case AMQP_FIELD_KIND_U32: return a->value.u32 == b->value.u32;
    case AMQP_FIELD_KIND_I64: return a->value.i64 == b->value.i64;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: return a->value.u64 == b->value.u64;
    case AMQP_FIELD_KIND_F32: return a->value.f32 == b->value.f32;
    case AMQP_FIELD_KIND_F64: return a->value.f64 == b->value.f64;
    case AMQP_FIELD_KIND_DECIMAL:
      return a->value.decimal.decimals == b->value.decimal.decimals &&
             a->value.decimal.value == b->value.decimal.value;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
      return a->value.bytes.len == b->value.bytes.len &&
             !memcmp(a->value.bytes.bytes, b->value.bytes.bytes, a->value.bytes.len);
    case AMQP_FIELD_KIND_VOID: return 1;
    case AMQP_FIELD_KIND_ARRAY:
      if (a->value.array.num_entries != b->value.array.num_entries) return 0;
      for (int i = 0; i < a->value.array.num_entries; i++)
        if (!field_equal(&a->value.array.entries[i], &b->value.array.entries[i])) return 0;
      return 1;
    case AMQP_FIELD_KIND_TABLE:
      if (a->value.table.num_entries != b->value.table.num_entries) return 0;
      for (int i = 0; i < a->value.table.num_entries; i++) {
        amqp_table_entry_t *x = &a->value.table.entries[i], *y = &b->value.table.entries[i];
        if (x->key.len != y->key.len || memcmp(x->key.bytes, y->key.bytes, x->key.len) ||
            !field_equal(&x->value, &y->value))
          return 0;
      }
      return 1;
  }
  return 0;
}

static int round_trip(void) {
  for (int i = 0; i < 256; i++) ALL_BYTES[i] = (unsigned char)i;
  amqp_bytes_t all_bytes = {256, ALL_BYTES};
  amqp_table_entry_t nested_e[] = {text_entry("b", "c")};
  amqp_field_value_t array_v[3];
  array_v[0].kind = AMQP_FIELD_KIND_I32; array_v[0].value.i32 = 1;
  array_v[1].kind = AMQP_FIELD_KIND_UTF8; array_v[1].value.bytes = S("two");
  array_v[2].kind = AMQP_FIELD_KIND_BOOLEAN; array_v[2].value.boolean = 1;
  amqp_table_entry_t h[19];
  int n = 0;
#define ENTRY(k, kindv, field, v) \
  h[n].key = S(k); h[n].value.kind = kindv; h[n].value.value.field = v; n++
  ENTRY("bool", AMQP_FIELD_KIND_BOOLEAN, boolean, 1);
  ENTRY("int8", AMQP_FIELD_KIND_I8, i8, -128);
  ENTRY("uint8", AMQP_FIELD_KIND_U8, u8, 255);
  ENTRY("int16", AMQP_FIELD_KIND_I16, i16, -32768);
  ENTRY("uint16", AMQP_FIELD_KIND_U16, u16, 65535);
  ENTRY("int32", AMQP_FIELD_KIND_I32, i32, -2147483647 - 1);
  ENTRY("uint32", AMQP_FIELD_KIND_U32, u32, 4294967295u);
  ENTRY("int64", AMQP_FIELD_KIND_I64, i64, -9223372036854775807LL - 1);
  ENTRY("uint64", AMQP_FIELD_KIND_U64, u64, 18446744073709551615ULL);
  ENTRY("float", AMQP_FIELD_KIND_F32, f32, 1.5f);
  ENTRY("double", AMQP_FIELD_KIND_F64, f64, -2.25);
  ENTRY("long-string", AMQP_FIELD_KIND_UTF8, bytes, S("h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93"));
  ENTRY("bytes", AMQP_FIELD_KIND_BYTES, bytes, all_bytes);
  ENTRY("timestamp", AMQP_FIELD_KIND_TIMESTAMP, u64, 1704164645);
  h[n].key = S("decimal"); h[n].value.kind = AMQP_FIELD_KIND_DECIMAL;
  h[n].value.value.decimal.decimals = 2; h[n].value.value.decimal.value = 12345; n++;
  h[n].key = S("void"); h[n].value.kind = AMQP_FIELD_KIND_VOID; n++;
  h[n].key = S("table"); h[n].value.kind = AMQP_FIELD_KIND_TABLE;
  h[n].value.value.table.num_entries = 1; h[n].value.value.table.entries = nested_e; n++;
  h[n].key = S("array"); h[n].value.kind = AMQP_FIELD_KIND_ARRAY;
  h[n].value.value.array.num_entries = 3; h[n].value.value.array.entries = array_v; n++;
  amqp_basic_properties_t p;
  memset(&p, 0, sizeof p);
  p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_HEADERS_FLAG |
             AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
             AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
             AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_USER_ID_FLAG |
             AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_CLUSTER_ID_FLAG;
  p.content_type = S("application/octet-stream");
  p.content_encoding = S("identity");
  p.headers.num_entries = n;
  p.headers.entries = h;
  p.delivery_mode = 2;
  p.priority = 7;
  p.correlation_id = S("corr-1");
  p.reply_to = S("reply-q");
  p.expiration = S("60000");
  p.message_id = S("msg-1");
  p.timestamp = 1704164645;
  p.type = S("kind");
  p.user_id = S("guest");
  p.app_id = S("c-interop");
  p.cluster_id = S("cluster-1");
  const char *q = queue(ch1);
  publish_props(ch1, "", q, all_bytes, 0, &p);
  amqp_message_t m;
  EXPECT(get_one(ch1, q, 1, &m, NULL, NULL, NULL) == 1, "the message");
  EXPECT(m.body.len == 256 && !memcmp(m.body.bytes, ALL_BYTES, 256), "body");
  amqp_basic_properties_t *g = &m.properties;
  EXPECT(g->_flags == p._flags, "property flags %x, want %x", g->_flags, p._flags);
#define SAME(f) (g->f.len == p.f.len && !memcmp(g->f.bytes, p.f.bytes, p.f.len))
  EXPECT(SAME(content_type) && SAME(content_encoding) && SAME(correlation_id) && SAME(reply_to) &&
             SAME(expiration) && SAME(message_id) && SAME(type) && SAME(user_id) && SAME(app_id) &&
             SAME(cluster_id),
         "string properties");
  EXPECT(g->delivery_mode == 2 && g->priority == 7 && g->timestamp == 1704164645, "number properties");
  amqp_field_value_t want = {AMQP_FIELD_KIND_TABLE, {.table = p.headers}};
  amqp_field_value_t have = {AMQP_FIELD_KIND_TABLE, {.table = g->headers}};
  EXPECT(field_equal(&have, &want), "headers (every value and type)");
  amqp_destroy_message(&m);
  return 1;
}

static int wait_delivery(amqp_connection_state_t c, amqp_envelope_t *e, int millis) {
  struct timeval tv = {millis / 1000, (millis % 1000) * 1000};
  amqp_maybe_release_buffers(c);
  amqp_rpc_reply_t r = amqp_consume_message(c, e, &tv, 0);
  return r.reply_type == AMQP_RESPONSE_NORMAL;
}

static int prefetch(void) {
  amqp_connection_state_t c = connect_to("guest", 0);
  EXPECT(c, "connection");
  amqp_connection_state_t saved = conn;
  conn = c;
  amqp_channel_t ch = open_channel(c, 1);
  const char *q = queue(ch);
  char body[8];
  for (int i = 0; i < 10; i++) {
    snprintf(body, sizeof body, "%d", i);
    publish(ch, "", q, body);
  }
  amqp_basic_qos(c, ch, 0, 3, 0);
  amqp_basic_consume(c, ch, S(q), S("prefetch"), 0, 0, 0, amqp_empty_table);
  uint64_t first = 0;
  int got = 0;
  amqp_envelope_t e;
  while (got < 3 && wait_delivery(c, &e, 5000)) {
    if (!got) first = e.delivery_tag;
    got++;
    amqp_destroy_envelope(&e);
  }
  int more = wait_delivery(c, &e, 400);
  if (more) amqp_destroy_envelope(&e);
  amqp_basic_ack(c, ch, first, 0);
  int after = wait_delivery(c, &e, 5000);
  if (after) amqp_destroy_envelope(&e);
  int extra = wait_delivery(c, &e, 400);
  if (extra) amqp_destroy_envelope(&e);
  conn = saved;
  disconnect(c);
  EXPECT(got == 3 && !more, "3 deliveries within the prefetch, got %d (+%d)", got, more);
  EXPECT(after && !extra, "exactly one more after an ack");
  return 1;
}

static int basic_get(void) {
  const char *q = queue(ch1);
  publish(ch1, "", q, "first");
  publish(ch1, "", q, "second");
  amqp_message_t m;
  uint32_t count = 99;
  EXPECT(get_one(ch1, q, 1, &m, &count, NULL, NULL) == 1, "a message");
  int right = m.body.len == 5 && !memcmp(m.body.bytes, "first", 5);
  amqp_destroy_message(&m);
  EXPECT(right, "body");
  EXPECT(count == 1, "get-ok message-count %u", count);
  return 1;
}

static int basic_get_empty(void) {
  amqp_message_t m;
  EXPECT(get(ch1, queue(ch1), 1, &m, NULL, NULL, NULL) == 0, "get-empty");
  return 1;
}

static int requeue(int nack) {
  const char *q = queue(ch1);
  publish(ch1, "", q, "again");
  amqp_message_t m;
  uint64_t tag;
  EXPECT(get_one(ch1, q, 0, &m, NULL, &tag, NULL) == 1, "a message");
  amqp_destroy_message(&m);
  if (nack) amqp_basic_nack(conn, ch1, tag, 0, 1);
  else amqp_basic_reject(conn, ch1, tag, 1);
  int redelivered = 0;
  EXPECT(get_one(ch1, q, 1, &m, NULL, NULL, &redelivered) == 1, "the message again");
  int right = m.body.len == 5 && !memcmp(m.body.bytes, "again", 5);
  amqp_destroy_message(&m);
  EXPECT(right && redelivered, "redelivered=true");
  return 1;
}
static int reject_requeue(void) { return requeue(0); }
static int nack_requeue(void) { return requeue(1); }

/* Frames on `ch` until `acked` publishes are acknowledged (or a nack/return). */
static int confirms(void) {
  amqp_channel_t ch = channel();
  amqp_confirm_select(conn, ch);
  EXPECT(reply_ok(conn, ch, NULL), "confirm.select");
  const char *q = queue(ch);
  for (int i = 0; i < 100; i++) publish(ch, "", q, "c");
  uint64_t acked = 0;
  int nacked = 0;
  while (acked < 100) {
    amqp_frame_t f;
    struct timeval tv = {10, 0};
    EXPECT(amqp_simple_wait_frame_noblock(conn, &f, &tv) == AMQP_STATUS_OK, "acks arrive (%lu)",
           (unsigned long)acked);
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      amqp_basic_ack_t *a = f.payload.method.decoded;
      acked = a->multiple ? a->delivery_tag : acked + 1;
    } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
      nacked++;
      break;
    }
  }
  EXPECT(acked == 100 && !nacked, "100 acks, %d nacks", nacked);
  return 1;
}

static int mandatory_return(void) {
  amqp_channel_t ch = channel();
  publish_props(ch, "amq.direct", uname("unbound"), S("lost"), 1, NULL);
  amqp_frame_t f;
  struct timeval tv = {10, 0};
  EXPECT(amqp_simple_wait_frame_noblock(conn, &f, &tv) == AMQP_STATUS_OK, "a frame");
  EXPECT(f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_RETURN_METHOD,
         "basic.return");
  amqp_basic_return_t *r = f.payload.method.decoded;
  EXPECT(r->reply_code == 312 && r->reply_text.len == 8 && !memcmp(r->reply_text.bytes, "NO_ROUTE", 8),
         "312 NO_ROUTE");
  amqp_message_t m;
  EXPECT(amqp_read_message(conn, ch, &m, 0).reply_type == AMQP_RESPONSE_NORMAL, "the returned message");
  int right = m.body.len == 4 && !memcmp(m.body.bytes, "lost", 4);
  amqp_destroy_message(&m);
  EXPECT(right, "returned body");
  return 1;
}

static int tx(int commit) {
  amqp_channel_t ch = channel();
  const char *q = queue(ch);
  amqp_tx_select(conn, ch);
  publish(ch, "", q, "in-tx");
  amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, ch, S(q), 1, 0, 0, 0, amqp_empty_table);
  EXPECT(ok && ok->message_count == 0, "nothing before the end of the transaction");
  if (commit) amqp_tx_commit(conn, ch);
  else {
    amqp_tx_rollback(conn, ch);
    amqp_tx_commit(conn, ch);
  }
  EXPECT(reply_ok(conn, ch, NULL), "tx.commit / tx.rollback");
  const char *got = drain(ch, q);
  EXPECT(!strcmp(got, commit ? "in-tx" : ""), "after the transaction: %s", got);
  return 1;
}
static int tx_commit(void) { return tx(1); }
static int tx_rollback(void) { return tx(0); }

static uint32_t ready(amqp_channel_t ch, const char *q) {
  amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, ch, S(q), 1, 0, 0, 0, amqp_empty_table);
  return ok ? ok->message_count : 0;
}

static int purge(void) {
  const char *q = queue(ch1);
  for (int i = 0; i < 3; i++) publish(ch1, "", q, "p");
  for (int i = 0; i < 500 && ready(ch1, q) < 3; i++) usleep(10000);
  amqp_queue_purge_ok_t *ok = amqp_queue_purge(conn, ch1, S(q));
  EXPECT(ok && ok->message_count == 3, "purge-ok message-count");
  return 1;
}

static int delete_if(int unused) {
  amqp_channel_t ch = channel();
  const char *q = queue_named(ch, uname("q"), 0, 0, 0);
  amqp_channel_t other = channel();
  if (unused) amqp_basic_consume(conn, other, S(q), S("in-use"), 0, 1, 0, amqp_empty_table);
  else {
    publish(ch, "", q, "x");
    for (int i = 0; i < 500 && ready(ch, q) < 1; i++) usleep(10000);
  }
  int code = 0;
  amqp_queue_delete(conn, ch, S(q), unused, !unused);
  EXPECT(!reply_ok(conn, ch, &code) && code == 406, "406, got %d", code);
  amqp_channel_t again = channel();
  amqp_queue_delete(conn, again, S(q), 0, 0);
  EXPECT(reply_ok(conn, again, NULL), "a plain delete");
  return 1;
}
static int delete_if_unused(void) { return delete_if(1); }
static int delete_if_empty(void) { return delete_if(0); }

static int then_new_channel_works(void) {
  amqp_channel_t ch = channel();
  EXPECT(ch, "a new channel");
  const char *q = queue_named(ch, "", 0, 1, 0);
  publish(ch, "", q, "works");
  EXPECT(!strcmp(drain(ch, q), "works"), "the new channel");
  return 1;
}

static int expect_error(int want, amqp_channel_t ch) {
  int code = 0;
  EXPECT(!reply_ok(conn, ch, &code) && code == want, "%d, got %d", want, code);
  return then_new_channel_works();
}

static int on_redeclare(void) {
  amqp_channel_t ch = channel();
  const char *q = uname("q");
  amqp_queue_declare(conn, ch, S(q), 0, 0, 0, 0, amqp_empty_table);
  amqp_queue_declare(conn, ch, S(q), 0, 1, 0, 0, amqp_empty_table);
  int ok = expect_error(406, ch);
  amqp_queue_delete(conn, ch1, S(q), 0, 0);
  return ok;
}

static int on_passive(void) {
  amqp_channel_t ch = channel();
  amqp_queue_declare(conn, ch, S(uname("missing")), 1, 0, 0, 0, amqp_empty_table);
  return expect_error(404, ch);
}

static int on_exclusive(void) {
  amqp_connection_state_t other = connect_to("guest", 0);
  EXPECT(other, "another connection");
  amqp_connection_state_t saved = conn;
  conn = other;
  amqp_channel_t och = open_channel(other, 1);
  const char *q = queue(och);
  conn = saved;
  amqp_channel_t ch = channel();
  amqp_queue_declare(conn, ch, S(q), 0, 0, 1, 0, amqp_empty_table);
  int ok = expect_error(405, ch);
  disconnect(other);
  return ok;
}

static int on_wrong_password(void) {
  amqp_connection_state_t c = connect_to("wrong", 0);
  EXPECT(!c, "logged in with a wrong password");
  return then_new_channel_works();
}

static int five_mib(void) {
  size_t len = 5 * 1024 * 1024;
  unsigned char *body = malloc(len);
  for (size_t i = 0; i < len; i++) body[i] = (unsigned char)i;
  const char *q = queue(ch1);
  amqp_bytes_t b = {len, body};
  publish_props(ch1, "", q, b, 0, NULL);
  amqp_message_t m;
  int got = get_one(ch1, q, 1, &m, NULL, NULL, NULL);
  int same = got == 1 && m.body.len == len && !memcmp(m.body.bytes, body, len);
  if (got == 1) amqp_destroy_message(&m);
  free(body);
  EXPECT(same, "identical bytes");
  return 1;
}

static int five_hundred_channels(void) {
  amqp_connection_state_t c = connect_to("guest", 0);
  EXPECT(c, "connection");
  amqp_connection_state_t saved = conn;
  conn = c;
  for (int i = 1; i <= 500; i++) {
    if (!open_channel(c, i)) {
      conn = saved;
      FAIL("channel %d", i);
    }
  }
  const char *q = queue_named(1, "", 0, 1, 0);
  char body[8];
  for (int i = 1; i <= 500; i++) {
    snprintf(body, sizeof body, "%d", i);
    publish(i, "", q, body);
  }
  int count = 0;
  for (int tries = 0; tries < 500 && count < 500; tries++) {
    amqp_message_t m;
    while (get(1, q, 1, &m, NULL, NULL, NULL) == 1) {
      count++;
      amqp_destroy_message(&m);
    }
    if (count < 500) usleep(10000);
  }
  conn = saved;
  disconnect(c);
  EXPECT(count == 500, "one message per channel, got %d", count);
  return 1;
}

static int round_robin(void) {
  amqp_connection_state_t c = connect_to("guest", 0);
  EXPECT(c, "connection");
  amqp_connection_state_t saved = conn;
  conn = c;
  amqp_channel_t ch = open_channel(c, 1);
  const char *q = queue(ch);
  const char *tags[] = {"c0", "c1", "c2", "c3"};
  for (int i = 0; i < 4; i++) amqp_basic_consume(c, ch, S(q), S(tags[i]), 0, 1, 0, amqp_empty_table);
  for (int i = 0; i < 40; i++) publish(ch, "", q, "r");
  int counts[4] = {0};
  amqp_envelope_t e;
  for (int got = 0; got < 40 && wait_delivery(c, &e, 5000); got++) {
    for (int i = 0; i < 4; i++)
      if (e.consumer_tag.len == 2 && !memcmp(e.consumer_tag.bytes, tags[i], 2)) counts[i]++;
    amqp_destroy_envelope(&e);
  }
  conn = saved;
  disconnect(c);
  EXPECT(counts[0] == 10 && counts[1] == 10 && counts[2] == 10 && counts[3] == 10,
         "messages per consumer %d %d %d %d", counts[0], counts[1], counts[2], counts[3]);
  return 1;
}

int main(void) {
  HOST = getenv("WARREN_HOST");
  PORT = atoi(getenv("WARREN_PORT"));
  TLS_PORT = atoi(getenv("WARREN_TLS_PORT"));
  CA = getenv("WARREN_CA");
  check("connect tcp", connect_tcp);
  if (!conn) {
    printf("%d passed, %d failed\n", passed, failed);
    return 1;
  }
  check("connect tls", connect_tls);
  check("declare exchanges", declare_exchanges);
  check("declare queues", declare_queues);
  check("route direct", route_direct);
  check("route fanout", route_fanout);
  check("route topic", route_topic);
  check("route headers", route_headers);
  check("exchange-to-exchange binding", exchange_to_exchange);
  check("queue unbind", queue_unbind);
  check("properties and headers round trip", round_trip);
  check("prefetch honoured", prefetch);
  check("basic.get", basic_get);
  check("basic.get empty", basic_get_empty);
  check("reject requeue", reject_requeue);
  check("nack requeue", nack_requeue);
  check("publisher confirms", confirms);
  check("mandatory return", mandatory_return);
  check("tx commit", tx_commit);
  check("tx rollback", tx_rollback);
  check("purge", purge);
  check("delete if-unused", delete_if_unused);
  check("delete if-empty", delete_if_empty);
  check("406 on redeclare then new channel works", on_redeclare);
  check("404 on passive declare then new channel works", on_passive);
  check("405 on exclusive queue of another connection then new channel works", on_exclusive);
  check("403 on wrong password then new channel works", on_wrong_password);
  check("5 MiB message", five_mib);
  check("500 channels", five_hundred_channels);
  check("round-robin consumers", round_robin);
  disconnect(conn);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
