# The interop scenario (interop/SCENARIO.md) with Bunny, Debian's ruby-bunny.
#
# Left out: none of the checks. Bunny's tables cannot hold unsigned or 8/16-bit
# integers, byte arrays or floats of single precision, so the round trip uses
# the types it has: bool, 32/64-bit integers, double, decimal, long string,
# timestamp, void, table and array. Its encoder (amq-protocol 2.3) writes a
# decimal with a fraction as its integer part, so the decimal is whole.
require "bunny"
require "bigdecimal"
require "openssl"
require "securerandom"
require "timeout"

URL = ENV.fetch("WARREN_URL")
HOST = ENV.fetch("WARREN_HOST")
PORT = Integer(ENV.fetch("WARREN_PORT"))
TLS_PORT = Integer(ENV.fetch("WARREN_TLS_PORT"))
CA = ENV.fetch("WARREN_CA")
ALL_BYTES = (0..255).map(&:chr).join.b

$passed = 0
$failed = 0

def check(name)
  Timeout.timeout(60) { yield }
  puts "ok   #{name}"
  $passed += 1
rescue StandardError, Timeout::Error => e
  puts "FAIL #{name}: #{e.class}: #{e.message.to_s.gsub(/\s+/, " ")[0, 2000]}"
  $failed += 1
end

def expect(cond, what)
  raise "expected #{what}" unless cond
end

def expect_eq(got, want, what)
  raise "#{what}: got #{got.inspect}, want #{want.inspect}" unless got == want
end

def uname(prefix)
  "#{prefix}-#{SecureRandom.hex(4)}"
end

def connect(**opts)
  Bunny.new(URL, automatically_recover: false, logger: Logger.new(nil), **opts).tap(&:start)
end

# Every message in the queue, by basic.get with no-ack.
def drain(ch, queue)
  bodies = []
  loop do
    _, _, body = ch.basic_get(queue, manual_ack: false)
    break if body.nil?
    bodies << body
  end
  bodies
end

def wait_until(seconds = 5)
  deadline = Time.now + seconds
  until yield
    raise "timed out" if Time.now > deadline
    sleep 0.01
  end
end

$conn = nil
$ch = nil

def fresh
  $ch = $conn.create_channel if $ch.nil? || !$ch.open?
  $ch
end

check("connect tcp") do
  $conn = connect
  ch = fresh
  q = ch.queue("", exclusive: true).name
  ch.default_exchange.publish("tcp", routing_key: q)
  expect_eq(drain(ch, q), ["tcp"], "bodies over tcp")
end

check("connect tls") do
  c = Bunny.new(host: "localhost", port: TLS_PORT, tls: true, tls_ca_certificates: [CA],
                verify_peer: true, user: "guest", pass: "guest",
                automatically_recover: false, logger: Logger.new(nil))
  c.start
  begin
    ch = c.create_channel
    q = ch.queue("", exclusive: true).name
    ch.default_exchange.publish("tls", routing_key: q)
    expect_eq(drain(ch, q), ["tls"], "bodies over tls")
  ensure
    c.close
  end
end

EX = %w[direct fanout topic headers].to_h { |t| [t, uname("x-#{t}")] }

check("declare exchanges") do
  ch = fresh
  EX.each do |type, name|
    ch.exchange_declare(name, type)
    ch.exchange_declare(name, type, passive: true)
  end
end

check("declare queues") do
  ch = fresh
  [{ durable: true }, { exclusive: true }, { auto_delete: true }].each do |kw|
    name = uname("q")
    ok = ch.queue_declare(name, **kw)
    expect_eq(ok.queue, name, "declare-ok queue for #{kw}")
    expect_eq([ok.message_count, ok.consumer_count], [0, 0], "counts for #{kw}")
    expect_eq(ch.queue_declare(name, **kw).queue, name, "redeclare-ok for #{kw}")
    ch.queue_delete(name)
  end
  gen = ch.queue_declare("", exclusive: true).queue
  expect(gen.start_with?("amq.gen-"), "a server-named queue, got #{gen}")
end

def bound_queue(exchange, key = "", arguments = {})
  ch = fresh
  name = ch.queue_declare(uname("q"), exclusive: true).queue
  ch.queue_bind(name, exchange, routing_key: key, arguments: arguments)
  name
end

def publish(exchange, key, body, **props)
  fresh.basic_publish(body, exchange, key, props)
end

