//! Several instances on one database (PostgreSQL): the work that exactly one of them may do
//! at a time. The deadline watcher is one role across all instances (a lease named
//! `deadlines`); federation delivery is one role per link (see the federation worker).
//! Per-instance settings (listen addresses, the key directory) live in each instance's
//! configuration, never in the shared database.

use crate::error::Result;
use crate::node::Node;
use jiff::Timestamp;

/// The lease name of the deadline watcher.
pub const DEADLINES: &str = "deadlines";

/// The deadline watcher of one instance: runs [`Node::tick`] only while this instance holds
/// the `deadlines` lease (always on SQLite). The lease is kept once taken; an instance
/// without it tries again at each tick and takes over when the holder dies.
pub struct DeadlineWatcher {
    node: Node,
    lease: Option<liaison_store::locks::Lease>,
}

impl DeadlineWatcher {
    pub fn new(node: Node) -> Self {
        DeadlineWatcher { node, lease: None }
    }

    /// Whether this instance runs the deadline watcher now.
    pub fn is_owner(&self) -> bool {
        self.lease.is_some()
    }

    /// One pass, if this instance holds the role: `Ok(None)` when another instance does.
    pub async fn tick(&mut self, now: Timestamp) -> Result<Option<crate::requests::TickReport>> {
        if let Some(l) = self.lease.as_mut()
            && !l.alive().await
        {
            tracing::warn!("lost the deadline watcher lease (database connection ended)");
            self.lease = None;
        }
        if self.lease.is_none() {
            match self.node.store.try_lease(DEADLINES).await? {
                Some(l) => {
                    tracing::info!("this instance runs the deadline watcher");
                    self.lease = Some(l);
                }
                None => return Ok(None),
            }
        }
        let mut r = self.node.tick(now).await?;
        // E-mails and webhooks: sent by the instance that runs the watcher, so only once.
        let d = self.node.deliver_pass(now).await?;
        r.delivered = d.sent;
        r.retrying = d.retrying;
        r.given_up = d.failed;
        Ok(Some(r))
    }
}
