// The interop scenario (interop/SCENARIO.md) with github.com/rabbitmq/amqp091-go
// as packaged by Debian (golang-github-rabbitmq-amqp091-go-dev, v1.5.0).
//
// Built by interop/run.sh in GOPATH mode (GOPATH=/usr/share/gocode,
// GO111MODULE=off, GOPROXY=off): nothing is downloaded.
//
// Not expressible with this client: the cluster-id property (Publishing has no
// field for it) and the unsigned 16/32/64-bit header field types (the codec
// writes only bool, int8, uint8, int16, int32, int64, float32, float64,
// decimal, long string, byte array, timestamp, void, table and array).
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

var (
	passed, failed int
	amqpURL        string
	tlsURL         string
	caFile         string

	connMu sync.Mutex
	conn   *amqp.Connection
)

const checkTimeout = 60 * time.Second

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fmt.Printf("FAIL environment: %s is not set\n", name)
		fmt.Printf("0 passed, 1 failed\n")
		os.Exit(1)
	}
	return v
}

// check runs one check with a timeout and a panic guard, and prints its line.
func check(name string, f func() error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- f()
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(checkTimeout):
		err = fmt.Errorf("timed out after %s", checkTimeout)
	}
	if err != nil {
		failed++
		fmt.Printf("FAIL %s: %s\n", name, strings.ReplaceAll(err.Error(), "\n", " "))
	} else {
		passed++
		fmt.Printf("ok   %s\n", name)
	}
}

// mainConn returns the shared connection, redialling if it died.
func mainConn() (*amqp.Connection, error) {
	connMu.Lock()
	defer connMu.Unlock()
	if conn != nil && !conn.IsClosed() {
		return conn, nil
	}
	c, err := amqp.Dial(amqpURL)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	conn = c
	return conn, nil
}

func channel() (*amqp.Channel, error) {
	c, err := mainConn()
	if err != nil {
		return nil, err
	}
	ch, err := c.Channel()
	if err != nil {
		return nil, fmt.Errorf("channel.open: %w", err)
	}
	return ch, nil
}

func publish(ch *amqp.Channel, exchange, key string, body []byte) error {
	return ch.Publish(exchange, key, false, false, amqp.Publishing{Body: body})
}

// getOne basic.gets (auto-ack) one message, polling for up to 3 s.
func getOne(ch *amqp.Channel, q string) (amqp.Delivery, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		d, ok, err := ch.Get(q, true)
		if err != nil {
			return d, fmt.Errorf("basic.get %s: %w", q, err)
		}
		if ok {
			return d, nil
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("queue %s: no message within 3s", q)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func expectBody(ch *amqp.Channel, q, body string) error {
	d, err := getOne(ch, q)
	if err != nil {
		return err
	}
	if string(d.Body) != body {
		return fmt.Errorf("queue %s: got body %q, want %q", q, d.Body, body)
	}
	return nil
}

// expectEmpty waits a little, then asserts basic.get finds nothing.
func expectEmpty(ch *amqp.Channel, q string) error {
	time.Sleep(250 * time.Millisecond)
	d, ok, err := ch.Get(q, true)
	if err != nil {
		return fmt.Errorf("basic.get %s: %w", q, err)
	}
	if ok {
		return fmt.Errorf("queue %s: unexpected message %q", q, d.Body)
	}
	return nil
}

// expectChannelError asserts err is an AMQP error with the given code and a
// reply text starting with prefix.
func expectChannelError(err error, code int, prefix string) error {
	if err == nil {
		return fmt.Errorf("expected %d, the call succeeded", code)
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return fmt.Errorf("expected AMQP error %d, got %v", code, err)
	}
	if ae.Code != code {
		return fmt.Errorf("expected code %d, got %d (%s)", code, ae.Code, ae.Reason)
	}
	if !strings.HasPrefix(ae.Reason, prefix) {
		return fmt.Errorf("reply text %q, want it to start with %q", ae.Reason, prefix)
	}
	return nil
}

// newChannelWorks opens a fresh channel on the main connection and round-trips a message.
func newChannelWorks() error {
	ch, err := channel()
	if err != nil {
		return fmt.Errorf("new channel: %w", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fmt.Errorf("new channel: queue.declare: %w", err)
	}
	if err := publish(ch, "", q.Name, []byte("after-error")); err != nil {
		return fmt.Errorf("new channel: publish: %w", err)
	}
	if err := expectBody(ch, q.Name, "after-error"); err != nil {
		return fmt.Errorf("new channel: %w", err)
	}
	return nil
}

// ---- checks ----------------------------------------------------------------

func connectTCP() error {
	c, err := mainConn()
	if err != nil {
		return err
	}
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		return fmt.Errorf("queue.declare: %w", err)
	}
	if v, ok := c.Properties["product"].(string); !ok || v == "" {
		return fmt.Errorf("server properties carry no product: %v", c.Properties)
	}
	return nil
}

func connectTLS() error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", caFile)
	}
	c, err := amqp.DialTLS(tlsURL, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		return fmt.Errorf("DialTLS: %w", err)
	}
	defer c.Close()
	if !c.ConnectionState().HandshakeComplete {
		return fmt.Errorf("TLS handshake not complete")
	}
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fmt.Errorf("queue.declare: %w", err)
	}
	if err := publish(ch, "", q.Name, []byte("over tls")); err != nil {
		return err
	}
	return expectBody(ch, q.Name, "over tls")
}