check("route direct") do
  q1 = bound_queue(EX["direct"], "k1")
  q2 = bound_queue(EX["direct"], "k2")
  publish(EX["direct"], "k1", "one")
  publish(EX["direct"], "k2", "two")
  publish(EX["direct"], "k3", "none")
  expect_eq(drain(fresh, q1), ["one"], "k1 queue")
  expect_eq(drain(fresh, q2), ["two"], "k2 queue")
end

check("route fanout") do
  q1 = bound_queue(EX["fanout"], "ignored")
  q2 = bound_queue(EX["fanout"])
  publish(EX["fanout"], "whatever", "fan")
  expect_eq(drain(fresh, q1), ["fan"], "first queue")
  expect_eq(drain(fresh, q2), ["fan"], "second queue")
end

check("route topic") do
  q1 = bound_queue(EX["topic"], "a.*.c")
  q2 = bound_queue(EX["topic"], "a.#")
  %w[a.b.c a.b.b.c a x.b.c a.b].each { |k| publish(EX["topic"], k, k) }
  expect_eq(drain(fresh, q1), ["a.b.c"], "a.*.c queue")
  expect_eq(drain(fresh, q2), %w[a.b.c a.b.b.c a a.b], "a.# queue")
end

check("route headers") do
  q_all = bound_queue(EX["headers"], "", { "x-match" => "all", "h1" => "v1", "h2" => "v2" })
  q_any = bound_queue(EX["headers"], "", { "x-match" => "any", "h1" => "v1", "h2" => "v2" })
  [["both", { "h1" => "v1", "h2" => "v2", "h3" => "x" }], ["one", { "h1" => "v1" }],
   ["wrong", { "h1" => "v2", "h2" => "v1" }], ["none", nil]].each do |body, headers|
    props = headers ? { headers: headers } : {}
    publish(EX["headers"], "", body, **props)
  end
  expect_eq(drain(fresh, q_all), ["both"], "x-match all queue")
  expect_eq(drain(fresh, q_any), %w[both one], "x-match any queue")
end

check("exchange-to-exchange binding") do
  ch = fresh
  e1 = uname("e1")
  e2 = uname("e2")
  ch.exchange_declare(e1, "direct")
  ch.exchange_declare(e2, "fanout")
  ch.exchange_bind(e1, e2, routing_key: "k")
  q = bound_queue(e2)
  publish(e1, "k", "via-e1")
  publish(e1, "other", "not-bound")
  expect_eq(drain(ch, q), ["via-e1"], "queue behind e2")
  ch.exchange_unbind(e1, e2, routing_key: "k")
  publish(e1, "k", "after-unbind")
  expect_eq(drain(ch, q), [], "queue behind e2 after exchange.unbind")
  ch.exchange_delete(e2)
  ch.exchange_delete(e1)
end

check("queue unbind") do
  ch = fresh
  q = bound_queue(EX["direct"], "unbind-me")
  publish(EX["direct"], "unbind-me", "before")
  expect_eq(drain(ch, q), ["before"], "queue before unbind")
  ch.queue_unbind(q, EX["direct"], routing_key: "unbind-me")
  publish(EX["direct"], "unbind-me", "after")
  expect_eq(drain(ch, q), [], "queue after unbind")
end

check("properties and headers round trip") do
  ch = fresh
  headers = {
    "bool-true" => true, "bool-false" => false,
    "int32" => -2_147_483_648, "int64" => 2**62,
    "double" => 1.5, "decimal" => BigDecimal("12345"),
    "long-string" => "h\u00e9llo w\u00f6rld \u2713",
    "timestamp" => Time.at(1_704_164_645),
    "void" => nil,
    "table" => { "a" => 1, "nested" => { "b" => "c" } },
    "array" => [1, "two", true, { "x" => 1 }, [2, 3]]
  }
  props = {
    content_type: "application/octet-stream", content_encoding: "identity", headers: headers,
    delivery_mode: 2, priority: 7, correlation_id: "corr-1", reply_to: "reply-q",
    expiration: "60000", message_id: "msg-1", timestamp: 1_704_164_645,
    type: "kind", user_id: "guest", app_id: "ruby-interop", cluster_id: "cluster-1"
  }
  q = ch.queue_declare(uname("q"), exclusive: true).queue
  ch.basic_publish(ALL_BYTES, "", q, props)
  delivery, got, body = nil
  wait_until { (delivery, got, body = ch.basic_get(q, manual_ack: false)) && body }
  expect_eq(body.b, ALL_BYTES, "body")
  props.each do |key, want|
    next if key == :headers
    have = got[key]
    have = have.to_i if have.is_a?(Time)
    expect_eq(have, want, "property #{key}")
  end
  h = got[:headers]
  headers.each do |key, want|
    have = h[key]
    have = have.to_i if want.is_a?(Time) && have
    want = want.to_i if want.is_a?(Time)
    # Long strings come back as bytes; compare them as bytes.
    have, want = have.b, want.b if want.is_a?(String) && have.is_a?(String)
    expect_eq(have, want, "header #{key}")
  end
