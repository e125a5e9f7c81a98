//! Declarations: exchanges and queues declared, deleted, bound and
//! unbound, queues purged. The rules live in the vhost; this file turns
//! methods into its calls and answers them.
//!
//! As RabbitMQ does, carriage returns and line feeds are stripped from the
//! names in declare, delete, bind and unbind (`"q\n"` declares `q`), and
//! only there: publish, consume, get and purge take names as they come.

use warren_codec::*;
use warren_protocol::AmqpError;

use super::Session;
use crate::vhost::{BindingChange, BindingTarget};

impl Session {
    pub(super) async fn exchange_declare(
        &mut self,
        ch: u16,
        mut d: ExchangeDeclare,
        out: &mut dyn super::Outbox,
    ) -> Result<(), AmqpError> {
        d.exchange = strip_cr_lf(d.exchange);
        self.vhost.declare_exchange(&d).await?;
        if !d.no_wait {
            out.send_method(ch, ExchangeDeclareOk {}.into());
        }
        Ok(())
    }

    pub(super) async fn exchange_delete(
        &mut self,
        ch: u16,
        d: ExchangeDelete,
        out: &mut dyn super::Outbox,
    ) -> Result<(), AmqpError> {
        let exchange = strip_cr_lf(d.exchange);
        self.vhost.delete_exchange(&exchange, d.if_unused).await?;
        if !d.no_wait {
            out.send_method(ch, ExchangeDeleteOk {}.into());
        }
        Ok(())
    }

    /// exchange.bind and exchange.unbind.
    pub(super) async fn exchange_binding(
        &mut self,
        change: BindingChange,
        source: ShortString,
        destination: ShortString,
        routing_key: ShortString,
        arguments: FieldTable,
    ) -> Result<(), AmqpError> {
        let (source, destination) = (strip_cr_lf(source), strip_cr_lf(destination));
        let target = BindingTarget::Exchange(&destination);
        self.vhost
            .change_binding(change, &source, target, routing_key, arguments)
            .await
    }

    pub(super) async fn queue_declare(
        &mut self,
        ch: u16,
        mut d: QueueDeclare,
        out: &mut dyn super::Outbox,
    ) -> Result<(), AmqpError> {
        d.queue = strip_cr_lf(d.queue);
        let (queue, message_count, consumer_count) =
            self.vhost.declare_queue(self.conn, &d).await?;
        self.channel(ch)?.last_queue = Some(queue.name.clone());
        if !d.no_wait {
            let ok = QueueDeclareOk {
                queue: queue.name.clone(),
                message_count,
                consumer_count,
            };
            out.send_method(ch, ok.into());
        }
        Ok(())
    }

    /// queue.bind and queue.unbind (an empty queue name: the channel's last).
    pub(super) async fn queue_binding(
        &mut self,
        ch: u16,
        change: BindingChange,
        queue: ShortString,
        exchange: ShortString,
        routing_key: ShortString,
        arguments: FieldTable,
    ) -> Result<(), AmqpError> {
        let (queue, exchange) = (strip_cr_lf(queue), strip_cr_lf(exchange));
        // The spec: with the queue name empty too, an empty routing key
        // is the (last declared) queue's name.
        let by_name = queue.is_empty() && routing_key.is_empty();
        let queue = self.queue_name(ch, &queue)?;
        let routing_key = if by_name { queue.clone() } else { routing_key };
        let target = BindingTarget::Queue(&queue, self.conn);
        self.vhost
            .change_binding(change, &exchange, target, routing_key, arguments)
            .await
    }

    pub(super) async fn queue_purge(
        &mut self,
        ch: u16,
        p: QueuePurge,
        out: &mut dyn super::Outbox,
    ) -> Result<(), AmqpError> {
        let name = self.queue_name(ch, &p.queue)?;
        let message_count = self.vhost.find_queue(&name, self.conn)?.purge().await;
        if !p.no_wait {
            out.send_method(ch, QueuePurgeOk { message_count }.into());
        }
        Ok(())
    }

    pub(super) async fn queue_delete(
        &mut self,
        ch: u16,
        d: QueueDelete,
        out: &mut dyn super::Outbox,
    ) -> Result<(), AmqpError> {
        let name = self.queue_name(ch, &strip_cr_lf(d.queue))?;
        let message_count = self
            .vhost
            .delete_queue(self.conn, &name, d.if_unused, d.if_empty)
            .await?;
        if !d.no_wait {
            out.send_method(ch, QueueDeleteOk { message_count }.into());
        }
        Ok(())
    }
}

/// The name without carriage returns and line feeds; untouched (no copy)
/// when it has none.
fn strip_cr_lf(name: ShortString) -> ShortString {
    if !name.as_bytes().iter().any(|b| matches!(b, b'\r' | b'\n')) {
        return name;
    }
    let kept: Vec<u8> = name
        .as_bytes()
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    ShortString::try_from(&kept[..]).expect("shorter than the name it came from")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriage_returns_and_line_feeds_leave_names() {
        let stripped = strip_cr_lf(ShortString::from_static("a\r\nb\n"));
        assert_eq!(stripped, "ab");
        assert_eq!(strip_cr_lf(ShortString::from_static("plain")), "plain");
    }
}
