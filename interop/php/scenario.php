<?php
// The interop scenario (interop/SCENARIO.md) with php-amqplib, Debian's
// php-amqplib (3.x). Every check is run; the round trip uses every field
// type php-amqplib can write in RabbitMQ's dialect: all but float and
// double, which its writer lacks (its reader has them).

require '/usr/share/php/PhpAmqpLib/autoload.php';

use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Connection\AMQPSSLConnection;
use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Exception\AMQPTimeoutException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;
use PhpAmqpLib\Wire\AMQPArray;
use PhpAmqpLib\Wire\AMQPDecimal;

$HOST = getenv('WARREN_HOST');
$PORT = (int) getenv('WARREN_PORT');
$TLS_PORT = (int) getenv('WARREN_TLS_PORT');
$CA = getenv('WARREN_CA');
$ALL_BYTES = '';
for ($i = 0; $i < 256; $i++) {
    $ALL_BYTES .= chr($i);
}

$passed = 0;
$failed = 0;

function check(string $name, callable $body): void
{
    global $passed, $failed;
    try {
        $body();
        echo "ok   $name\n";
        $passed++;
    } catch (Throwable $e) {
        $why = preg_replace('/\s+/', ' ', get_class($e) . ': ' . $e->getMessage());
        echo "FAIL $name: " . substr($why, 0, 2000) . "\n";
        $failed++;
    }
}

function expect(bool $cond, string $what): void
{
    if (!$cond) {
        throw new Exception("expected $what");
    }
}

function expect_eq($got, $want, string $what): void
{
    if ($got !== $want) {
        throw new Exception("$what: got " . var_export($got, true) . ', want ' . var_export($want, true));
    }
}

function uname(string $prefix): string
{
    return $prefix . '-' . bin2hex(random_bytes(4));
}

function connect(string $password = 'guest'): AMQPStreamConnection
{
    global $HOST, $PORT;
    return new AMQPStreamConnection($HOST, $PORT, 'guest', $password);
}

/** Every body in the queue, by basic.get with no-ack. */
function drain($ch, string $q): array
{
    $bodies = [];
    while (($m = $ch->basic_get($q, true)) !== null) {
        $bodies[] = $m->getBody();
    }
    return $bodies;
}

function get_one($ch, string $q, bool $no_ack = true): AMQPMessage
{
    $deadline = microtime(true) + 10;
    while (($m = $ch->basic_get($q, $no_ack)) === null) {
        if (microtime(true) > $deadline) {
            throw new Exception("no message in $q");
        }
        usleep(10000);
    }
    return $m;
}

function queue($ch, bool $exclusive = true): string
{
    [$name] = $ch->queue_declare(uname('q'), false, false, $exclusive, false);
    return $name;
}

/** A channel error with `code`, from `body`. */
function expect_channel_error(int $code, callable $body): void
{
    try {
        $body();
    } catch (AMQPProtocolChannelException $e) {
        expect_eq($e->getCode(), $code, 'reply code');
        return;
    }
    throw new Exception('no channel error');
}

$conn = null;
$ch = null;

check('connect tcp', function () use (&$conn, &$ch) {
    $conn = connect();
    $ch = $conn->channel();
    [$q] = $ch->queue_declare('', false, false, true, false);
    $ch->basic_publish(new AMQPMessage('tcp'), '', $q);
    expect_eq(drain($ch, $q), ['tcp'], 'bodies over tcp');
});
if ($conn === null) {
    echo "$passed passed, $failed failed\n";
    exit(1);
}

check('connect tls', function () use ($HOST, $TLS_PORT, $CA) {
    $c = new AMQPSSLConnection('localhost', $TLS_PORT, 'guest', 'guest', '/', [
        'cafile' => $CA, 'verify_peer' => true, 'verify_peer_name' => true, 'peer_name' => 'localhost',
    ]);
    try {
        $tch = $c->channel();
        [$q] = $tch->queue_declare('', false, false, true, false);
        $tch->basic_publish(new AMQPMessage('tls'), '', $q);
        expect_eq(drain($tch, $q), ['tls'], 'bodies over tls');
    } finally {
        $c->close();
    }
});

$EX = [];
foreach (['direct', 'fanout', 'topic', 'headers'] as $t) {
    $EX[$t] = uname("x-$t");
}

check('declare exchanges', function () use ($conn, $EX) {
    $ch = $conn->channel();
    foreach ($EX as $type => $name) {
        $ch->exchange_declare($name, $type, false, false, false);
        $ch->exchange_declare($name, $type, true, false, false);
    }
    $ch->close();
});