end

check("prefetch honoured") do
  c = connect
  begin
    ch = c.create_channel
    q = ch.queue_declare(uname("q"), exclusive: true).queue
    10.times { |i| ch.basic_publish(i.to_s, "", q, {}) }
    ch.basic_qos(3)
    got = Queue.new
    ch.basic_consume(q, "prefetch", false) { |info, _, _| got << info.delivery_tag.to_i }
    tags = Array.new(3) { Timeout.timeout(5) { got.pop } }
    sleep 0.4
    expect_eq(got.size, 0, "deliveries beyond the prefetch of 3")
    ch.basic_ack(tags[0], false)
    Timeout.timeout(5) { got.pop }
    sleep 0.4
    expect_eq(got.size, 0, "deliveries after one ack")
  ensure
    c.close
  end
end

check("basic.get") do
  ch = fresh
  q = ch.queue_declare(uname("q"), exclusive: true).queue
  %w[first second].each { |b| ch.basic_publish(b, "", q, {}) }
  info = nil
  body = nil
  wait_until { (info, _, body = ch.basic_get(q, manual_ack: false)) && body }
  expect_eq(body, "first", "body")
  expect_eq(info.message_count, 1, "get-ok message-count")
end

check("basic.get empty") do
  ch = fresh
  q = ch.queue_declare(uname("q"), exclusive: true).queue
  _, _, body = ch.basic_get(q, manual_ack: false)
  expect(body.nil?, "get-empty, got #{body.inspect}")
end

[["reject requeue", :reject], ["nack requeue", :nack]].each do |name, how|
  check(name) do
    ch = fresh
    q = ch.queue_declare(uname("q"), exclusive: true).queue
    ch.basic_publish("again", "", q, {})
    info = nil
    wait_until { (info, _, _ = ch.basic_get(q, manual_ack: true)) && info }
    tag = info.delivery_tag.to_i
    how == :reject ? ch.basic_reject(tag, true) : ch.basic_nack(tag, false, true)
    again = nil
    body = nil
    wait_until { (again, _, body = ch.basic_get(q, manual_ack: false)) && body }
    expect_eq(body, "again", "body")
    expect(again.redelivered, "redelivered=true")
  end
end

check("publisher confirms") do
  ch = $conn.create_channel
  ch.confirm_select
  q = ch.queue_declare(uname("q"), exclusive: true).queue
  100.times { |i| ch.basic_publish(i.to_s, "", q, {}) }
  expect(ch.wait_for_confirms, "every publish acknowledged")
  expect(ch.nacked_set.empty?, "no nacks")
  ch.close
end

check("mandatory return") do
  ch = $conn.create_channel
  returned = Queue.new
  ch.default_exchange.on_return { |info, _, body| returned << [info.reply_code, info.reply_text, body] }
  x = ch.direct("amq.direct", passive: true)
  x.on_return { |info, _, body| returned << [info.reply_code, info.reply_text, body] }
  x.publish("lost", routing_key: uname("unbound"), mandatory: true)
  code, text, body = Timeout.timeout(5) { returned.pop }
  expect_eq([code, text, body], [312, "NO_ROUTE", "lost"], "basic.return")
  ch.close
end

check("tx commit") do
  ch = $conn.create_channel
  q = ch.queue_declare(uname("q"), exclusive: true).queue
  ch.tx_select
  ch.basic_publish("in-tx", "", q, {})
  expect_eq(ch.queue_declare(q, passive: true).message_count, 0, "before commit")
  ch.tx_commit
  expect_eq(drain(ch, q), ["in-tx"], "after commit")
  ch.close
end

check("tx rollback") do
  ch = $conn.create_channel
  q = ch.queue_declare(uname("q"), exclusive: true).queue
  ch.tx_select
  ch.basic_publish("rolled-back", "", q, {})
  ch.tx_rollback
  ch.tx_commit
  expect_eq(drain(ch, q), [], "after rollback")
  ch.close
end