func declareExchanges() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, kind := range []string{"direct", "fanout", "topic", "headers"} {
		name := "go.ex." + kind
		if err := ch.ExchangeDeclare(name, kind, false, false, false, false, nil); err != nil {
			return fmt.Errorf("exchange.declare %s: %w", name, err)
		}
		if err := ch.ExchangeDeclarePassive(name, kind, false, false, false, false, nil); err != nil {
			return fmt.Errorf("passive exchange.declare %s: %w", name, err)
		}
	}
	return nil
}

func declareQueues() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, d := range []struct {
		name                           string
		durable, autoDelete, exclusive bool
	}{
		{"go.q.durable", true, false, false},
		{"go.q.exclusive", false, false, true},
		{"go.q.autodelete", false, true, false},
	} {
		q, err := ch.QueueDeclare(d.name, d.durable, d.autoDelete, d.exclusive, false, nil)
		if err != nil {
			return fmt.Errorf("queue.declare %s: %w", d.name, err)
		}
		if q.Name != d.name || q.Messages != 0 || q.Consumers != 0 {
			return fmt.Errorf("declare-ok for %s: %+v", d.name, q)
		}
		if _, err := ch.QueueDeclarePassive(d.name, d.durable, d.autoDelete, d.exclusive, false, nil); err != nil {
			return fmt.Errorf("passive queue.declare %s: %w", d.name, err)
		}
	}
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return fmt.Errorf("server-named queue.declare: %w", err)
	}
	if !strings.HasPrefix(q.Name, "amq.gen-") {
		return fmt.Errorf("server-named queue is %q, want amq.gen-*", q.Name)
	}
	if _, err := ch.QueueDeclarePassive(q.Name, false, false, true, false, nil); err != nil {
		return fmt.Errorf("passive queue.declare %s: %w", q.Name, err)
	}
	return nil
}

func declareBound(ch *amqp.Channel, q, key, exchange string, args amqp.Table) error {
	if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
		return fmt.Errorf("queue.declare %s: %w", q, err)
	}
	if err := ch.QueueBind(q, key, exchange, false, args); err != nil {
		return fmt.Errorf("queue.bind %s: %w", q, err)
	}
	return nil
}

func routeDirect() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	ex := "go.ex.direct"
	if err := ch.ExchangeDeclare(ex, "direct", false, false, false, false, nil); err != nil {
		return err
	}
	if err := declareBound(ch, "go.direct.a", "ka", ex, nil); err != nil {
		return err
	}
	if err := declareBound(ch, "go.direct.b", "kb", ex, nil); err != nil {
		return err
	}
	if err := publish(ch, ex, "ka", []byte("to-a")); err != nil {
		return err
	}
	if err := publish(ch, ex, "kb", []byte("to-b")); err != nil {
		return err
	}
	if err := expectBody(ch, "go.direct.a", "to-a"); err != nil {
		return err
	}
	if err := expectBody(ch, "go.direct.b", "to-b"); err != nil {
		return err
	}
	if err := expectEmpty(ch, "go.direct.a"); err != nil {
		return err
	}
	return expectEmpty(ch, "go.direct.b")
}

func routeFanout() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	ex := "go.ex.fanout"
	if err := ch.ExchangeDeclare(ex, "fanout", false, false, false, false, nil); err != nil {
		return err
	}
	qs := []string{"go.fanout.a", "go.fanout.b", "go.fanout.c"}
	for _, q := range qs {
		if err := declareBound(ch, q, "ignored-"+q, ex, nil); err != nil {
			return err
		}
	}
	if err := publish(ch, ex, "whatever", []byte("fan")); err != nil {
		return err
	}
	for _, q := range qs {
		if err := expectBody(ch, q, "fan"); err != nil {
			return err
		}
	}
	for _, q := range qs {
		if err := expectEmpty(ch, q); err != nil {
			return err
		}
	}
	return nil
}