check('declare queues', function () use ($conn) {
    $ch = $conn->channel();
    foreach ([[true, false, false], [false, true, false], [false, false, true]] as [$durable, $exclusive, $auto]) {
        $name = uname('q');
        [$q, $messages, $consumers] = $ch->queue_declare($name, false, $durable, $exclusive, $auto);
        expect_eq([$q, $messages, $consumers], [$name, 0, 0], 'declare-ok');
        [$again] = $ch->queue_declare($name, false, $durable, $exclusive, $auto);
        expect_eq($again, $name, 'redeclare-ok');
        $ch->queue_delete($name);
    }
    [$gen] = $ch->queue_declare('', false, false, true, false);
    expect(str_starts_with($gen, 'amq.gen-'), "a server-named queue, got $gen");
    $ch->close();
});

function bound($ch, string $exchange, string $key = '', ?array $args = null): string
{
    $q = queue($ch);
    $ch->queue_bind($q, $exchange, $key, false, $args === null ? [] : new AMQPTable($args));
    return $q;
}

check('route direct', function () use ($conn, $EX) {
    $ch = $conn->channel();
    $q1 = bound($ch, $EX['direct'], 'k1');
    $q2 = bound($ch, $EX['direct'], 'k2');
    foreach (['k1' => 'one', 'k2' => 'two', 'k3' => 'none'] as $k => $b) {
        $ch->basic_publish(new AMQPMessage($b), $EX['direct'], $k);
    }
    expect_eq(drain($ch, $q1), ['one'], 'k1 queue');
    expect_eq(drain($ch, $q2), ['two'], 'k2 queue');
    $ch->close();
});

check('route fanout', function () use ($conn, $EX) {
    $ch = $conn->channel();
    $q1 = bound($ch, $EX['fanout'], 'ignored');
    $q2 = bound($ch, $EX['fanout']);
    $ch->basic_publish(new AMQPMessage('fan'), $EX['fanout'], 'whatever');
    expect_eq(drain($ch, $q1), ['fan'], 'first queue');
    expect_eq(drain($ch, $q2), ['fan'], 'second queue');
    $ch->close();
});

check('route topic', function () use ($conn, $EX) {
    $ch = $conn->channel();
    $q1 = bound($ch, $EX['topic'], 'a.*.c');
    $q2 = bound($ch, $EX['topic'], 'a.#');
    foreach (['a.b.c', 'a.b.b.c', 'a', 'x.b.c', 'a.b'] as $k) {
        $ch->basic_publish(new AMQPMessage($k), $EX['topic'], $k);
    }
    expect_eq(drain($ch, $q1), ['a.b.c'], 'a.*.c queue');
    expect_eq(drain($ch, $q2), ['a.b.c', 'a.b.b.c', 'a', 'a.b'], 'a.# queue');
    $ch->close();
});

check('route headers', function () use ($conn, $EX) {
    $ch = $conn->channel();
    $all = bound($ch, $EX['headers'], '', ['x-match' => 'all', 'h1' => 'v1', 'h2' => 'v2']);
    $any = bound($ch, $EX['headers'], '', ['x-match' => 'any', 'h1' => 'v1', 'h2' => 'v2']);
    $cases = [
        ['both', ['h1' => 'v1', 'h2' => 'v2', 'h3' => 'x']],
        ['one', ['h1' => 'v1']],
        ['wrong', ['h1' => 'v2', 'h2' => 'v1']],
        ['none', null],
    ];
    foreach ($cases as [$body, $headers]) {
        $props = $headers === null ? [] : ['application_headers' => new AMQPTable($headers)];
        $ch->basic_publish(new AMQPMessage($body, $props), $EX['headers'], '');
    }
    expect_eq(drain($ch, $all), ['both'], 'x-match all queue');
    expect_eq(drain($ch, $any), ['both', 'one'], 'x-match any queue');
    $ch->close();
});

check('exchange-to-exchange binding', function () use ($conn) {
    $ch = $conn->channel();
    $e1 = uname('e1');
    $e2 = uname('e2');
    $ch->exchange_declare($e1, 'direct', false, false, false);
    $ch->exchange_declare($e2, 'fanout', false, false, false);
    $ch->exchange_bind($e2, $e1, 'k');
    $q = bound($ch, $e2);
    $ch->basic_publish(new AMQPMessage('via-e1'), $e1, 'k');
    $ch->basic_publish(new AMQPMessage('not-bound'), $e1, 'other');
    expect_eq(drain($ch, $q), ['via-e1'], 'queue behind e2');
    $ch->exchange_unbind($e2, $e1, 'k');
    $ch->basic_publish(new AMQPMessage('after-unbind'), $e1, 'k');
    expect_eq(drain($ch, $q), [], 'queue behind e2 after exchange.unbind');
    $ch->exchange_delete($e2);
    $ch->exchange_delete($e1);
    $ch->close();
});