check("purge") do
  ch = fresh
  q = ch.queue_declare(uname("q"), exclusive: true).queue
  3.times { |i| ch.basic_publish(i.to_s, "", q, {}) }
  wait_until { ch.queue_declare(q, passive: true).message_count == 3 }
  expect_eq(ch.queue_purge(q).message_count, 3, "purge-ok message-count")
end

def expect_channel_error(code)
  yield
  raise "no channel error"
rescue Bunny::ChannelLevelException => e
  expect_eq(e.channel_close.reply_code, code, "reply code")
end

check("delete if-unused") do
  ch = $conn.create_channel
  q = ch.queue_declare(uname("q")).queue
  consumer = $conn.create_channel
  consumer.basic_consume(q, "in-use", true) { |*_| }
  expect_channel_error(406) { ch.queue_delete(q, if_unused: true) }
  consumer.close
  ch2 = $conn.create_channel
  ch2.queue_delete(q)
  ch2.close
end

check("delete if-empty") do
  ch = $conn.create_channel
  q = ch.queue_declare(uname("q")).queue
  ch.basic_publish("x", "", q, {})
  wait_until { ch.queue_declare(q, passive: true).message_count == 1 }
  expect_channel_error(406) { ch.queue_delete(q, if_empty: true) }
  ch2 = $conn.create_channel
  ch2.queue_delete(q)
  ch2.close
end

def then_new_channel_works
  ch = $conn.create_channel
  q = ch.queue_declare("", exclusive: true).queue
  ch.basic_publish("works", "", q, {})
  expect_eq(drain(ch, q), ["works"], "the new channel")
  ch.close
end

check("406 on redeclare then new channel works") do
  ch = $conn.create_channel
  q = uname("q")
  ch.queue_declare(q, durable: false)
  expect_channel_error(406) { ch.queue_declare(q, durable: true) }
  then_new_channel_works
  c = $conn.create_channel
  c.queue_delete(q)
  c.close
end

check("404 on passive declare then new channel works") do
  ch = $conn.create_channel
  expect_channel_error(404) { ch.queue_declare(uname("missing"), passive: true) }
  then_new_channel_works
end

check("405 on exclusive queue of another connection then new channel works") do
  other = connect
  begin
    q = other.create_channel.queue_declare(uname("q"), exclusive: true).queue
    ch = $conn.create_channel
    expect_channel_error(405) { ch.queue_declare(q, exclusive: true) }
    then_new_channel_works
  ensure
    other.close
  end
end

check("403 on wrong password then new channel works") do
  begin
    Bunny.new(host: HOST, port: PORT, user: "guest", pass: "wrong",
              automatically_recover: false, logger: Logger.new(nil)).start
    raise "logged in with a wrong password"
  rescue Bunny::AuthenticationFailureError, Bunny::PossibleAuthenticationFailureError
    nil
  end
  then_new_channel_works
end

check("5 MiB message") do
  ch = fresh
  q = ch.queue_declare(uname("q"), exclusive: true).queue
  body = (ALL_BYTES * (5 * 1024 * 4))
  ch.basic_publish(body, "", q, {})
  got = nil
  wait_until(20) { (_, _, got = ch.basic_get(q, manual_ack: false)) && got }
  expect_eq(got.bytesize, body.bytesize, "size")
  expect(got.b == body, "identical bytes")
end

check("500 channels") do
  c = connect(channel_max: 2047)
  begin
    channels = Array.new(500) { c.create_channel }
    q = channels[0].queue_declare("", exclusive: true).queue
    channels.each_with_index { |ch, i| ch.basic_publish(i.to_s, "", q, {}) }
    bodies = []
    wait_until(20) do
      bodies.concat(drain(channels[0], q))
      bodies.size >= 500
    end
    expect_eq(bodies.sort, (0...500).map(&:to_s).sort, "one message per channel")
  ensure
    c.close
  end
end

check("round-robin consumers") do
  c = connect
  begin
    ch = c.create_channel
    q = ch.queue_declare(uname("q"), exclusive: true).queue
    counts = Array.new(4, 0)
    lock = Mutex.new
    4.times do |i|
      ch.basic_consume(q, "c#{i}", true) { |*_| lock.synchronize { counts[i] += 1 } }
    end
    40.times { |i| ch.basic_publish(i.to_s, "", q, {}) }
    wait_until(10) { lock.synchronize { counts.sum } == 40 }
    expect_eq(counts, [10, 10, 10, 10], "messages per consumer")
  ensure
    c.close
  end
end

$conn&.close rescue nil
puts "#{$passed} passed, #{$failed} failed"
exit($failed.zero? ? 0 : 1)