func routeTopic() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	ex := "go.ex.topic"
	if err := ch.ExchangeDeclare(ex, "topic", false, false, false, false, nil); err != nil {
		return err
	}
	if err := declareBound(ch, "go.topic.star", "a.*.c", ex, nil); err != nil {
		return err
	}
	if err := declareBound(ch, "go.topic.hash", "a.#", ex, nil); err != nil {
		return err
	}
	cases := []struct {
		key        string
		star, hash bool
	}{
		{"a.b.c", true, true},
		{"a.b.b.c", false, true},
		{"a", false, true},
		{"a.c", false, true},
		{"x.b.c", false, false},
		{"b.a.c", false, false},
	}
	for _, c := range cases {
		if err := publish(ch, ex, c.key, []byte(c.key)); err != nil {
			return err
		}
	}
	for _, q := range []struct {
		name string
		star bool
	}{{"go.topic.star", true}, {"go.topic.hash", false}} {
		for _, c := range cases {
			want := c.hash
			if q.star {
				want = c.star
			}
			if want {
				if err := expectBody(ch, q.name, c.key); err != nil {
					return fmt.Errorf("key %s: %w", c.key, err)
				}
			}
		}
		if err := expectEmpty(ch, q.name); err != nil {
			return err
		}
	}
	return nil
}

func routeHeaders() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	ex := "go.ex.headers"
	if err := ch.ExchangeDeclare(ex, "headers", false, false, false, false, nil); err != nil {
		return err
	}
	if err := declareBound(ch, "go.headers.all", "", ex, amqp.Table{"x-match": "all", "h1": "v1", "h2": int32(2)}); err != nil {
		return err
	}
	if err := declareBound(ch, "go.headers.any", "", ex, amqp.Table{"x-match": "any", "h1": "v1", "h2": int32(2)}); err != nil {
		return err
	}
	cases := []struct {
		body     string
		headers  amqp.Table
		all, any bool
	}{
		{"both", amqp.Table{"h1": "v1", "h2": int32(2)}, true, true},
		{"one", amqp.Table{"h1": "v1"}, false, true},
		{"wrong", amqp.Table{"h1": "v2", "h2": int32(3)}, false, false},
		{"none", amqp.Table{"h3": "v1"}, false, false},
	}
	for _, c := range cases {
		if err := ch.Publish(ex, "", false, false, amqp.Publishing{Headers: c.headers, Body: []byte(c.body)}); err != nil {
			return err
		}
	}
	for _, c := range cases {
		if c.all {
			if err := expectBody(ch, "go.headers.all", c.body); err != nil {
				return fmt.Errorf("x-match all: %w", err)
			}
		}
	}
	for _, c := range cases {
		if c.any {
			if err := expectBody(ch, "go.headers.any", c.body); err != nil {
				return fmt.Errorf("x-match any: %w", err)
			}
		}
	}
	if err := expectEmpty(ch, "go.headers.all"); err != nil {
		return fmt.Errorf("x-match all: %w", err)
	}
	if err := expectEmpty(ch, "go.headers.any"); err != nil {
		return fmt.Errorf("x-match any: %w", err)
	}
	return nil
}

func exchangeToExchange() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare("go.e2e.e1", "direct", false, false, false, false, nil); err != nil {
		return err
	}
	if err := ch.ExchangeDeclare("go.e2e.e2", "fanout", false, false, false, false, nil); err != nil {
		return err
	}
	if err := ch.ExchangeBind("go.e2e.e2", "rk", "go.e2e.e1", false, nil); err != nil {
		return fmt.Errorf("exchange.bind: %w", err)
	}
	if err := declareBound(ch, "go.e2e.q", "", "go.e2e.e2", nil); err != nil {
		return err
	}
	if err := publish(ch, "go.e2e.e1", "rk", []byte("via-e2")); err != nil {
		return err
	}
	if err := expectBody(ch, "go.e2e.q", "via-e2"); err != nil {
		return err
	}
	if err := ch.ExchangeUnbind("go.e2e.e2", "rk", "go.e2e.e1", false, nil); err != nil {
		return fmt.Errorf("exchange.unbind: %w", err)
	}
	if err := publish(ch, "go.e2e.e1", "rk", []byte("after-unbind")); err != nil {
		return err
	}
	if err := expectEmpty(ch, "go.e2e.q"); err != nil {
		return fmt.Errorf("after exchange.unbind: %w", err)
	}
	return nil
}

