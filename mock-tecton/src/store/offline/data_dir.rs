//! Where the offline store's files live: a directory the user named, or a fresh temporary one.
//!
//! The mock only ever deletes what it made: `<dir>/offline/` of a named directory, or the whole
//! temporary directory.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The data directory of one mock instance.
#[derive(Debug)]
pub(crate) struct DataDir {
    root: PathBuf,
    temporary: bool,
    keep: bool,
}

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

impl DataDir {
    /// `named` (made absolute), or a fresh directory under the system's temporary directory. Nothing is created
    /// on disk yet ([`DataDir::prepare`] or the first flush does that).
    pub(crate) fn new(named: Option<&Path>, keep: bool) -> Self {
        match named {
            Some(p) => DataDir {
                // Absolute, so that health and logs name it unambiguously.
                root: std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
                temporary: false,
                keep,
            },
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let name = format!(
                    "tecton-sim-{}-{}-{nanos:09}",
                    std::process::id(),
                    NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
                );
                DataDir {
                    root: std::env::temp_dir().join(name),
                    temporary: true,
                    keep,
                }
            }
        }
    }

    /// The directory (`--data-dir`, or the temporary one).
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/offline`, the offline store's tree.
    pub(crate) fn offline(&self) -> PathBuf {
        self.root.join("offline")
    }

    /// Whether the data outlives the mock.
    pub(crate) fn keeps_data(&self) -> bool {
        self.keep
    }

    /// Creates the directories, refusing an offline store left by an earlier run (its sequence
    /// numbers would collide with this run's).
    pub(crate) fn prepare(&self) -> io::Result<()> {
        let offline = self.offline();
        if offline.is_dir() && std::fs::read_dir(&offline)?.next().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already holds an offline store from an earlier run; move it away or \
                     choose another data directory",
                    offline.display()
                ),
            ));
        }
        std::fs::create_dir_all(&offline).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create the data directory {}: {e}",
                    offline.display()
                ),
            )
        })
    }

    /// Deletes the offline store's files (reset), keeping the directory itself.
    pub(crate) fn empty(&self) -> io::Result<()> {
        let offline = self.offline();
        match std::fs::read_dir(&offline) {
            Ok(entries) => {
                for entry in entries {
                    let path = entry?.path();
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes what the mock made, unless the data is kept.
    pub(crate) fn remove(&self) -> io::Result<()> {
        if self.keep {
            return Ok(());
        }
        let target = if self.temporary {
            self.root.clone()
        } else {
            self.offline()
        };
        match std::fs::remove_dir_all(&target) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
