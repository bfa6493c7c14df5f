//! A small pool of connections, so that the pipeline's workers can apply batches of
//! different keys at the same time. Connections are opened on demand and dropped when they
//! break.

use super::error::pg_error;
use std::sync::Mutex;
use std::time::Duration;
use strata_core::{ErrorKind, SinkError};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, Config, NoTls};

pub(crate) struct Pool {
    config: Config,
    /// `host:port` for messages (never the password).
    target: String,
    connect_timeout: Duration,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

/// A connection taken from the pool; it goes back when dropped, unless it broke.
pub(crate) struct Conn<'a> {
    client: Option<Client>,
    pool: &'a Pool,
    broken: bool,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    pub(crate) fn new(config: Config, size: usize, connect_timeout: Duration) -> Pool {
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
        Pool {
            target: format!("{}:{}", hosts.join(","), ports.join(",")),
            config,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1)),
        }
    }

    /// Where the pool connects, for messages.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// A connection: an idle one, or a new one when none is idle.
    pub(crate) async fn get(&self) -> Result<Conn<'_>, SinkError> {
        let permit = self.permits.acquire().await.map_err(|_| {
            SinkError::new(
                "postgres",
                ErrorKind::Internal,
                "the connection pool is closed",
            )
        })?;
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            std::iter::from_fn(|| idle.pop()).find(|c| !c.is_closed())
        };
        let client = match idle {
            Some(client) => client,
            None => self.connect().await?,
        };
        Ok(Conn {
            client: Some(client),
            pool: self,
            broken: false,
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Client, SinkError> {
        let what = format!("connecting to PostgreSQL at {}", self.target);
        let connecting = self.config.connect(NoTls);
        let (client, connection) =
            match tokio::time::timeout(self.connect_timeout, connecting).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(pg_error(&e, &what)),
                Err(_) => {
                    return Err(SinkError::new(
                        "postgres",
                        ErrorKind::Timeout,
                        format!("{what} took longer than {:?}", self.connect_timeout),
                    ))
                }
            };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }
}

impl Conn<'_> {
    /// The connection's client (only `Drop` takes it out, so it is always there).
    pub(crate) fn client(&mut self) -> Result<&mut Client, SinkError> {
        self.client.as_mut().ok_or_else(|| {
            SinkError::new(
                "postgres",
                ErrorKind::Internal,
                "a pooled connection was used after release",
            )
        })
    }

    /// Keeps this connection out of the pool (its state is unknown after a timeout).
    pub(crate) fn discard(&mut self) {
        self.broken = true;
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !self.broken && !client.is_closed() {
                let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.push(client);
            }
        }
    }
}
