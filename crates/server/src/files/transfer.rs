//! The local provider's transfers, behind signed URLs (the signature is the credential, so no
//! account is involved). An upload streams into a temporary file, stops as soon as it passes
//! the declared length, and is linked into place only when complete, once: a second upload of
//! the same file (a replayed URL) finds the place taken and is refused.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use omnistack_db::Db;
use omnistack_db::files::{self, File, PENDING, UPLOADED};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::FileStore;
use super::signature::Transfer;
use super::storage::LocalStorage;
use crate::error::{Error, Result};

/// What a signed URL carries.
#[derive(Clone, Debug)]
pub struct SignedRequest<'a> {
    /// The file id in the path.
    pub id: &'a str,
    /// `expires` (Unix seconds).
    pub expires: i64,
    /// `signature`.
    pub signature: &'a str,
}

fn refused() -> Error {
    Error::Authorization("the link is invalid or has expired".into())
}

fn local(store: &FileStore) -> Result<&LocalStorage> {
    store.local().ok_or_else(|| Error::NotFound("no route matches this path".into()))
}

/// The file a valid signature names; every failure looks the same.
async fn signed_file(
    db: &Db,
    local: &LocalStorage,
    request: &SignedRequest<'_>,
    transfer: impl Fn(&File) -> Transfer<'_>,
) -> Result<File> {
    let id = Uuid::parse_str(request.id).map_err(|_| refused())?;
    let file = files::find_file(db, id).await?.ok_or_else(refused)?;
    let now = omnistack_db::time::now().timestamp();
    if !local.signer().verify(id, transfer(&file), request.expires, request.signature, now) {
        return Err(refused());
    }
    Ok(file)
}

/// Stores an upload: `content_type` and `content_length` as sent must be the declared ones,
/// and the body exactly that long.
pub async fn receive_upload<S, E>(
    db: &Db,
    store: &FileStore,
    request: &SignedRequest<'_>,
    content_type: Option<&str>,
    content_length: Option<u64>,
    mut body: S,
) -> Result<()>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let local = local(store)?;
    let file =
        signed_file(db, local, request, |f| Transfer::Upload { content_type: &f.content_type, size: f.size_bytes })
            .await?;
    if file.status != PENDING {
        return Err(Error::Conflict("this file has already been uploaded".into()));
    }
    if content_type.map(|t| t.trim().to_ascii_lowercase()).as_deref() != Some(file.content_type.as_str()) {
        return Err(Error::BadRequest(format!("Content-Type must be {}", file.content_type)));
    }
    let declared = u64::try_from(file.size_bytes).unwrap_or(0);
    if content_length != Some(declared) {
        return Err(Error::BadRequest(format!("Content-Length must be {declared}")));
    }
    let target = local.path(&file.storage_key)?;
    let parent = target.parent().map(ToOwned::to_owned).unwrap_or_default();
    tokio::fs::create_dir_all(&parent).await.map_err(internal)?;
    let temporary = parent.join(format!(".{}.part", Uuid::new_v4().simple()));
    let written = write_exactly(&temporary, declared, &mut body).await;
    let linked = match written {
        Ok(()) => tokio::fs::hard_link(&temporary, &target).await,
        Err(err) => {
            let _ = tokio::fs::remove_file(&temporary).await;
            return Err(err);
        }
    };
    let _ = tokio::fs::remove_file(&temporary).await;
    match linked {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(Error::Conflict("this file has already been uploaded".into()))
        }
        Err(err) => Err(internal(err)),
    }
}

/// Writes `body` to `path`, failing as soon as it passes `declared` bytes or when it ends short.
async fn write_exactly<S, E>(path: &std::path::Path, declared: u64, body: &mut S) -> Result<()>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut out = tokio::fs::File::create_new(path).await.map_err(internal)?;
    let mut received: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| Error::BadRequest(format!("the upload was cut short: {err}")))?;
        received += chunk.len() as u64;
        if received > declared {
            return Err(Error::BadRequest(format!("the body is longer than the declared {declared} bytes")));
        }
        out.write_all(&chunk).await.map_err(internal)?;
    }
    if received != declared {
        return Err(Error::BadRequest(format!("the body has {received} bytes, not the declared {declared}")));
    }
    out.sync_all().await.map_err(internal)?;
    Ok(())
}

fn internal(err: std::io::Error) -> Error {
    Error::Internal(anyhow::Error::new(err).context("storing a file"))
}

/// The uploaded file a signed download URL names, and its bytes.
pub async fn open_download(db: &Db, store: &FileStore, request: &SignedRequest<'_>) -> Result<(File, tokio::fs::File)> {
    let local = local(store)?;
    let file = signed_file(db, local, request, |_| Transfer::Download).await?;
    if file.status != UPLOADED {
        return Err(Error::NotFound("file not found".into()));
    }
    let opened = tokio::fs::File::open(local.path(&file.storage_key)?).await;
    match opened {
        Ok(handle) => Ok((file, handle)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound("file not found".into())),
        Err(err) => Err(internal(err)),
    }
}
