//! Identifiers shared across the broker, kept below everything that uses
//! them so that no two files import each other.

/// Identifies a connection to the queues it owns (exclusive) or consumes from.
pub type ConnectionId = u64;