check('queue unbind', function () use ($conn, $EX) {
    $ch = $conn->channel();
    $q = bound($ch, $EX['direct'], 'unbind-me');
    $ch->basic_publish(new AMQPMessage('before'), $EX['direct'], 'unbind-me');
    expect_eq(drain($ch, $q), ['before'], 'queue before unbind');
    $ch->queue_unbind($q, $EX['direct'], 'unbind-me');
    $ch->basic_publish(new AMQPMessage('after'), $EX['direct'], 'unbind-me');
    expect_eq(drain($ch, $q), [], 'queue after unbind');
    $ch->close();
});

check('properties and headers round trip', function () use ($conn, $ALL_BYTES) {
    $ch = $conn->channel();
    $q = queue($ch);
    $headers = new AMQPTable();
    $typed = [
        ['bool-true', true, AMQPTable::T_BOOL],
        ['bool-false', false, AMQPTable::T_BOOL],
        ['int8', -128, AMQPTable::T_INT_SHORTSHORT],
        ['uint8', 255, AMQPTable::T_INT_SHORTSHORT_U],
        ['int16', -32768, AMQPTable::T_INT_SHORT],
        ['uint16', 65535, AMQPTable::T_INT_SHORT_U],
        ['int32', -2147483648, AMQPTable::T_INT_LONG],
        ['uint32', 4294967295, AMQPTable::T_INT_LONG_U],
        ['int64', PHP_INT_MAX, AMQPTable::T_INT_LONGLONG],
        ['decimal', new AMQPDecimal(12345, 2), AMQPTable::T_DECIMAL],
        ['long-string', "h\u{e9}llo w\u{f6}rld \u{2713}", AMQPTable::T_STRING_LONG],
        ['bytes', $ALL_BYTES, AMQPTable::T_BYTES],
        ['timestamp', 1704164645, AMQPTable::T_TIMESTAMP],
        ['void', null, AMQPTable::T_VOID],
    ];
    foreach ($typed as [$k, $v, $t]) {
        $headers->set($k, $v, $t);
    }
    $headers->set('table', new AMQPTable(['a' => 1, 'nested' => new AMQPTable(['b' => 'c'])]));
    $headers->set('array', new AMQPArray([1, 'two', true]));
    $props = [
        'content_type' => 'application/octet-stream', 'content_encoding' => 'identity',
        'application_headers' => $headers, 'delivery_mode' => 2, 'priority' => 7,
        'correlation_id' => 'corr-1', 'reply_to' => 'reply-q', 'expiration' => '60000',
        'message_id' => 'msg-1', 'timestamp' => 1704164645, 'type' => 'kind', 'user_id' => 'guest',
        'app_id' => 'php-interop', 'cluster_id' => 'cluster-1',
    ];
    $ch->basic_publish(new AMQPMessage($ALL_BYTES, $props), '', $q);
    $m = get_one($ch, $q);
    expect_eq($m->getBody(), $ALL_BYTES, 'body');
    foreach ($props as $k => $v) {
        if ($k === 'application_headers') {
            continue;
        }
        expect_eq($m->get($k), $v, "property $k");
    }
    $got = $m->get('application_headers');
    $raw = $got->getNativeData();
    foreach ($typed as [$k, $v, $t]) {
        $want = $v instanceof AMQPDecimal ? $v->asBCvalue() : $v;
        $have = $raw[$k];
        if ($have instanceof AMQPDecimal) {
            $have = $have->asBCvalue();
        }
        if ($have instanceof DateTimeInterface) {
            $have = $have->getTimestamp();
        }
        expect_eq($have, $want, "header $k");
    }
    expect_eq($raw['table'], ['a' => 1, 'nested' => ['b' => 'c']], 'header table');
    expect_eq($raw['array'], [1, 'two', true], 'header array');
    $ch->close();
});

