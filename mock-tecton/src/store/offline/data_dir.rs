//! Where the offline store's files live: a directory the user named, or a fresh temporary one.
//!
//! The mock only ever deletes what it made: `<dir>/offline/` of a named directory, or the whole
//! temporary directory. A mock that is killed cannot remove its temporary directory, so each
//! one holds a lock on its `.owner` file while it runs (the operating system lets the lock go
//! however the process ends), and a mock creating a temporary directory first removes those
//! whose owner is gone.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Temporary data directories are named `tecton-sim-<pid>-<n>-<nanos>`.
const TEMP_PREFIX: &str = "tecton-sim-";

/// The file a running mock keeps locked in its temporary directory.
const OWNER: &str = ".owner";

/// The data directory of one mock instance.
#[derive(Debug)]
pub(crate) struct DataDir {
    root: PathBuf,
    temporary: bool,
    keep: bool,
    /// The locked `.owner` file of a temporary directory, once it exists.
    owner: OnceLock<File>,
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
                owner: OnceLock::new(),
            },
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let name = format!(
                    "{TEMP_PREFIX}{}-{}-{nanos:09}",
                    std::process::id(),
                    NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
                );
                DataDir {
                    root: std::env::temp_dir().join(name),
                    temporary: true,
                    keep,
                    owner: OnceLock::new(),
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
        if self.temporary && self.owner.get().is_none() {
            remove_leftovers(self.root.parent().unwrap_or(Path::new(".")));
            self.create_owned()?;
        }
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

    /// Creates the temporary directory with its `.owner` locked. It is made under a hidden name
    /// and renamed once locked, so another mock never sees it unlocked.
    fn create_owned(&self) -> io::Result<()> {
        let name = self.root.file_name().unwrap_or_default().to_string_lossy();
        let staging = self.root.with_file_name(format!(".{name}.new"));
        std::fs::create_dir_all(&staging)?;
        let owner = File::create(staging.join(OWNER))?;
        owner.lock()?;
        std::fs::rename(&staging, &self.root)?;
        // A second call cannot race here: `prepare` runs under the store's flush lock.
        let _ = self.owner.set(owner);
        Ok(())
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

/// Removes the temporary data directories under `temp` whose mock has gone without removing
/// them (killed, or crashed): their `.owner` lock can be taken. Directories without an `.owner`
/// file are left alone. Best effort: a directory that cannot be read or removed stays.
fn remove_leftovers(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    let mut removed = 0usize;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let ours = rest.split('-').count() == 3
            && rest
                .split('-')
                .all(|part| part.bytes().all(|b| b.is_ascii_digit()));
        if !ours {
            continue;
        }
        let dir = entry.path();
        let Ok(owner) = File::open(dir.join(OWNER)) else {
            continue;
        };
        match owner.try_lock() {
            Ok(()) => {
                drop(owner);
                if std::fs::remove_dir_all(&dir).is_ok() {
                    removed += 1;
                }
            }
            Err(TryLockError::WouldBlock | TryLockError::Error(_)) => {}
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            "removed data directories left by mocks that did not exit cleanly"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("data-dir-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn leftover(temp: &Path, name: &str, owner: bool) -> PathBuf {
        let dir = temp.join(name);
        std::fs::create_dir_all(dir.join("offline")).unwrap();
        if owner {
            File::create(dir.join(OWNER)).unwrap();
        }
        dir
    }

    #[test]
    fn only_directories_whose_owner_is_gone_are_removed() {
        let temp = scratch("leftovers");
        let gone = leftover(&temp, "tecton-sim-11-0-000000001", true);
        let running = leftover(&temp, "tecton-sim-12-0-000000002", true);
        let held = File::open(running.join(OWNER)).unwrap();
        held.lock().unwrap();
        let unowned = leftover(&temp, "tecton-sim-13-0-000000003", false);
        let named = leftover(&temp, "tecton-sim-mine", true);

        remove_leftovers(&temp);

        assert!(
            !gone.exists(),
            "a directory whose lock is free is a leftover"
        );
        assert!(
            running.exists(),
            "a locked directory belongs to a running mock"
        );
        assert!(unowned.exists(), "without an owner file nobody can tell");
        assert!(named.exists(), "only the mock's own naming is swept");
        drop(held);
        std::fs::remove_dir_all(&temp).unwrap();
    }

    #[test]
    fn a_temporary_directory_is_locked_while_its_mock_runs_and_removed_after() {
        let first = DataDir::new(None, false);
        first.prepare().unwrap();
        assert!(first.offline().is_dir());
        // Another mock starting now sweeps leftovers and must leave the running one alone.
        let second = DataDir::new(None, false);
        second.prepare().unwrap();
        assert!(first.offline().is_dir());
        let probe = File::open(first.root().join(OWNER)).unwrap();
        assert!(matches!(probe.try_lock(), Err(TryLockError::WouldBlock)));
        drop(probe);
        first.remove().unwrap();
        second.remove().unwrap();
        assert!(!first.root().exists() && !second.root().exists());
    }
}
