// The interop scenario (interop/SCENARIO.md) with the RabbitMQ Java client as
// packaged by Debian (librabbitmq-client-java, amqp-client 5.0.0).
//
// Compiled by interop/run.sh with javac against /usr/share/java/amqp-client.jar
// (plus slf4j on the classpath), run as `java -cp ... Scenario`.
//
// Not expressible with this client: the unsigned 8/16/32/64-bit header field
// types (its ValueWriter only writes bool, byte (signed 8), short, int, long,
// float, double, decimal, long string, byte array, timestamp, void, table and
// array). Hostname verification: amqp-client 5.0.0 has no
// enableHostnameVerification(), so a SocketConfigurator turns on the JDK's
// HTTPS endpoint identification (with SNI name "localhost") on the SSL socket
// before it connects, and the check also asserts the verified certificate
// carries the DNS name localhost.

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.AuthenticationFailureException;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.ConfirmListener;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.LongString;
import com.rabbitmq.client.ReturnListener;
import com.rabbitmq.client.ShutdownSignalException;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.net.URI;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class Scenario {
    static int passed = 0, failed = 0;
    static String amqpUrl, host, caFile;
    static int tlsPort;
    static Connection conn;
    static final ExecutorService runner = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r);
        t.setDaemon(true);
        return t;
    });

    interface Check { void run() throws Exception; }

    static final class Fail extends Exception {
        Fail(String msg) { super(msg); }
    }

    static void fail(String fmt, Object... args) throws Fail {
        throw new Fail(String.format(fmt, args));
    }

    static void check(String name, Check c) {
        Future<?> f = runner.submit(() -> { c.run(); return null; });
        String why = null;
        try {
            f.get(60, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            why = "timed out after 60s";
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable t = e.getCause();
            why = (t instanceof Fail) ? t.getMessage() : describe(t);
        } catch (InterruptedException e) {
            why = "interrupted";
        }
        if (why == null) {
            passed++;
            System.out.println("ok   " + name);
        } else {
            failed++;
            System.out.println("FAIL " + name + ": " + why.replace('\n', ' '));
        }
        System.out.flush();
    }

    static String describe(Throwable t) {
        StringBuilder sb = new StringBuilder(t.toString());
        for (Throwable c = t.getCause(); c != null && c != t; c = c.getCause()) {
            sb.append(" <- ").append(c);
            if (c.getCause() == c) break;
        }
        return sb.toString();
    }

    static ConnectionFactory factory() throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        f.setUri(amqpUrl);
        f.setConnectionTimeout(10000);
        f.setHandshakeTimeout(10000);
        f.setChannelRpcTimeout(15000);
        f.setShutdownTimeout(5000);
        f.setAutomaticRecoveryEnabled(false);
        return f;
    }

    static synchronized Connection mainConn() throws Exception {
        if (conn == null || !conn.isOpen()) conn = factory().newConnection("java-scenario");
        return conn;
    }

    static Channel channel() throws Exception {
        Channel ch = mainConn().createChannel();
        if (ch == null) fail("createChannel returned null (no free channel number)");
        return ch;
    }

    static void closeQuietly(Channel ch) {
        try { if (ch != null && ch.isOpen()) ch.close(); } catch (Exception ignored) { }
    }

    static byte[] b(String s) {
        return s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    static String s(byte[] b) {
        return new String(b, java.nio.charset.StandardCharsets.UTF_8);
    }

    static void publish(Channel ch, String ex, String key, String body) throws IOException {
        ch.basicPublish(ex, key, null, b(body));
    }

    static GetResponse getOne(Channel ch, String q, boolean autoAck) throws Exception {
        long deadline = System.currentTimeMillis() + 3000;
        while (true) {
            GetResponse r = ch.basicGet(q, autoAck);
            if (r != null) return r;
            if (System.currentTimeMillis() > deadline) fail("queue %s: no message within 3s", q);
            Thread.sleep(20);
        }
    }

    static void expectBody(Channel ch, String q, String body) throws Exception {
        GetResponse r = getOne(ch, q, true);
        if (!s(r.getBody()).equals(body)) fail("queue %s: got body '%s', want '%s'", q, s(r.getBody()), body);
    }

    static void expectEmpty(Channel ch, String q) throws Exception {
        Thread.sleep(250);
        GetResponse r = ch.basicGet(q, true);
        if (r != null) fail("queue %s: unexpected message '%s'", q, s(r.getBody()));
    }

    /** Runs c, which must fail with a channel exception of this code and reply text prefix. */
    static void expectChannelError(Check c, int code, String prefix) throws Exception {
        try {
            c.run();
        } catch (IOException | ShutdownSignalException e) {
            ShutdownSignalException sse = null;
            for (Throwable t = e; t != null; t = t.getCause()) {
                if (t instanceof ShutdownSignalException) { sse = (ShutdownSignalException) t; break; }
                if (t.getCause() == t) break;
            }
            if (sse == null) fail("expected channel error %d, got %s", code, describe(e));
            Object reason = sse.getReason();
            if (!(reason instanceof AMQP.Channel.Close)) fail("expected channel.close %d, got %s", code, reason);
            AMQP.Channel.Close close = (AMQP.Channel.Close) reason;
            if (close.getReplyCode() != code) fail("expected code %d, got %d (%s)", code, close.getReplyCode(), close.getReplyText());
            if (!close.getReplyText().startsWith(prefix)) fail("reply text '%s', want it to start with '%s'", close.getReplyText(), prefix);
            return;
        }
        fail("expected %d, the call succeeded", code);
    }

    static void newChannelWorks() throws Exception {
        Channel ch = channel();
        try {
            String q = ch.queueDeclare().getQueue();
            publish(ch, "", q, "after-error");
            expectBody(ch, q, "after-error");
        } catch (Exception e) {
            fail("new channel: %s", e instanceof Fail ? e.getMessage() : describe(e));
        } finally {
            closeQuietly(ch);
        }
    }

    static String serverNamed(Channel ch) throws IOException {
        return ch.queueDeclare("", false, true, false, null).getQueue();
    }

    // ---- checks ------------------------------------------------------------

    static void connectTcp() throws Exception {
        Connection c = mainConn();
        Channel ch = c.createChannel();
        try {
            String q = ch.queueDeclare().getQueue();
            if (!q.startsWith("amq.gen-")) fail("server-named queue %s", q);
            Object product = c.getServerProperties().get("product");
            if (product == null) fail("server properties carry no product: %s", c.getServerProperties());
        } finally {
            closeQuietly(ch);
        }
    }

    static void connectTls() throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        ks.load(null, null);
        try (InputStream in = new FileInputStream(caFile)) {
            int i = 0;
            for (Certificate cert : cf.generateCertificates(in)) ks.setCertificateEntry("ca" + (i++), cert);
            if (i == 0) fail("no certificate in %s", caFile);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLSv1.2");
        ctx.init(null, tmf.getTrustManagers(), new SecureRandom());

        ConnectionFactory f = factory();
        f.setHost("localhost");
        f.setPort(tlsPort);
        f.useSslProtocol(ctx);
        AtomicReference<SSLSocket> sock = new AtomicReference<>();
        f.setSocketConfigurator(s -> {
            s.setTcpNoDelay(true);
            if (s instanceof SSLSocket) {
                SSLSocket ss = (SSLSocket) s;
                SSLParameters p = ss.getSSLParameters();
                // Verify the server's certificate against the name "localhost":
                // the JDK checks the requested SNI name first; if that fails it
                // falls back to the socket's peer host, here the resolved IP
                // address, so the certificate's DNS names are checked below too.
                p.setEndpointIdentificationAlgorithm("HTTPS");
                p.setServerNames(Collections.singletonList(new SNIHostName("localhost")));
                ss.setSSLParameters(p);
                sock.set(ss);
            }
        });
        Connection c = f.newConnection("java-scenario-tls");
        try {
            SSLSocket ss = sock.get();
            if (ss == null) fail("the connection did not use an SSL socket");
            Certificate[] peer = ss.getSession().getPeerCertificates();
            if (peer.length == 0 || !(peer[0] instanceof X509Certificate)) fail("no peer certificate");
            boolean named = false;
            java.util.Collection<List<?>> sans = ((X509Certificate) peer[0]).getSubjectAlternativeNames();
            if (sans != null)
                for (List<?> san : sans)
                    if (Integer.valueOf(2).equals(san.get(0)) && "localhost".equalsIgnoreCase(String.valueOf(san.get(1)))) named = true;
            if (!named) fail("the server certificate has no DNS name localhost: %s", sans);
            if (!"HTTPS".equals(ss.getSSLParameters().getEndpointIdentificationAlgorithm()))
                fail("hostname verification was not enabled");
            if (!ss.getSSLParameters().getServerNames().equals(Collections.singletonList(new SNIHostName("localhost"))))
                fail("SNI name is %s, want localhost", ss.getSSLParameters().getServerNames());
            Channel ch = c.createChannel();
            String q = serverNamed(ch);
            publish(ch, "", q, "over tls");
            expectBody(ch, q, "over tls");
        } finally {
            c.close(5000);
        }
    }

    static void declareExchanges() throws Exception {
        Channel ch = channel();
        try {
            for (String kind : new String[] {"direct", "fanout", "topic", "headers"}) {
                String name = "java.ex." + kind;
                ch.exchangeDeclare(name, kind, false, false, null);
                ch.exchangeDeclarePassive(name);
            }
        } finally {
            closeQuietly(ch);
        }
    }

    static void declareQueues() throws Exception {
        Channel ch = channel();
        try {
            Object[][] decls = {
                {"java.q.durable", true, false, false},
                {"java.q.exclusive", false, true, false},
                {"java.q.autodelete", false, false, true},
            };
            for (Object[] d : decls) {
                String name = (String) d[0];
                AMQP.Queue.DeclareOk ok = ch.queueDeclare(name, (Boolean) d[1], (Boolean) d[2], (Boolean) d[3], null);
                if (!ok.getQueue().equals(name) || ok.getMessageCount() != 0 || ok.getConsumerCount() != 0)
                    fail("declare-ok for %s: %s %d %d", name, ok.getQueue(), ok.getMessageCount(), ok.getConsumerCount());
                ch.queueDeclarePassive(name);
            }
            String q = ch.queueDeclare().getQueue();
            if (!q.startsWith("amq.gen-")) fail("server-named queue is '%s', want amq.gen-*", q);
            ch.queueDeclarePassive(q);
        } finally {
            closeQuietly(ch);
        }
    }

    static void declareBound(Channel ch, String q, String key, String ex, Map<String, Object> args) throws IOException {
        ch.queueDeclare(q, false, false, false, null);
        ch.queueBind(q, ex, key, args);
    }

    static void routeDirect() throws Exception {
        Channel ch = channel();
        try {
            String ex = "java.ex.direct";
            ch.exchangeDeclare(ex, "direct");
            declareBound(ch, "java.direct.a", "ka", ex, null);
            declareBound(ch, "java.direct.b", "kb", ex, null);
            publish(ch, ex, "ka", "to-a");
            publish(ch, ex, "kb", "to-b");
            expectBody(ch, "java.direct.a", "to-a");
            expectBody(ch, "java.direct.b", "to-b");
            expectEmpty(ch, "java.direct.a");
            expectEmpty(ch, "java.direct.b");
        } finally {
            closeQuietly(ch);
        }
    }

    static void routeFanout() throws Exception {
        Channel ch = channel();
        try {
            String ex = "java.ex.fanout";
            ch.exchangeDeclare(ex, "fanout");
            String[] qs = {"java.fanout.a", "java.fanout.b", "java.fanout.c"};
            for (String q : qs) declareBound(ch, q, "ignored-" + q, ex, null);
            publish(ch, ex, "whatever", "fan");
            for (String q : qs) expectBody(ch, q, "fan");
            for (String q : qs) expectEmpty(ch, q);
        } finally {
            closeQuietly(ch);
        }
    }

    static void routeTopic() throws Exception {
        Channel ch = channel();
        try {
            String ex = "java.ex.topic";
            ch.exchangeDeclare(ex, "topic");
            declareBound(ch, "java.topic.star", "a.*.c", ex, null);
            declareBound(ch, "java.topic.hash", "a.#", ex, null);
            String[] keys = {"a.b.c", "a.b.b.c", "a", "a.c", "x.b.c", "b.a.c"};
            boolean[] star = {true, false, false, false, false, false};
            boolean[] hash = {true, true, true, true, false, false};
            for (String k : keys) publish(ch, ex, k, k);
            for (int i = 0; i < keys.length; i++)
                if (star[i]) expectBody(ch, "java.topic.star", keys[i]);
            expectEmpty(ch, "java.topic.star");
            for (int i = 0; i < keys.length; i++)
                if (hash[i]) expectBody(ch, "java.topic.hash", keys[i]);
            expectEmpty(ch, "java.topic.hash");
        } finally {
            closeQuietly(ch);
        }
    }

    static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static void routeHeaders() throws Exception {
        Channel ch = channel();
        try {
            String ex = "java.ex.headers";
            ch.exchangeDeclare(ex, "headers");
            declareBound(ch, "java.headers.all", "", ex, map("x-match", "all", "h1", "v1", "h2", 2));
            declareBound(ch, "java.headers.any", "", ex, map("x-match", "any", "h1", "v1", "h2", 2));
            Object[][] cases = {
                {"both", map("h1", "v1", "h2", 2), true, true},
                {"one", map("h1", "v1"), false, true},
                {"wrong", map("h1", "v2", "h2", 3), false, false},
                {"none", map("h3", "v1"), false, false},
            };
            for (Object[] c : cases) {
                @SuppressWarnings("unchecked") Map<String, Object> h = (Map<String, Object>) c[1];
                ch.basicPublish(ex, "", new AMQP.BasicProperties.Builder().headers(h).build(), b((String) c[0]));
            }
            for (Object[] c : cases) if ((Boolean) c[2]) expectBody(ch, "java.headers.all", (String) c[0]);
            expectEmpty(ch, "java.headers.all");
            for (Object[] c : cases) if ((Boolean) c[3]) expectBody(ch, "java.headers.any", (String) c[0]);
            expectEmpty(ch, "java.headers.any");
        } finally {
            closeQuietly(ch);
        }
    }

    static void exchangeToExchange() throws Exception {
        Channel ch = channel();
        try {
            ch.exchangeDeclare("java.e2e.e1", "direct");
            ch.exchangeDeclare("java.e2e.e2", "fanout");
            ch.exchangeBind("java.e2e.e2", "java.e2e.e1", "rk");
            declareBound(ch, "java.e2e.q", "", "java.e2e.e2", null);
            publish(ch, "java.e2e.e1", "rk", "via-e2");
            expectBody(ch, "java.e2e.q", "via-e2");
            ch.exchangeUnbind("java.e2e.e2", "java.e2e.e1", "rk");
            publish(ch, "java.e2e.e1", "rk", "after-unbind");
            expectEmpty(ch, "java.e2e.q");
        } finally {
            closeQuietly(ch);
        }
    }

    static void queueUnbind() throws Exception {
        Channel ch = channel();
        try {
            String ex = "java.ex.unbind";
            ch.exchangeDeclare(ex, "direct");
            declareBound(ch, "java.unbind.q", "k", ex, null);
            publish(ch, ex, "k", "bound");
            expectBody(ch, "java.unbind.q", "bound");
            ch.queueUnbind("java.unbind.q", ex, "k");
            publish(ch, ex, "k", "unbound");
            expectEmpty(ch, "java.unbind.q");
        } finally {
            closeQuietly(ch);
        }
    }

    /** Compares a header value as sent with the value as received, including its AMQP type. */
    static void compareField(String path, Object want, Object got) throws Fail {
        if (want == null) {
            if (got != null) fail("header %s: %s (%s), want void", path, got, got.getClass().getSimpleName());
            return;
        }
        if (got == null) fail("header %s: void, want %s", path, want);
        if (want instanceof String) {
            if (!(got instanceof LongString)) fail("header %s: %s %s, want a long string", path, got.getClass().getSimpleName(), got);
            if (!got.toString().equals(want)) fail("header %s: '%s', want '%s'", path, got, want);
        } else if (want instanceof byte[]) {
            if (!(got instanceof byte[])) fail("header %s: %s, want a byte array", path, got.getClass().getSimpleName());
            if (!Arrays.equals((byte[]) want, (byte[]) got)) fail("header %s: %s, want %s", path, Arrays.toString((byte[]) got), Arrays.toString((byte[]) want));
        } else if (want instanceof Map) {
            if (!(got instanceof Map)) fail("header %s: %s, want a table", path, got.getClass().getSimpleName());
            Map<?, ?> w = (Map<?, ?>) want, g = (Map<?, ?>) got;
            if (w.size() != g.size()) fail("table %s: %d entries %s, want %d", path, g.size(), g.keySet(), w.size());
            for (Map.Entry<?, ?> e : w.entrySet()) {
                if (!g.containsKey(e.getKey())) fail("table %s: key '%s' missing", path, e.getKey());
                compareField(path + "." + e.getKey(), e.getValue(), g.get(e.getKey()));
            }
        } else if (want instanceof List) {
            if (!(got instanceof List)) fail("header %s: %s, want an array", path, got.getClass().getSimpleName());
            List<?> w = (List<?>) want, g = (List<?>) got;
            if (w.size() != g.size()) fail("array %s: %d items, want %d", path, g.size(), w.size());
            for (int i = 0; i < w.size(); i++) compareField(path + "[" + i + "]", w.get(i), g.get(i));
        } else {
            if (got.getClass() != want.getClass()) fail("header %s: %s %s, want %s %s", path, got.getClass().getSimpleName(), got, want.getClass().getSimpleName(), want);
            if (!want.equals(got)) fail("header %s: %s, want %s", path, got, want);
        }
    }

    static void eq(String what, Object got, Object want) throws Fail {
        if (want == null ? got != null : !want.equals(got)) fail("%s: %s, want %s", what, got, want);
    }

    @SuppressWarnings("deprecation")
    static void propertiesRoundTrip() throws Exception {
        Channel ch = channel();
        try {
            String q = serverNamed(ch);
            byte[] body = new byte[256];
            for (int i = 0; i < 256; i++) body[i] = (byte) i;
            Map<String, Object> headers = map(
                "bool-true", true,
                "bool-false", false,
                "int8", (byte) -8,
                "int16", (short) -1600,
                "int32", -320000,
                "int64", -6400000000L,
                "float", 1.5f,
                "double", Math.PI,
                "decimal", new BigDecimal("123.45"),
                "longstr", "long string \u2713",
                "bytes", new byte[] {0, 1, 2, (byte) 0xfe, (byte) 0xff},
                "timestamp", new Date(1600000000L * 1000),
                "void", null,
                "table", map("inner", "x", "n", 7, "deeper", map("b", true)),
                "array", Arrays.asList(1, "two", true, null, map("k", "v"), Arrays.asList(3L)));
            Date ts = new Date(1700000000L * 1000);
            AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                .contentType("application/octet-stream")
                .contentEncoding("identity")
                .headers(headers)
                .deliveryMode(2)
                .priority(7)
                .correlationId("corr-1")
                .replyTo("reply-queue")
                .expiration("600000")
                .messageId("msg-1")
                .timestamp(ts)
                .type("test-type")
                .userId("guest")
                .appId("java-scenario")
                .clusterId("cluster-1")
                .build();
            ch.basicPublish("", q, props, body);

            BlockingQueue<Object[]> got = new LinkedBlockingQueue<>();
            ch.basicConsume(q, true, new DefaultConsumer(ch) {
                @Override
                public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties p, byte[] bd) {
                    got.add(new Object[] {p, bd});
                }
            });
            Object[] d = got.poll(5, TimeUnit.SECONDS);
            if (d == null) fail("no delivery within 5s");
            AMQP.BasicProperties p = (AMQP.BasicProperties) d[0];
            eq("content-type", p.getContentType(), props.getContentType());
            eq("content-encoding", p.getContentEncoding(), props.getContentEncoding());
            eq("delivery-mode", p.getDeliveryMode(), props.getDeliveryMode());
            eq("priority", p.getPriority(), props.getPriority());
            eq("correlation-id", p.getCorrelationId(), props.getCorrelationId());
            eq("reply-to", p.getReplyTo(), props.getReplyTo());
            eq("expiration", p.getExpiration(), props.getExpiration());
            eq("message-id", p.getMessageId(), props.getMessageId());
            eq("timestamp", p.getTimestamp(), ts);
            eq("type", p.getType(), props.getType());
            eq("user-id", p.getUserId(), props.getUserId());
            eq("app-id", p.getAppId(), props.getAppId());
            eq("cluster-id", p.getClusterId(), props.getClusterId());
            if (p.getHeaders() == null) fail("no headers");
            compareField("headers", headers, p.getHeaders());
            if (!Arrays.equals((byte[]) d[1], body)) fail("body differs: %s", Arrays.toString((byte[]) d[1]));
        } finally {
            closeQuietly(ch);
        }
    }

    /** Waits (up to 5 s) for want items, then 400 ms more for any extra. */
    static <E> List<E> collect(BlockingQueue<E> q, int want) throws InterruptedException {
        List<E> got = new ArrayList<>();
        long deadline = System.currentTimeMillis() + 5000;
        while (got.size() < want) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) return got;
            E e = q.poll(left, TimeUnit.MILLISECONDS);
            if (e != null) got.add(e);
        }
        Thread.sleep(400);
        q.drainTo(got);
        return got;
    }

    static void prefetch() throws Exception {
        Channel ch = channel();
        try {
            String q = serverNamed(ch);
            for (int i = 0; i < 10; i++) publish(ch, "", q, "m" + i);
            long deadline = System.currentTimeMillis() + 3000;
            while (ch.queueDeclarePassive(q).getMessageCount() != 10) {
                if (System.currentTimeMillis() > deadline) fail("queue holds %d messages, want 10", ch.queueDeclarePassive(q).getMessageCount());
                Thread.sleep(20);
            }
            ch.basicQos(3);
            BlockingQueue<Long> tags = new LinkedBlockingQueue<>();
            ch.basicConsume(q, false, new DefaultConsumer(ch) {
                @Override
                public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties p, byte[] bd) {
                    tags.add(env.getDeliveryTag());
                }
            });
            List<Long> first = collect(tags, 3);
            if (first.size() != 3) fail("%d deliveries with prefetch 3 and nothing acked, want 3", first.size());
            ch.basicAck(first.get(0), false);
            List<Long> more = collect(tags, 1);
            if (more.size() != 1) fail("%d more deliveries after one ack, want 1", more.size());
        } finally {
            closeQuietly(ch);
        }
    }

    static void basicGet() throws Exception {
        Channel ch = channel();
        try {
            String q = serverNamed(ch);
            for (String m : new String[] {"g1", "g2", "g3"}) publish(ch, "", q, m);
            Thread.sleep(100);
            GetResponse r = getOne(ch, q, true);
            if (!s(r.getBody()).equals("g1") || r.getMessageCount() != 2)
                fail("get-ok body '%s' message-count %d, want 'g1' and 2", s(r.getBody()), r.getMessageCount());
            if (r.getEnvelope().isRedeliver()) fail("first get is flagged redelivered");
        } finally {
            closeQuietly(ch);
        }
    }

    static void basicGetEmpty() throws Exception {
        Channel ch = channel();
        try {
            String q = serverNamed(ch);
            GetResponse r = ch.basicGet(q, true);
            if (r != null) fail("get on an empty queue returned '%s'", s(r.getBody()));
        } finally {
            closeQuietly(ch);
        }
    }

    static Check requeue(boolean nack) {
        return () -> {
            Channel ch = channel();
            try {
                String q = serverNamed(ch);
                publish(ch, "", q, "bounce");
                GetResponse r = getOne(ch, q, false);
                if (r.getEnvelope().isRedeliver()) fail("first delivery is flagged redelivered");
                if (nack) ch.basicNack(r.getEnvelope().getDeliveryTag(), false, true);
                else ch.basicReject(r.getEnvelope().getDeliveryTag(), true);
                GetResponse again = getOne(ch, q, false);
                if (!s(again.getBody()).equals("bounce") || !again.getEnvelope().isRedeliver())
                    fail("came back as '%s' redelivered=%s, want 'bounce' redelivered=true", s(again.getBody()), again.getEnvelope().isRedeliver());
                ch.basicAck(again.getEnvelope().getDeliveryTag(), false);
            } finally {
                closeQuietly(ch);
            }
        };
    }

    static void confirms() throws Exception {
        Channel ch = channel();
        try {
            String q = serverNamed(ch);
            ch.confirmSelect();
            ConcurrentSkipListSet<Long> outstanding = new ConcurrentSkipListSet<>();
            AtomicInteger nacks = new AtomicInteger();
            ch.addConfirmListener(new ConfirmListener() {
                public void handleAck(long tag, boolean multiple) {
                    if (multiple) outstanding.headSet(tag, true).clear();
                    else outstanding.remove(tag);
                }
                public void handleNack(long tag, boolean multiple) {
                    nacks.incrementAndGet();
                }
            });
            for (int i = 0; i < 100; i++) {
                outstanding.add(ch.getNextPublishSeqNo());
                publish(ch, "", q, "c" + i);
            }
            if (!ch.waitForConfirms(10000)) fail("some publishes were nacked");
            if (nacks.get() != 0) fail("%d nacks", nacks.get());
            if (!outstanding.isEmpty()) fail("%d publishes not acknowledged", outstanding.size());
            int n = ch.queueDeclarePassive(q).getMessageCount();
            if (n != 100) fail("queue holds %d messages after 100 confirmed publishes", n);
        } finally {
            closeQuietly(ch);
        }
    }

    static void mandatoryReturn() throws Exception {
        Channel ch = channel();
        try {
            BlockingQueue<Object[]> returns = new LinkedBlockingQueue<>();
            ch.addReturnListener((ReturnListener) (code, text, ex, key, p, bd) -> returns.add(new Object[] {code, text, ex, key, p, bd}));
            ch.basicPublish("amq.direct", "java.no-such-binding", true,
                new AMQP.BasicProperties.Builder().messageId("m-ret").build(), b("lost"));
            Object[] r = returns.poll(5, TimeUnit.SECONDS);
            if (r == null) fail("no basic.return within 5s");
            if ((Integer) r[0] != 312 || !"NO_ROUTE".equals(r[1])) fail("basic.return %s '%s', want 312 NO_ROUTE", r[0], r[1]);
            if (!"amq.direct".equals(r[2]) || !"java.no-such-binding".equals(r[3]) || !"lost".equals(s((byte[]) r[5]))
                || !"m-ret".equals(((AMQP.BasicProperties) r[4]).getMessageId()))
                fail("basic.return carries exchange '%s' key '%s' body '%s'", r[2], r[3], s((byte[]) r[5]));
        } finally {
            closeQuietly(ch);
        }
    }

    static void txCommit() throws Exception {
        Channel ch = channel(), other = channel();
        try {
            String q = "java.tx.commit";
            ch.queueDeclare(q, false, false, false, null);
            ch.txSelect();
            publish(ch, "", q, "t1");
            publish(ch, "", q, "t2");
            expectEmpty(other, q);
            ch.txCommit();
            expectBody(other, q, "t1");
            expectBody(other, q, "t2");
        } finally {
            closeQuietly(ch);
            closeQuietly(other);
        }
    }

    static void txRollback() throws Exception {
        Channel ch = channel();
        try {
            String q = "java.tx.rollback";
            ch.queueDeclare(q, false, false, false, null);
            ch.txSelect();
            publish(ch, "", q, "never");
            ch.txRollback();
            ch.txCommit(); // an empty commit must not bring the rolled-back message back
            expectEmpty(ch, q);
        } finally {
            closeQuietly(ch);
        }
    }

    static void purge() throws Exception {
        Channel ch = channel();
        try {
            String q = serverNamed(ch);
            for (int i = 0; i < 5; i++) publish(ch, "", q, "p");
            Thread.sleep(100);
            int n = ch.queuePurge(q).getMessageCount();
            if (n != 5) fail("purge-ok message-count %d, want 5", n);
            expectEmpty(ch, q);
        } finally {
            closeQuietly(ch);
        }
    }

    static void deleteIfUnused() throws Exception {
        Channel ch = channel();
        try {
            String q = "java.del.unused";
            ch.queueDeclare(q, false, false, false, null);
            ch.basicConsume(q, true, new DefaultConsumer(ch));
            Channel ch2 = channel();
            expectChannelError(() -> ch2.queueDelete(q, true, false), 406, "PRECONDITION_FAILED");
            Channel ch3 = channel();
            try {
                ch3.queueDelete(q);
            } finally {
                closeQuietly(ch3);
            }
            Channel ch4 = channel();
            expectChannelError(() -> ch4.queueDeclarePassive(q), 404, "NOT_FOUND");
        } finally {
            closeQuietly(ch);
        }
    }

    static void deleteIfEmpty() throws Exception {
        String q = "java.del.empty";
        Channel ch = channel();
        ch.queueDeclare(q, false, false, false, null);
        publish(ch, "", q, "keep");
        Thread.sleep(100);
        expectChannelError(() -> ch.queueDelete(q, false, true), 406, "PRECONDITION_FAILED");
        Channel ch2 = channel();
        try {
            int n = ch2.queueDelete(q).getMessageCount();
            if (n != 1) fail("delete-ok message-count %d, want 1", n);
        } finally {
            closeQuietly(ch2);
        }
    }

    static void redeclare406() throws Exception {
        Channel ch = channel();
        ch.queueDeclare("java.redeclare", false, false, false, null);
        expectChannelError(() -> ch.queueDeclare("java.redeclare", true, false, false, null), 406,
            "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'java.redeclare' in vhost '/': received 'true' but current is 'false'");
        newChannelWorks();
    }

    static void passive404() throws Exception {
        Channel ch = channel();
        expectChannelError(() -> ch.queueDeclarePassive("java.no-such-queue"), 404,
            "NOT_FOUND - no queue 'java.no-such-queue' in vhost '/'");
        newChannelWorks();
    }

    static void exclusive405() throws Exception {
        Connection owner = factory().newConnection("java-scenario-owner");
        try {
            owner.createChannel().queueDeclare("java.exclusive.other", false, true, false, null);
            Channel ch = channel();
            expectChannelError(() -> ch.queueDeclare("java.exclusive.other", false, false, false, null), 405,
                "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'java.exclusive.other' in vhost '/'");
        } finally {
            owner.close(5000);
        }
        newChannelWorks();
    }

    static void wrongPassword403() throws Exception {
        ConnectionFactory f = factory();
        f.setPassword("not-the-password");
        try {
            Connection c = f.newConnection("java-scenario-bad-password");
            c.close();
            fail("connection with a wrong password succeeded");
        } catch (AuthenticationFailureException e) {
            // The Java client announces authentication_failure_close, so the
            // broker must answer with connection.close 403 ACCESS_REFUSED.
            if (e.getMessage() == null || !e.getMessage().startsWith("ACCESS_REFUSED"))
                fail("authentication failure message '%s', want ACCESS_REFUSED - ...", e.getMessage());
        } catch (Fail e) {
            throw e;
        } catch (Exception e) {
            fail("expected AuthenticationFailureException (connection.close 403), got %s", describe(e));
        }
        newChannelWorks();
    }

    static void bigMessage() throws Exception {
        Channel ch = channel();
        try {
            String q = serverNamed(ch);
            byte[] body = new byte[5 * 1024 * 1024];
            new SecureRandom().nextBytes(body);
            ch.basicPublish("", q, null, body);
            GetResponse r = getOne(ch, q, true);
            if (!Arrays.equals(r.getBody(), body)) fail("body differs (%d bytes back, %d sent)", r.getBody().length, body.length);
        } finally {
            closeQuietly(ch);
        }
    }

    static void manyChannels() throws Exception {
        Connection c = factory().newConnection("java-scenario-500");
        try {
            Channel setup = c.createChannel();
            String q = serverNamed(setup);
            List<Channel> chans = new ArrayList<>();
            for (int i = 0; i < 500; i++) {
                Channel ch = c.createChannel();
                if (ch == null) fail("channel %d: no channel number available", i + 1);
                chans.add(ch);
            }
            for (int i = 0; i < chans.size(); i++) {
                chans.get(i).queueDeclarePassive(q);
                publish(chans.get(i), "", q, Integer.toString(i));
            }
            long deadline = System.currentTimeMillis() + 5000;
            int n;
            while ((n = setup.queueDeclarePassive(q).getMessageCount()) != 500) {
                if (System.currentTimeMillis() > deadline) fail("queue holds %d messages, want 500 (one per channel)", n);
                Thread.sleep(50);
            }
            for (Channel ch : chans) ch.close();
        } finally {
            c.close(5000);
        }
    }

    static void roundRobin() throws Exception {
        Channel ch = channel();
        List<Channel> consumers = new ArrayList<>();
        try {
            String q = "java.roundrobin";
            ch.queueDeclare(q, false, false, false, null);
            AtomicInteger[] counts = new AtomicInteger[4];
            AtomicInteger total = new AtomicInteger();
            for (int i = 0; i < 4; i++) {
                counts[i] = new AtomicInteger();
                Channel cch = channel();
                consumers.add(cch);
                final int idx = i;
                cch.basicConsume(q, true, "rr-" + i, new DefaultConsumer(cch) {
                    @Override
                    public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties p, byte[] bd) {
                        counts[idx].incrementAndGet();
                        total.incrementAndGet();
                    }
                });
            }
            int cc = ch.queueDeclarePassive(q).getConsumerCount();
            if (cc != 4) fail("declare-ok consumer-count %d, want 4", cc);
            for (int i = 0; i < 40; i++) publish(ch, "", q, Integer.toString(i));
            long deadline = System.currentTimeMillis() + 10000;
            while (total.get() < 40 && System.currentTimeMillis() < deadline) Thread.sleep(20);
            Thread.sleep(200);
            int[] got = new int[4];
            for (int i = 0; i < 4; i++) got[i] = counts[i].get();
            if (total.get() != 40) fail("%d of 40 delivered: %s", total.get(), Arrays.toString(got));
            for (int i = 0; i < 4; i++)
                if (got[i] != 10) fail("consumer %d got %d messages, want 10 each: %s", i, got[i], Arrays.toString(got));
        } finally {
            for (Channel c : consumers) closeQuietly(c);
            closeQuietly(ch);
        }
    }

    static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) {
            System.out.println("FAIL environment: " + name + " is not set");
            System.out.println("0 passed, 1 failed");
            System.exit(1);
        }
        return v;
    }

    public static void main(String[] args) {
        amqpUrl = env("WARREN_URL");
        host = env("WARREN_HOST");
        caFile = env("WARREN_CA");
        tlsPort = Integer.parseInt(env("WARREN_TLS_PORT"));

        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(8 * 60 * 1000);
            } catch (InterruptedException e) {
                return;
            }
            System.out.println("FAIL watchdog: scenario did not finish within 8 minutes");
            System.out.println(passed + " passed, " + (failed + 1) + " failed");
            Runtime.getRuntime().halt(1);
        });
        watchdog.setDaemon(true);
        watchdog.start();

        check("connect tcp", Scenario::connectTcp);
        check("connect tls", Scenario::connectTls);
        check("declare exchanges", Scenario::declareExchanges);
        check("declare queues", Scenario::declareQueues);
        check("route direct", Scenario::routeDirect);
        check("route fanout", Scenario::routeFanout);
        check("route topic", Scenario::routeTopic);
        check("route headers", Scenario::routeHeaders);
        check("exchange-to-exchange binding", Scenario::exchangeToExchange);
        check("queue unbind", Scenario::queueUnbind);
        check("properties and headers round trip", Scenario::propertiesRoundTrip);
        check("prefetch honoured", Scenario::prefetch);
        check("basic.get", Scenario::basicGet);
        check("basic.get empty", Scenario::basicGetEmpty);
        check("reject requeue", requeue(false));
        check("nack requeue", requeue(true));
        check("publisher confirms", Scenario::confirms);
        check("mandatory return", Scenario::mandatoryReturn);
        check("tx commit", Scenario::txCommit);
        check("tx rollback", Scenario::txRollback);
        check("purge", Scenario::purge);
        check("delete if-unused", Scenario::deleteIfUnused);
        check("delete if-empty", Scenario::deleteIfEmpty);
        check("406 on redeclare then new channel works", Scenario::redeclare406);
        check("404 on passive declare then new channel works", Scenario::passive404);
        check("405 on exclusive queue of another connection then new channel works", Scenario::exclusive405);
        check("403 on wrong password then new channel works", Scenario::wrongPassword403);
        check("5 MiB message", Scenario::bigMessage);
        check("500 channels", Scenario::manyChannels);
        check("round-robin consumers", Scenario::roundRobin);

        System.out.println(passed + " passed, " + failed + " failed");
        System.out.flush();
        Runtime.getRuntime().halt(failed > 0 ? 1 : 0);
    }
}
