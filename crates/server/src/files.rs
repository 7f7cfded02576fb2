//! File storage: clients upload and download straight to and from the store, so file bytes
//! never pass through the API (except with the `local` provider, whose store is this binary).
//!
//! | module | what |
//! |---|---|
//! | [`storage`] | the `Storage` trait; `LocalStorage` (`DATA_DIR/files`) and `S3Storage` (presigned, `rusty-s3`) |
//! | [`signature`] | the local provider's signed, expiring transfer URLs |
//! | [`disposition`] | `Content-Disposition: attachment` safe for any file name |
//! | [`transfer`] | the local provider's upload and download, behind those URLs |
//!
//! The flow: `issue_upload` checks the name, type, size and the `storage_bytes` quota, records a
//! `pending` row and returns where to PUT; `confirm` checks the stored object has exactly the
//! declared size and type, then marks it `uploaded` and meters it; `files_cleanup` removes
//! pending uploads older than a day. Every route is the owner's only: 404 for anyone else.

pub mod disposition;
pub mod signature;
pub mod storage;
pub mod transfer;

use std::sync::Arc;

use omnistack_db::Db;
use omnistack_db::files::{self, File, FilePage, NewFile, PENDING, UPLOADED};
use uuid::Uuid;

use self::signature::TransferSigner;
use self::storage::{LocalStorage, Object, S3Storage, Storage, UploadTarget};
use crate::auth::CurrentUser;
use crate::config::{Config, FileSettings, StorageProvider, media_type};
use crate::error::{Error, FieldError, Result};
use crate::owned;
use crate::usage::{Usage, metric};

/// What error messages call a file.
const WHAT: &str = "file";
/// Longest file name, in characters.
pub const MAX_FILENAME_LEN: usize = 255;
/// Largest page.
pub const MAX_PAGE: i64 = 100;

/// The file store and its rules. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FileStore {
    storage: Arc<dyn Storage>,
    local: Option<Arc<LocalStorage>>,
    settings: Arc<FileSettings>,
}

impl FileStore {
    /// The store `config` names (`STORAGE_PROVIDER`), calling S3 through `http`.
    pub fn from_config(config: &Config, http: reqwest::Client) -> anyhow::Result<FileStore> {
        let settings = Arc::new(config.files.clone());
        Ok(match &settings.provider {
            StorageProvider::Local { root } => {
                let signer = TransferSigner::new(config.secret_key.expose());
                let local = Arc::new(LocalStorage::new(root.clone(), signer, settings.public_url.as_deref()));
                FileStore { storage: local.clone(), local: Some(local), settings }
            }
            StorageProvider::S3(s3) => {
                FileStore { storage: Arc::new(S3Storage::new(s3, http)?), local: None, settings }
            }
        })
    }

    /// The settings (`FILES_*`).
    pub fn settings(&self) -> &FileSettings {
        &self.settings
    }

    /// The store.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The local store, when `STORAGE_PROVIDER=local`.
    pub fn local(&self) -> Option<&LocalStorage> {
        self.local.as_deref()
    }
}

/// An issued upload.
#[derive(Debug)]
pub struct IssuedUpload {
    /// The pending file.
    pub file: File,
    /// Where and how to send its bytes.
    pub target: UploadTarget,
    /// Seconds the URL is valid.
    pub expires_in: u64,
}

