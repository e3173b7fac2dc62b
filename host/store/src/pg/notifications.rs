//! What crosses daemons as PostgreSQL notifications:
//! - cancels: a daemon asked to cancel a job another daemon runs sends
//!   `NOTIFY toolgate_cancel, '<job id>'`, and the daemon running it cancels it;
//! - queue wake-ups: a scan queued (initiated, re-queued, recovered) sends
//!   `NOTIFY toolgate_queue, '<scan id>'` with the transaction that queued it, so an idle worker
//!   on any daemon claims it at once instead of at its next poll.
//!
//! Every daemon keeps one connection of its own listening on both channels and hands what
//! arrives to its job and scan services.
//!
//! Invariants: the listening connection is not the pool's (a pooled connection goes back to
//! other work, and `LISTEN` belongs to the session); when it fails (the server restarts, the
//! network drops) it is opened again after `RECONNECT_DELAY`, for as long as anyone holds the
//! store; a notification is delivered within the server's round trip, so a cancel reaches the
//! running daemon in well under a second. A notification sent while a daemon is not listening
//! is not replayed: a queued scan is still claimed at the next poll, and a cancel can be sent
//! again.

use std::time::Duration;

use tokio::sync::broadcast;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Socket};

use super::tls::Tls;

use crate::StoreError;

/// The channel cancel requests travel on.
pub(super) const CANCEL_CHANNEL: &str = "toolgate_cancel";

/// The channel queue wake-ups travel on.
pub(super) const QUEUE_CHANNEL: &str = "toolgate_queue";

/// How many notifications wait for a service before the oldest are dropped: a burst beyond
/// this is not a workload; a dropped cancel only means that job runs to its end, a dropped
/// wake-up that the scan waits for the next poll.
const BACKLOG: usize = 1024;

/// How long the relay waits before listening again after its connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Where notifications from other daemons are handed out (each service subscribes).
#[derive(Clone)]
pub(super) struct Notifications {
    /// Ids of jobs to cancel.
    pub(super) cancels: broadcast::Sender<String>,
    /// Ids of scans just queued.
    pub(super) queued: broadcast::Sender<String>,
}

/// Starts listening to the database at `url`.
pub(super) fn start(url: &str) -> Result<Notifications, StoreError> {
    let super::tls::Target { config, tls } = super::tls::target(url)?;
    let notifications = Notifications {
        cancels: broadcast::channel(BACKLOG).0,
        queued: broadcast::channel(BACKLOG).0,
    };
    let weak = (
        notifications.cancels.downgrade(),
        notifications.queued.downgrade(),
    );
    tokio::spawn(async move {
        loop {
            if weak.0.upgrade().is_none() {
                break;
            }
            let listened = match &tls {
                Tls::Plain => listen(&config, tokio_postgres::NoTls, &weak).await,
                Tls::Verified(connector) => listen(&config, connector.clone(), &weak).await,
            };
            if let Err(error) = listened {
                tracing::warn!(%error, "the notification relay lost its connection; listening again");
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    });
    Ok(notifications)
}

type WeakSenders = (broadcast::WeakSender<String>, broadcast::WeakSender<String>);

/// Listens until the connection ends or the store is gone.
async fn listen<T>(
    config: &tokio_postgres::Config,
    tls: T,
    (cancels, queued): &WeakSenders,
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let (notes, mut received) = tokio::sync::mpsc::unbounded_channel();
    // The connection delivers notifications only while it is polled: a task of its own does it.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    let note = (note.channel().to_string(), note.payload().to_string());
                    if notes.send(note).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => break,
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {CANCEL_CHANNEL}; LISTEN {QUEUE_CHANNEL}"))
        .await?;
    loop {
        let note = tokio::select! {
            note = received.recv() => note,
            // The store may be gone while no notification comes: look now and then.
            () = tokio::time::sleep(RECONNECT_DELAY) => {
                if cancels.upgrade().is_none() {
                    break;
                }
                continue;
            }
        };
        let Some((channel, payload)) = note else {
            break;
        };
        let to = if channel == QUEUE_CHANNEL {
            queued
        } else {
            cancels
        };
        let Some(sender) = to.upgrade() else {
            break;
        };
        // No receiver yet (the services subscribe after the store opens): nothing to do.
        let _ = sender.send(payload);
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