func queueUnbind() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	ex := "go.ex.unbind"
	if err := ch.ExchangeDeclare(ex, "direct", false, false, false, false, nil); err != nil {
		return err
	}
	if err := declareBound(ch, "go.unbind.q", "k", ex, nil); err != nil {
		return err
	}
	if err := publish(ch, ex, "k", []byte("bound")); err != nil {
		return err
	}
	if err := expectBody(ch, "go.unbind.q", "bound"); err != nil {
		return err
	}
	if err := ch.QueueUnbind("go.unbind.q", "k", ex, nil); err != nil {
		return fmt.Errorf("queue.unbind: %w", err)
	}
	if err := publish(ch, ex, "k", []byte("unbound")); err != nil {
		return err
	}
	if err := expectEmpty(ch, "go.unbind.q"); err != nil {
		return fmt.Errorf("after queue.unbind: %w", err)
	}
	return nil
}

// typed compares two field values including their Go (i.e. AMQP) type.
func typed(path string, want, got interface{}) error {
	if reflect.TypeOf(want) != reflect.TypeOf(got) {
		return fmt.Errorf("header %s: type %T (%v), want %T (%v)", path, got, got, want, want)
	}
	switch w := want.(type) {
	case time.Time:
		if !w.Equal(got.(time.Time)) {
			return fmt.Errorf("header %s: %v, want %v", path, got, w)
		}
	case amqp.Table:
		g := got.(amqp.Table)
		if len(g) != len(w) {
			return fmt.Errorf("table %s: %d entries %v, want %d", path, len(g), g, len(w))
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("table %s: key %q missing", path, k)
			}
			if err := typed(path+"."+k, wv, gv); err != nil {
				return err
			}
		}
	case []interface{}:
		g := got.([]interface{})
		if len(g) != len(w) {
			return fmt.Errorf("array %s: %d items %v, want %d", path, len(g), g, len(w))
		}
		for i := range w {
			if err := typed(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); err != nil {
				return err
			}
		}
	default:
		if !reflect.DeepEqual(want, got) {
			return fmt.Errorf("header %s: %#v, want %#v", path, got, want)
		}
	}
	return nil
}

func propertiesRoundTrip() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return err
	}
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i)
	}
	ts := time.Unix(1700000000, 0)
	headers := amqp.Table{
		"bool-true":  true,
		"bool-false": false,
		"int8":       int8(-8),
		"uint8":      byte(200),
		"int16":      int16(-1600),
		"int32":      int32(-320000),
		"int64":      int64(-6400000000),
		"float":      float32(1.5),
		"double":     math.Pi,
		"decimal":    amqp.Decimal{Scale: 2, Value: 12345},
		"longstr":    "long string ✓",
		"bytes":      []byte{0, 1, 2, 0xfe, 0xff},
		"timestamp":  time.Unix(1600000000, 0),
		"void":       nil,
		"table":      amqp.Table{"inner": "x", "n": int32(7), "deeper": amqp.Table{"b": true}},
		"array":      []interface{}{int32(1), "two", true, nil, amqp.Table{"k": "v"}, []interface{}{int64(3)}},
	}
	pub := amqp.Publishing{
		ContentType:     "application/octet-stream",
		ContentEncoding: "identity",
		Headers:         headers,
		DeliveryMode:    amqp.Persistent,
		Priority:        7,
		CorrelationId:   "corr-1",
		ReplyTo:         "reply-queue",
		Expiration:      "600000",
		MessageId:       "msg-1",
		Timestamp:       ts,
		Type:            "test-type",
		UserId:          "guest",
		AppId:           "go-scenario",
		Body:            body,
	}
	if err := ch.Publish("", q.Name, false, false, pub); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("basic.consume: %w", err)
	}
	var d amqp.Delivery
	select {
	case d = <-deliveries:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("no delivery within 5s")
	}
	for _, p := range []struct{ name, got, want string }{
		{"content-type", d.ContentType, pub.ContentType},
		{"content-encoding", d.ContentEncoding, pub.ContentEncoding},
		{"correlation-id", d.CorrelationId, pub.CorrelationId},
		{"reply-to", d.ReplyTo, pub.ReplyTo},
		{"expiration", d.Expiration, pub.Expiration},
		{"message-id", d.MessageId, pub.MessageId},
		{"type", d.Type, pub.Type},
		{"user-id", d.UserId, pub.UserId},
		{"app-id", d.AppId, pub.AppId},
	} {
		if p.got != p.want {
			return fmt.Errorf("%s: %q, want %q", p.name, p.got, p.want)
		}
	}
	if d.DeliveryMode != pub.DeliveryMode {
		return fmt.Errorf("delivery-mode: %d, want %d", d.DeliveryMode, pub.DeliveryMode)
	}
	if d.Priority != pub.Priority {
		return fmt.Errorf("priority: %d, want %d", d.Priority, pub.Priority)
	}
	if !d.Timestamp.Equal(ts) {
		return fmt.Errorf("timestamp: %v, want %v", d.Timestamp, ts)
	}
	if err := typed("headers", headers, d.Headers); err != nil {
		return err
	}
	if !bytes.Equal(d.Body, body) {
		return fmt.Errorf("body differs: %d bytes % x", len(d.Body), d.Body)
	}
	return nil
}