check('prefetch honoured', function () {
    $c = connect();
    try {
        $ch = $c->channel();
        $q = queue($ch);
        for ($i = 0; $i < 10; $i++) {
            $ch->basic_publish(new AMQPMessage("$i"), '', $q);
        }
        $ch->basic_qos(0, 3, false);
        $held = [];
        $ch->basic_consume($q, 'prefetch', false, false, false, false, function ($m) use (&$held) {
            $held[] = $m;
        });
        $deadline = microtime(true) + 5;
        while (count($held) < 3 && microtime(true) < $deadline) {
            $ch->wait(null, false, 1);
        }
        expect_eq(count($held), 3, 'deliveries within the prefetch of 3');
        try {
            $ch->wait(null, false, 0.4);
        } catch (AMQPTimeoutException $e) {
        }
        expect_eq(count($held), 3, 'deliveries with none acknowledged');
        $held[0]->ack();
        $ch->wait(null, false, 5);
        try {
            $ch->wait(null, false, 0.4);
        } catch (AMQPTimeoutException $e) {
        }
        expect_eq(count($held), 4, 'deliveries after one ack');
    } finally {
        $c->close();
    }
});

check('basic.get', function () use ($conn) {
    $ch = $conn->channel();
    $q = queue($ch);
    $ch->basic_publish(new AMQPMessage('first'), '', $q);
    $ch->basic_publish(new AMQPMessage('second'), '', $q);
    $m = get_one($ch, $q);
    expect_eq($m->getBody(), 'first', 'body');
    expect_eq($m->getMessageCount(), 1, 'get-ok message-count');
    $ch->close();
});

check('basic.get empty', function () use ($conn) {
    $ch = $conn->channel();
    $q = queue($ch);
    expect($ch->basic_get($q, true) === null, 'get-empty');
    $ch->close();
});

foreach (['reject requeue' => 'reject', 'nack requeue' => 'nack'] as $name => $how) {
    check($name, function () use ($conn, $how) {
        $ch = $conn->channel();
        $q = queue($ch);
        $ch->basic_publish(new AMQPMessage('again'), '', $q);
        $m = get_one($ch, $q, false);
        $how === 'reject' ? $m->reject(true) : $m->nack(true);
        $again = get_one($ch, $q);
        expect_eq($again->getBody(), 'again', 'body');
        expect($again->isRedelivered(), 'redelivered=true');
        $ch->close();
    });
}

check('publisher confirms', function () use ($conn) {
    $ch = $conn->channel();
    $acked = 0;
    $nacked = 0;
    $ch->set_ack_handler(function () use (&$acked) {
        $acked++;
    });
    $ch->set_nack_handler(function () use (&$nacked) {
        $nacked++;
    });
    $ch->confirm_select();
    $q = queue($ch);
    for ($i = 0; $i < 100; $i++) {
        $ch->basic_publish(new AMQPMessage("$i"), '', $q);
    }
    $ch->wait_for_pending_acks(10);
    expect_eq([$acked, $nacked], [100, 0], 'acks and nacks');
    $ch->close();
});

check('mandatory return', function () use ($conn) {
    $ch = $conn->channel();
    $returned = null;
    $ch->set_return_listener(function ($code, $text, $exchange, $key, $m) use (&$returned) {
        $returned = [$code, $text, $m->getBody()];
    });
    $ch->confirm_select();
    $ch->basic_publish(new AMQPMessage('lost'), 'amq.direct', uname('unbound'), true);
    $ch->wait_for_pending_acks_returns(10);
    expect_eq($returned, [312, 'NO_ROUTE', 'lost'], 'basic.return');
    $ch->close();
});

check('tx commit', function () use ($conn) {
    $ch = $conn->channel();
    $q = queue($ch);
    $ch->tx_select();
    $ch->basic_publish(new AMQPMessage('in-tx'), '', $q);
    [, $before] = $ch->queue_declare($q, true);
    expect_eq($before, 0, 'messages before commit');
    $ch->tx_commit();
    expect_eq(drain($ch, $q), ['in-tx'], 'after commit');
    $ch->close();
});

check('tx rollback', function () use ($conn) {
    $ch = $conn->channel();
    $q = queue($ch);
    $ch->tx_select();
    $ch->basic_publish(new AMQPMessage('rolled-back'), '', $q);
    $ch->tx_rollback();
    $ch->tx_commit();
    expect_eq(drain($ch, $q), [], 'after rollback');
    $ch->close();
});

check('purge', function () use ($conn) {
    $ch = $conn->channel();
    $q = queue($ch);
    for ($i = 0; $i < 3; $i++) {
        $ch->basic_publish(new AMQPMessage("$i"), '', $q);
    }
    $deadline = microtime(true) + 5;
    do {
        [, $n] = $ch->queue_declare($q, true);
    } while ($n < 3 && microtime(true) < $deadline);
    expect_eq($ch->queue_purge($q), 3, 'purge-ok message-count');
    $ch->close();
});