/// The problem with a file name, if any: 1..=255 characters, a name rather than a path, no
/// control characters and no bidirectional overrides (which disguise extensions).
pub fn check_filename(name: &str) -> Option<FieldError> {
    let bad = |why: &str| Some(FieldError::new("filename", why));
    let count = name.chars().count();
    if count == 0 || count > MAX_FILENAME_LEN || name.trim().is_empty() {
        return bad("must be 1 to 255 characters, not all whitespace");
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return bad("must be a file name, not a path");
    }
    let disallowed = |c: char| {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if name.chars().any(disallowed) {
        return bad("must not contain control or bidirectional formatting characters");
    }
    None
}

/// Issues an upload URL for a new file of the caller's: 422 on a bad name, type or size, 402
/// when it would pass the plan's `storage_bytes`.
pub async fn issue_upload(
    db: &Db,
    store: &FileStore,
    usage: &Usage,
    caller: &CurrentUser,
    filename: &str,
    content_type: &str,
    size: i64,
) -> Result<IssuedUpload> {
    let settings = store.settings();
    let mut problems: Vec<FieldError> = check_filename(filename).into_iter().collect();
    let content_type = match media_type(content_type) {
        Some(t) if settings.allowed_types.allows(&t) => Some(t),
        Some(_) => {
            problems.push(FieldError::new("content_type", "this type of file is not allowed"));
            None
        }
        None => {
            problems.push(FieldError::new("content_type", "must be a media type (type/subtype, no parameters)"));
            None
        }
    };
    let max = i64::try_from(settings.max_bytes).unwrap_or(i64::MAX);
    if !(0..=max).contains(&size) {
        problems.push(FieldError::new("size", format!("must be from 0 to {max} bytes")));
    }
    let Some(content_type) = content_type.filter(|_| problems.is_empty()) else {
        return Err(Error::Validation(problems));
    };
    // Each pending upload holds a row (and maybe an object) until confirmed or cleaned up.
    let max_pending = settings.max_pending;
    if files::count_files(db, caller.user.id, PENDING).await? >= max_pending {
        return Err(Error::Conflict(format!("{max_pending} uploads are already pending; confirm or delete some")));
    }
    usage.ensure_within(&caller.user, metric::STORAGE_BYTES, size).await?;
    let id = Uuid::now_v7();
    let key = format!("{}/{id}", caller.user.id);
    let ttl = settings.url_ttl;
    let target = store.storage().upload_target(Object { id, key: &key }, &content_type, size, ttl)?;
    let new = NewFile {
        id,
        owner_id: caller.user.id,
        filename,
        content_type: &content_type,
        size_bytes: size,
        storage_key: &key,
    };
    let file = files::insert_file(db, &new).await?;
    Ok(IssuedUpload { file, target, expires_in: ttl.as_secs() })
}

/// The type part of a `Content-Type` value, lowercased.
fn essence(value: &str) -> String {
    value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Marks the caller's upload done once the store holds exactly the declared size and type;
/// otherwise 400 and the object is removed. Confirming twice answers the file again.
pub async fn confirm(db: &Db, store: &FileStore, usage: &Usage, caller: &CurrentUser, id: &str) -> Result<File> {
    let file: File = owned::find(db, caller.user.id, id, WHAT).await?;
    if file.status == UPLOADED {
        return Ok(file);
    }
    let storage = store.storage();
    let Some(meta) = storage.head(&file.storage_key).await? else {
        return Err(Error::BadRequest("nothing has been uploaded for this file yet".into()));
    };
    let size_ok =
        i64::try_from(meta.size).is_ok_and(|s| s == file.size_bytes) && meta.size <= store.settings().max_bytes;
    let type_ok = meta.content_type.as_deref().is_none_or(|t| essence(t) == file.content_type);
    if !size_ok || !type_ok {
        storage.delete(&file.storage_key).await?;
        return Err(Error::BadRequest(format!(
            "the upload does not match the declared size ({} bytes) and type ({}); it was removed",
            file.size_bytes, file.content_type
        )));
    }
    // Uploads issued side by side may together pass the limit each one kept to.
    if let Err(err) = usage.ensure_within(&caller.user, metric::STORAGE_BYTES, file.size_bytes).await {
        storage.delete(&file.storage_key).await?;
        return Err(err);
    }
    // The file turns `uploaded` in the same commit as the storage it takes is counted.
    let mut tx = db.begin().await?;
    let Some(uploaded) = files::mark_uploaded(&mut tx, caller.user.id, file.id).await? else {
        // Confirmed by a concurrent call meanwhile.
        drop(tx);
        return owned::find(db, caller.user.id, id, WHAT).await;
    };
    let queued = usage.record_in(&mut tx, caller.user.id, &[(metric::STORAGE_BYTES, uploaded.size_bytes)], &[]).await?;
    usage.commit(tx, queued).await?;
    usage.count(caller.user.id, metric::FILE_UPLOADS, 1, &[]);
    Ok(uploaded)
}

/// A page of the caller's files, newest first, optionally only `pending` or `uploaded` ones.
pub async fn list(db: &Db, caller: &CurrentUser, status: Option<&str>, skip: i64, limit: i64) -> Result<FilePage> {
    let mut problems = FieldError::page(skip, limit, MAX_PAGE);
    if status.is_some_and(|s| s != PENDING && s != UPLOADED) {
        problems.push(FieldError::new("status", "must be pending or uploaded"));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    Ok(files::list_files(db, caller.user.id, status, skip, limit).await?)
}

/// The caller's files after `after` (from the newest when `None`), newest first, optionally
/// only `pending` or `uploaded` ones: keyset pages.
pub async fn list_after(
    db: &Db,
    caller: &CurrentUser,
    status: Option<&str>,
    after: Option<omnistack_db::owned::Cursor>,
    limit: i64,
) -> Result<owned::Slice<File>> {
    if let Some(problem) = owned::check_limit(limit) {
        return Err(Error::Validation(vec![problem]));
    }
    let rows = files::list_files_after(db, caller.user.id, status, after, limit + 1).await?;
    Ok(owned::Slice::of(rows, limit))
}

/// One of the caller's files.
pub async fn get(db: &Db, caller: &CurrentUser, id: &str) -> Result<File> {
    owned::find(db, caller.user.id, id, WHAT).await
}

/// A download URL for one of the caller's uploaded files, and how long it is valid.
pub async fn download_url(
    db: &Db,
    store: &FileStore,
    usage: &Usage,
    caller: &CurrentUser,
    id: &str,
) -> Result<(String, u64)> {
    let file: File = owned::find(db, caller.user.id, id, WHAT).await?;
    if file.status != UPLOADED {
        return Err(Error::Conflict("the file's upload has not been confirmed".into()));
    }
    let ttl = store.settings().url_ttl;
    let disposition = disposition::attachment(&file.filename);
    let url = store.storage().download_url(Object { id: file.id, key: &file.storage_key }, &disposition, ttl)?;
    usage.count(caller.user.id, metric::FILE_DOWNLOADS, 1, &[]);
    Ok((url, ttl.as_secs()))
}

/// Deletes one of the caller's files: the object, then the row (a store that fails keeps both),
/// in the same commit as the storage it gives back.
pub async fn delete(db: &Db, store: &FileStore, usage: &Usage, caller: &CurrentUser, id: &str) -> Result<()> {
    let file: File = owned::find(db, caller.user.id, id, WHAT).await?;
    store.storage().delete(&file.storage_key).await?;
    let mut tx = db.begin().await?;
    let Some(deleted) = files::delete_file(&mut tx, caller.user.id, file.id).await? else {
        return Err(owned::not_found(WHAT));
    };
    let mut queued = false;
    if deleted.status == UPLOADED {
        queued = usage.record_in(&mut tx, caller.user.id, &[(metric::STORAGE_BYTES, -deleted.size_bytes)], &[]).await?;
    }
    usage.commit(tx, queued).await
}