func prefetch() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return err
	}
	for i := 0; i < 10; i++ {
		if err := publish(ch, "", q.Name, []byte(fmt.Sprint(i))); err != nil {
			return err
		}
	}
	// Make sure all 10 are waiting before the consumer starts.
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := ch.QueueDeclarePassive(q.Name, false, false, true, false, nil)
		if err != nil {
			return err
		}
		if st.Messages == 10 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queue holds %d messages, want 10", st.Messages)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := ch.Qos(3, 0, false); err != nil {
		return fmt.Errorf("basic.qos: %w", err)
	}
	deliveries, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	// collect waits (up to 5 s) for want deliveries, then 400 ms more for any extra.
	collect := func(want int) []amqp.Delivery {
		var got []amqp.Delivery
		deadline := time.After(5 * time.Second)
		for len(got) < want {
			select {
			case d := <-deliveries:
				got = append(got, d)
			case <-deadline:
				return got
			}
		}
		extra := time.After(400 * time.Millisecond)
		for {
			select {
			case d := <-deliveries:
				got = append(got, d)
			case <-extra:
				return got
			}
		}
	}
	first := collect(3)
	if len(first) != 3 {
		return fmt.Errorf("%d deliveries with prefetch 3 and nothing acked, want 3", len(first))
	}
	if err := first[0].Ack(false); err != nil {
		return err
	}
	more := collect(1)
	if len(more) != 1 {
		return fmt.Errorf("%d more deliveries after one ack, want 1", len(more))
	}
	return nil
}

func basicGet() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return err
	}
	for _, b := range []string{"g1", "g2", "g3"} {
		if err := publish(ch, "", q.Name, []byte(b)); err != nil {
			return err
		}
	}
	time.Sleep(100 * time.Millisecond)
	d, err := getOne(ch, q.Name)
	if err != nil {
		return err
	}
	if string(d.Body) != "g1" || d.MessageCount != 2 {
		return fmt.Errorf("get-ok body %q message-count %d, want \"g1\" and 2", d.Body, d.MessageCount)
	}
	if d.Redelivered {
		return fmt.Errorf("first get is flagged redelivered")
	}
	return nil
}

func basicGetEmpty() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return err
	}
	d, ok, err := ch.Get(q.Name, true)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("get on an empty queue returned %q", d.Body)
	}
	return nil
}

func requeue(useNack bool) func() error {
	return func() error {
		ch, err := channel()
		if err != nil {
			return err
		}
		defer ch.Close()
		q, err := ch.QueueDeclare("", false, false, true, false, nil)
		if err != nil {
			return err
		}
		if err := publish(ch, "", q.Name, []byte("bounce")); err != nil {
			return err
		}
		var d amqp.Delivery
		deadline := time.Now().Add(3 * time.Second)
		for {
			var ok bool
			d, ok, err = ch.Get(q.Name, false)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no message")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if d.Redelivered {
			return fmt.Errorf("first delivery is flagged redelivered")
		}
		if useNack {
			err = d.Nack(false, true)
		} else {
			err = d.Reject(true)
		}
		if err != nil {
			return err
		}
		var again amqp.Delivery
		deadline = time.Now().Add(3 * time.Second)
		for {
			var ok bool
			again, ok, err = ch.Get(q.Name, false)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("message did not come back")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if string(again.Body) != "bounce" || !again.Redelivered {
			return fmt.Errorf("came back as %q redelivered=%v, want \"bounce\" redelivered=true", again.Body, again.Redelivered)
		}
		return again.Ack(false)
	}
}

func confirms() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("confirm.select: %w", err)
	}
	acks := ch.NotifyPublish(make(chan amqp.Confirmation, 200))
	for i := 0; i < 100; i++ {
		if err := publish(ch, "", q.Name, []byte(fmt.Sprint(i))); err != nil {
			return err
		}
	}
	seen := map[uint64]bool{}
	timeout := time.After(10 * time.Second)
	for len(seen) < 100 {
		select {
		case c, ok := <-acks:
			if !ok {
				return fmt.Errorf("channel closed after %d confirms", len(seen))
			}
			if !c.Ack {
				return fmt.Errorf("publish %d was nacked", c.DeliveryTag)
			}
			if c.DeliveryTag < 1 || c.DeliveryTag > 100 || seen[c.DeliveryTag] {
				return fmt.Errorf("unexpected confirm tag %d", c.DeliveryTag)
			}
			seen[c.DeliveryTag] = true
		case <-timeout:
			return fmt.Errorf("%d of 100 confirmed within 10s", len(seen))
		}
	}
	st, err := ch.QueueDeclarePassive(q.Name, false, false, true, false, nil)
	if err != nil {
		return err
	}
	if st.Messages != 100 {
		return fmt.Errorf("queue holds %d messages after 100 confirmed publishes", st.Messages)
	}
	return nil
}