check('delete if-unused', function () use ($conn) {
    $ch = $conn->channel();
    $q = queue($ch, false);
    $consumer = $conn->channel();
    $consumer->basic_consume($q, 'in-use', false, true, false, false, function () {
    });
    expect_channel_error(406, fn () => $ch->queue_delete($q, true));
    $consumer->close();
    $ch2 = $conn->channel();
    $ch2->queue_delete($q);
    $ch2->close();
});

check('delete if-empty', function () use ($conn) {
    $ch = $conn->channel();
    $q = queue($ch, false);
    $ch->basic_publish(new AMQPMessage('x'), '', $q);
    get_one($ch, $q, false) && $ch->close();
    $ch = $conn->channel();
    expect_channel_error(406, fn () => $ch->queue_delete($q, false, true));
    $ch2 = $conn->channel();
    $ch2->queue_delete($q);
    $ch2->close();
});

function then_new_channel_works($conn): void
{
    $ch = $conn->channel();
    [$q] = $ch->queue_declare('', false, false, true, false);
    $ch->basic_publish(new AMQPMessage('works'), '', $q);
    expect_eq(drain($ch, $q), ['works'], 'the new channel');
    $ch->close();
}

check('406 on redeclare then new channel works', function () use ($conn) {
    $ch = $conn->channel();
    $q = uname('q');
    $ch->queue_declare($q, false, false, false, false);
    expect_channel_error(406, fn () => $ch->queue_declare($q, false, true, false, false));
    then_new_channel_works($conn);
    $c = $conn->channel();
    $c->queue_delete($q);
    $c->close();
});

check('404 on passive declare then new channel works', function () use ($conn) {
    $ch = $conn->channel();
    expect_channel_error(404, fn () => $ch->queue_declare(uname('missing'), true));
    then_new_channel_works($conn);
});

check('405 on exclusive queue of another connection then new channel works', function () use ($conn) {
    $other = connect();
    try {
        [$q] = $other->channel()->queue_declare(uname('q'), false, false, true, false);
        $ch = $conn->channel();
        expect_channel_error(405, fn () => $ch->queue_declare($q, false, false, true, false));
        then_new_channel_works($conn);
    } finally {
        $other->close();
    }
});

check('403 on wrong password then new channel works', function () use ($conn) {
    $refused = false;
    try {
        connect('wrong');
    } catch (Throwable $e) {
        $refused = $e->getCode() === 403 || str_contains($e->getMessage(), 'ACCESS_REFUSED');
        expect($refused, 'a 403 refusal, got ' . get_class($e) . ': ' . $e->getMessage());
    }
    expect($refused, 'the login refused');
    then_new_channel_works($conn);
});

check('5 MiB message', function () use ($conn, $ALL_BYTES) {
    $ch = $conn->channel();
    $q = queue($ch);
    $body = str_repeat($ALL_BYTES, 5 * 1024 * 4);
    $ch->basic_publish(new AMQPMessage($body), '', $q);
    $m = get_one($ch, $q);
    expect_eq(strlen($m->getBody()), strlen($body), 'size');
    expect($m->getBody() === $body, 'identical bytes');
    $ch->close();
});

check('500 channels', function () {
    $c = connect();
    try {
        $channels = [];
        for ($i = 0; $i < 500; $i++) {
            $channels[] = $c->channel();
        }
        [$q] = $channels[0]->queue_declare('', false, false, true, false);
        foreach ($channels as $i => $ch) {
            $ch->basic_publish(new AMQPMessage("$i"), '', $q);
        }
        $bodies = [];
        $deadline = microtime(true) + 20;
        while (count($bodies) < 500 && microtime(true) < $deadline) {
            $bodies = array_merge($bodies, drain($channels[0], $q));
        }
        sort($bodies);
        $want = array_map('strval', range(0, 499));
        sort($want);
        expect_eq($bodies, $want, 'one message per channel');
    } finally {
        $c->close();
    }
});

check('round-robin consumers', function () {
    $c = connect();
    try {
        $ch = $c->channel();
        $q = queue($ch);
        $counts = [0, 0, 0, 0];
        for ($i = 0; $i < 4; $i++) {
            $ch->basic_consume($q, "c$i", false, true, false, false, function () use (&$counts, $i) {
                $counts[$i]++;
            });
        }
        for ($i = 0; $i < 40; $i++) {
            $ch->basic_publish(new AMQPMessage("$i"), '', $q);
        }
        $deadline = microtime(true) + 10;
        while (array_sum($counts) < 40 && microtime(true) < $deadline) {
            $ch->wait(null, false, 1);
        }
        expect_eq($counts, [10, 10, 10, 10], 'messages per consumer');
    } finally {
        $c->close();
    }
});

try {
    $conn->close();
} catch (Throwable $e) {
}
echo "$passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
