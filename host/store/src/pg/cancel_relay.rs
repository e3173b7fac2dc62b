//! Cancels that cross daemons: a daemon asked to cancel a job another daemon runs sends
//! `NOTIFY toolgate_cancel, '<job id>'`; every daemon keeps one connection of its own listening
//! on that channel and hands each id to its job service, which cancels the job if it runs it.
//!
//! Invariants: the listening connection is not the pool's (a pooled connection goes back to
//! other work, and `LISTEN` belongs to the session); when it fails (the server restarts, the
//! network drops) it is opened again after `RECONNECT_DELAY`, for as long as anyone holds the
//! store; a notification is delivered within the server's round trip, so a cancel reaches the
//! running daemon in well under a second.

use std::time::Duration;

use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

use crate::StoreError;

/// The channel cancel requests travel on.
pub(super) const CHANNEL: &str = "toolgate_cancel";

/// How many requests wait for the job service before the oldest are dropped: a burst of cancels
/// beyond this is not a workload, and a dropped id only means that job runs to its end.
const BACKLOG: usize = 1024;

/// How long the relay waits before listening again after its connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Starts the relay for the database at `url`; the sender hands out receivers.
pub(super) fn start(url: &str) -> Result<broadcast::Sender<String>, StoreError> {
    let config: tokio_postgres::Config = url.parse()?;
    let (sender, _) = broadcast::channel(BACKLOG);
    let relay = sender.downgrade();
    tokio::spawn(async move {
        loop {
            if relay.upgrade().is_none() {
                break;
            }
            if let Err(error) = listen(&config, &relay).await {
                tracing::warn!(%error, "the cancel relay lost its connection; listening again");
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    });
    Ok(sender)
}

/// Listens until the connection ends or the store is gone.
async fn listen(
    config: &tokio_postgres::Config,
    relay: &broadcast::WeakSender<String>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (ids, mut received) = tokio::sync::mpsc::unbounded_channel();
    // The connection delivers notifications only while it is polled: a task of its own does it.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    if ids.send(note.payload().to_string()).is_err() {
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
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    loop {
        let id = tokio::select! {
            id = received.recv() => id,
            // The store may be gone while no notification comes: look now and then.
            () = tokio::time::sleep(RECONNECT_DELAY) => {
                if relay.upgrade().is_none() {
                    break;
                }
                continue;
            }
        };
        let (Some(id), Some(sender)) = (id, relay.upgrade()) else {
            break;
        };
        // No receiver yet (the job service subscribes after the store opens): nothing to do.
        let _ = sender.send(id);
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