func mandatoryReturn() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	if err := ch.Publish("amq.direct", "go.no-such-binding", true, false, amqp.Publishing{Body: []byte("lost"), MessageId: "m-ret"}); err != nil {
		return err
	}
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" {
			return fmt.Errorf("basic.return %d %q, want 312 NO_ROUTE", r.ReplyCode, r.ReplyText)
		}
		if r.Exchange != "amq.direct" || r.RoutingKey != "go.no-such-binding" || string(r.Body) != "lost" || r.MessageId != "m-ret" {
			return fmt.Errorf("basic.return carries exchange %q key %q body %q message-id %q", r.Exchange, r.RoutingKey, r.Body, r.MessageId)
		}
	case <-time.After(5 * time.Second):
		return fmt.Errorf("no basic.return within 5s")
	}
	return nil
}

func txCommit() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	other, err := channel()
	if err != nil {
		return err
	}
	defer other.Close()
	q, err := ch.QueueDeclare("go.tx.commit", false, false, false, false, nil)
	if err != nil {
		return err
	}
	if err := ch.Tx(); err != nil {
		return fmt.Errorf("tx.select: %w", err)
	}
	for _, b := range []string{"t1", "t2"} {
		if err := publish(ch, "", q.Name, []byte(b)); err != nil {
			return err
		}
	}
	if err := expectEmpty(other, q.Name); err != nil {
		return fmt.Errorf("before commit: %w", err)
	}
	if err := ch.TxCommit(); err != nil {
		return fmt.Errorf("tx.commit: %w", err)
	}
	for _, b := range []string{"t1", "t2"} {
		if err := expectBody(other, q.Name, b); err != nil {
			return fmt.Errorf("after commit: %w", err)
		}
	}
	return nil
}

func txRollback() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("go.tx.rollback", false, false, false, false, nil)
	if err != nil {
		return err
	}
	if err := ch.Tx(); err != nil {
		return fmt.Errorf("tx.select: %w", err)
	}
	if err := publish(ch, "", q.Name, []byte("never")); err != nil {
		return err
	}
	if err := ch.TxRollback(); err != nil {
		return fmt.Errorf("tx.rollback: %w", err)
	}
	// Commit an empty transaction too: the rolled-back message must not reappear.
	if err := ch.TxCommit(); err != nil {
		return fmt.Errorf("tx.commit: %w", err)
	}
	return expectEmpty(ch, q.Name)
}

func purge() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return err
	}
	for i := 0; i < 5; i++ {
		if err := publish(ch, "", q.Name, []byte("p")); err != nil {
			return err
		}
	}
	time.Sleep(100 * time.Millisecond)
	n, err := ch.QueuePurge(q.Name, false)
	if err != nil {
		return fmt.Errorf("queue.purge: %w", err)
	}
	if n != 5 {
		return fmt.Errorf("purge-ok message-count %d, want 5", n)
	}
	return expectEmpty(ch, q.Name)
}

