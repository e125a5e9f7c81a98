//! A plain in-memory queue for unit tests, started as the broker starts one.

use std::sync::Arc;
use warren_codec::ShortString;

use super::{QueueConfig, QueueHandle};
use crate::args::QueueArgs;
use crate::memory::MemoryMonitor;
use crate::stats::Registry;

pub(crate) fn test_queue(registry: &Arc<Registry>) -> Arc<QueueHandle> {
    let config = QueueConfig {
        name: ShortString::from_static("q"),
        durable: false,
        auto_delete: false,
        owner: None,
        args: QueueArgs::default(),
        unused_since: None,
    };
    let stats = registry.add_queue("/", &config.name);
    super::start(
        config,
        Arc::new(MemoryMonitor::new(0)),
        None,
        Vec::new(),
        stats,
        super::QueueHooks {
            lease: Arc::new(|_, _| {}),
            dead_letter: Arc::new(|_, _, _| Default::default()),
        },
    )
}
