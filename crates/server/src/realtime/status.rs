//! Who is connected: the caller's own sockets, and for admins the whole deployment.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::hub::Hub;
use super::shared::InstanceCount;

/// One socket of the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// The connection id (as in `connected`).
    pub connection_id: Uuid,
    /// The instance holding it.
    pub instance_id: String,
    /// When it was accepted (known for sockets on the answering instance).
    pub connected_at: Option<DateTime<Utc>>,
    /// Its channels (known for sockets on the answering instance).
    pub channels: Option<Vec<String>>,
}

/// One instance's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceStatus {
    /// The instance id.
    pub instance_id: String,
    /// Open sockets.
    pub connections: u64,
    /// Accounts with at least one socket there.
    pub users: u64,
}

/// The deployment as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalStatus {
    /// Open sockets on every instance.
    pub connections: u64,
    /// Accounts with at least one socket anywhere.
    pub users_online: u64,
    /// Per-instance counts (the answering instance's are live, others' as of their last
    /// heartbeat).
    pub instances: Vec<InstanceStatus>,
}

/// The answer of `GET /app/ws/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The answering instance.
    pub instance_id: String,
    /// The caller's sockets, on every instance.
    pub connections: Vec<ConnectionStatus>,
    /// Only for admins.
    pub global: Option<GlobalStatus>,
}

impl Hub {
    /// The sockets of `user_id`, and the global view when `global`.
    pub async fn status(&self, user_id: Uuid, global: bool) -> Status {
        let me = self.inner.instance_id.to_string();
        let mut connections: Vec<ConnectionStatus> = self
            .inner
            .registry
            .connections_of(user_id)
            .into_iter()
            .map(|c| ConnectionStatus {
                connection_id: c.id,
                instance_id: me.clone(),
                connected_at: Some(c.connected_at),
                channels: Some(c.channels),
            })
            .collect();
        if let Some(shared) = &self.inner.shared {
            match shared.sockets_of(user_id).await {
                Ok(all) => connections.extend(all.into_iter().filter(|(instance, _)| *instance != me).map(
                    |(instance_id, connection_id)| ConnectionStatus {
                        connection_id,
                        instance_id,
                        connected_at: None,
                        channels: None,
                    },
                )),
                Err(err) => self.inner.redis_failed("list the account's sockets", &err),
            }
        }
        let global = if global { Some(self.global_status().await) } else { None };
        Status { instance_id: me, connections, global }
    }

    /// Sockets and online accounts on every instance (this one's alone without Redis).
    pub(crate) async fn global_status(&self) -> GlobalStatus {
        let (connections, users) = self.inner.registry.counts();
        let here = InstanceCount {
            instance_id: self.inner.instance_id.to_string(),
            connections: connections as u64,
            users: users as u64,
        };
        let mut counts = Vec::new();
        let mut users_online = users as u64;
        if let Some(shared) = &self.inner.shared {
            match shared.instances().await {
                Ok(list) => counts = list,
                Err(err) => self.inner.redis_failed("read instance counts", &err),
            }
            match shared.present(None).await {
                Ok(online) => users_online = online.len() as u64,
                Err(err) => self.inner.redis_failed("count online accounts", &err),
            }
        }
        counts.retain(|count| count.instance_id != here.instance_id);
        counts.push(here);
        counts.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        let instances: Vec<InstanceStatus> = counts
            .into_iter()
            .map(|c| InstanceStatus { instance_id: c.instance_id, connections: c.connections, users: c.users })
            .collect();
        GlobalStatus { connections: instances.iter().map(|i| i.connections).sum(), users_online, instances }
    }
}