func deleteIfUnused() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("go.del.unused", false, false, false, false, nil)
	if err != nil {
		return err
	}
	if _, err := ch.Consume(q.Name, "holder", true, false, false, false, nil); err != nil {
		return err
	}
	ch2, err := channel()
	if err != nil {
		return err
	}
	_, err = ch2.QueueDelete(q.Name, true, false, false)
	if err := expectChannelError(err, 406, "PRECONDITION_FAILED"); err != nil {
		return fmt.Errorf("queue.delete if-unused: %w", err)
	}
	ch3, err := channel()
	if err != nil {
		return fmt.Errorf("new channel: %w", err)
	}
	defer ch3.Close()
	if _, err := ch3.QueueDelete(q.Name, false, false, false); err != nil {
		return fmt.Errorf("plain queue.delete: %w", err)
	}
	ch4, err := channel()
	if err != nil {
		return err
	}
	_, err = ch4.QueueDeclarePassive(q.Name, false, false, false, false, nil)
	if err := expectChannelError(err, 404, "NOT_FOUND"); err != nil {
		return fmt.Errorf("queue still there after delete: %w", err)
	}
	return nil
}

func deleteIfEmpty() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	q, err := ch.QueueDeclare("go.del.empty", false, false, false, false, nil)
	if err != nil {
		return err
	}
	if err := publish(ch, "", q.Name, []byte("keep")); err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond)
	_, err = ch.QueueDelete(q.Name, false, true, false)
	if err := expectChannelError(err, 406, "PRECONDITION_FAILED"); err != nil {
		return fmt.Errorf("queue.delete if-empty: %w", err)
	}
	ch2, err := channel()
	if err != nil {
		return fmt.Errorf("new channel: %w", err)
	}
	defer ch2.Close()
	n, err := ch2.QueueDelete(q.Name, false, false, false)
	if err != nil {
		return fmt.Errorf("plain queue.delete: %w", err)
	}
	if n != 1 {
		return fmt.Errorf("delete-ok message-count %d, want 1", n)
	}
	return nil
}

func redeclare406() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare("go.redeclare", false, false, false, false, nil); err != nil {
		return err
	}
	_, err = ch.QueueDeclare("go.redeclare", true, false, false, false, nil)
	if err := expectChannelError(err, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'go.redeclare' in vhost '/': received 'true' but current is 'false'"); err != nil {
		return err
	}
	return newChannelWorks()
}

func passive404() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	_, err = ch.QueueDeclarePassive("go.no-such-queue", false, false, false, false, nil)
	if err := expectChannelError(err, 404, "NOT_FOUND - no queue 'go.no-such-queue' in vhost '/'"); err != nil {
		return err
	}
	return newChannelWorks()
}

func exclusive405() error {
	owner, err := amqp.Dial(amqpURL)
	if err != nil {
		return fmt.Errorf("second connection: %w", err)
	}
	defer owner.Close()
	och, err := owner.Channel()
	if err != nil {
		return err
	}
	if _, err := och.QueueDeclare("go.exclusive.other", false, false, true, false, nil); err != nil {
		return err
	}
	ch, err := channel()
	if err != nil {
		return err
	}
	_, err = ch.QueueDeclare("go.exclusive.other", false, false, false, false, nil)
	if err := expectChannelError(err, 405, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'go.exclusive.other' in vhost '/'"); err != nil {
		return err
	}
	return newChannelWorks()
}

func wrongPassword403() error {
	u, err := url.Parse(amqpURL)
	if err != nil {
		return err
	}
	u.User = url.UserPassword("guest", "not-the-password")
	c, err := amqp.DialConfig(u.String(), amqp.Config{Heartbeat: 10 * time.Second, Locale: "en_US"})
	if err == nil {
		c.Close()
		return fmt.Errorf("connection with a wrong password succeeded")
	}
	// amqp091-go does not announce authentication_failure_close, so the broker
	// just closes the socket and the client reports ErrCredentials (403).
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		return fmt.Errorf("expected 403 ACCESS_REFUSED, got %v", err)
	}
	return newChannelWorks()
}

func bigMessage() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return err
	}
	body := make([]byte, 5*1024*1024)
	if _, err := rand.Read(body); err != nil {
		return err
	}
	if err := publish(ch, "", q.Name, body); err != nil {
		return err
	}
	d, err := getOne(ch, q.Name)
	if err != nil {
		return err
	}
	if !bytes.Equal(d.Body, body) {
		return fmt.Errorf("body differs (%d bytes back, %d sent)", len(d.Body), len(body))
	}
	return nil
}

