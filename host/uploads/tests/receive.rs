//! Streaming receipt: complete uploads are written and hashed; oversized, interrupted and
//! cancelled uploads leave no file.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use sha2::{Digest, Sha256};
use toolgate_uploads::{UploadError, receive};

type Chunk = Result<Bytes, io::Error>;

fn chunks(parts: &[&[u8]]) -> Vec<Chunk> {
    parts
        .iter()
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect()
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_complete_upload_is_written_with_its_size_and_sha256() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("upload");
    let parts: Vec<Vec<u8>> = (0..50u8)
        .map(|i| vec![i; 10_000 + usize::from(i)])
        .collect();
    let whole: Vec<u8> = parts.concat();
    let body = stream::iter(
        parts
            .iter()
            .map(|p| Ok::<_, io::Error>(Bytes::from(p.clone())))
            .collect::<Vec<_>>(),
    );
    let received = receive(body, &dest, whole.len() as u64)
        .await
        .expect("received");
    assert_eq!(received.size, whole.len() as u64);
    assert_eq!(received.sha256, hex::encode(Sha256::digest(&whole)));
    assert_eq!(received.path, dest);
    assert_eq!(std::fs::read(&dest).ok(), Some(whole));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dest)
        .map(|m| m.permissions().mode() & 0o777)
        .ok();
    assert_eq!(mode, Some(0o600));
}

#[tokio::test]
async fn an_empty_body_is_an_empty_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("upload");
    let received = receive(stream::iter(chunks(&[])), &dest, 10)
        .await
        .expect("received");
    assert_eq!(received.size, 0);
    assert_eq!(received.sha256, hex::encode(Sha256::digest(b"")));
}

#[tokio::test]
async fn an_oversized_upload_stops_at_the_limit_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("upload");
    // Exactly at the limit is fine; one byte more is not.
    let at_limit = receive(stream::iter(chunks(&[b"12345", b"67890"])), &dest, 10).await;
    assert_eq!(at_limit.map(|r| r.size).ok(), Some(10));
    std::fs::remove_file(&dest).expect("cleanup");

    let over = receive(stream::iter(chunks(&[b"12345", b"67890", b"1"])), &dest, 10).await;
    assert!(
        matches!(over, Err(UploadError::TooLarge { limit: 10 })),
        "{over:?}"
    );
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );

    // A stream that would never end is cut off at the limit, not read to its end.
    let endless = stream::repeat_with(|| Ok::<_, io::Error>(Bytes::from_static(&[0u8; 4096])));
    let result = receive(endless, &dest, 1 << 20).await;
    assert!(
        matches!(result, Err(UploadError::TooLarge { .. })),
        "{result:?}"
    );
    assert!(names_in(dir.path()).is_empty());
}

#[tokio::test]
async fn a_client_disconnecting_mid_upload_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("upload");
    let mut body = chunks(&[&[1u8; 65_536], &[2u8; 65_536]]);
    body.push(Err(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "client went away",
    )));
    body.extend(chunks(&[b"never reached"]));
    let result = receive(stream::iter(body), &dest, 1 << 30).await;
    match result {
        Err(UploadError::Stream { received, source }) => {
            assert_eq!(received, 131_072);
            assert!(source.to_string().contains("client went away"));
        }
        other => panic!("{other:?}"),
    }
    assert!(names_in(dir.path()).is_empty());
}

#[tokio::test]
async fn a_cancelled_upload_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("upload");
    let (sender, receiver) = tokio::sync::mpsc::channel::<Chunk>(4);
    let body = stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    });
    let task = tokio::spawn({
        let dest = dest.clone();
        async move { receive(body, &dest, 1 << 30).await }
    });
    sender
        .send(Ok(Bytes::from(vec![7u8; 100_000])))
        .await
        .expect("send");
    // Wait until the upload is under way (the file exists), then drop the handler's future, as
    // axum does when the client's connection closes.
    for _ in 0..500 {
        if dest.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(dest.exists(), "the upload never started");
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );
    drop(sender);
}

#[tokio::test]
async fn an_existing_file_is_never_overwritten_nor_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("upload");
    std::fs::write(&dest, b"earlier upload").expect("write");
    let result = receive(stream::iter(chunks(&[b"new"])), &dest, 10).await;
    assert!(
        matches!(&result, Err(UploadError::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists),
        "{result:?}"
    );
    assert_eq!(
        std::fs::read(&dest).ok().as_deref(),
        Some(&b"earlier upload"[..])
    );
}

#[test]
fn the_receive_future_is_send_so_an_axum_handler_can_await_it() {
    fn assert_send<T: Send>(_: &T) {}
    let body = stream::iter(chunks(&[b"x"]));
    let future = receive(body, std::path::Path::new("/nonexistent/never-polled"), 1);
    assert_send(&future);
}