func manyChannels() error {
	c, err := amqp.Dial(amqpURL)
	if err != nil {
		return err
	}
	defer c.Close()
	setup, err := c.Channel()
	if err != nil {
		return err
	}
	q, err := setup.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return err
	}
	chans := make([]*amqp.Channel, 0, 500)
	for i := 0; i < 500; i++ {
		ch, err := c.Channel()
		if err != nil {
			return fmt.Errorf("channel %d: %w", i+1, err)
		}
		chans = append(chans, ch)
	}
	for i, ch := range chans {
		if _, err := ch.QueueDeclarePassive(q.Name, false, false, true, false, nil); err != nil {
			return fmt.Errorf("channel %d: queue.declare: %w", i+1, err)
		}
		if err := publish(ch, "", q.Name, []byte(fmt.Sprint(i))); err != nil {
			return fmt.Errorf("channel %d: publish: %w", i+1, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := setup.QueueDeclarePassive(q.Name, false, false, true, false, nil)
		if err != nil {
			return err
		}
		if st.Messages == 500 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queue holds %d messages, want 500 (one per channel)", st.Messages)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, ch := range chans {
		if err := ch.Close(); err != nil {
			return fmt.Errorf("channel %d: close: %w", i+1, err)
		}
	}
	return nil
}

func roundRobin() error {
	ch, err := channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("go.roundrobin", false, false, false, false, nil)
	if err != nil {
		return err
	}
	all := make(chan int, 100)
	var consumers []*amqp.Channel
	defer func() {
		for _, c := range consumers {
			c.Close()
		}
	}()
	for i := 0; i < 4; i++ {
		cch, err := channel()
		if err != nil {
			return err
		}
		consumers = append(consumers, cch)
		ds, err := cch.Consume(q.Name, fmt.Sprintf("rr-%d", i), true, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("consumer %d: %w", i, err)
		}
		go func(i int, ds <-chan amqp.Delivery) {
			for range ds {
				all <- i
			}
		}(i, ds)
	}
	st, err := ch.QueueDeclarePassive(q.Name, false, false, false, false, nil)
	if err != nil {
		return err
	}
	if st.Consumers != 4 {
		return fmt.Errorf("declare-ok consumer-count %d, want 4", st.Consumers)
	}
	for i := 0; i < 40; i++ {
		if err := publish(ch, "", q.Name, []byte(fmt.Sprint(i))); err != nil {
			return err
		}
	}
	counts := make([]int, 4)
	timeout := time.After(10 * time.Second)
	for n := 0; n < 40; n++ {
		select {
		case i := <-all:
			counts[i]++
		case <-timeout:
			return fmt.Errorf("only %d of 40 delivered: %v", n, counts)
		}
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case i := <-all:
		return fmt.Errorf("extra delivery to consumer %d", i)
	default:
	}
	for i, n := range counts {
		if n != 10 {
			return fmt.Errorf("consumer %d got %d messages, want 10 each: %v", i, n, counts)
		}
	}
	return nil
}

func main() {
	amqpURL = env("WARREN_URL")
	caFile = env("WARREN_CA")
	host := env("WARREN_HOST")
	tlsURL = fmt.Sprintf("amqps://guest:guest@%s:%s/%%2f", host, env("WARREN_TLS_PORT"))

	// Whatever happens, end.
	time.AfterFunc(8*time.Minute, func() {
		fmt.Printf("FAIL watchdog: scenario did not finish within 8 minutes\n")
		fmt.Printf("%d passed, %d failed\n", passed, failed+1)
		os.Exit(1)
	})

	check("connect tcp", connectTCP)
	check("connect tls", connectTLS)
	check("declare exchanges", declareExchanges)
	check("declare queues", declareQueues)
	check("route direct", routeDirect)
	check("route fanout", routeFanout)
	check("route topic", routeTopic)
	check("route headers", routeHeaders)
	check("exchange-to-exchange binding", exchangeToExchange)
	check("queue unbind", queueUnbind)
	check("properties and headers round trip", propertiesRoundTrip)
	check("prefetch honoured", prefetch)
	check("basic.get", basicGet)
	check("basic.get empty", basicGetEmpty)
	check("reject requeue", requeue(false))
	check("nack requeue", requeue(true))
	check("publisher confirms", confirms)
	check("mandatory return", mandatoryReturn)
	check("tx commit", txCommit)
	check("tx rollback", txRollback)
	check("purge", purge)
	check("delete if-unused", deleteIfUnused)
	check("delete if-empty", deleteIfEmpty)
	check("406 on redeclare then new channel works", redeclare406)
	check("404 on passive declare then new channel works", passive404)
	check("405 on exclusive queue of another connection then new channel works", exclusive405)
	check("403 on wrong password then new channel works", wrongPassword403)
	check("5 MiB message", bigMessage)
	check("500 channels", manyChannels)
	check("round-robin consumers", roundRobin)

	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
	os.Exit(0)
}
