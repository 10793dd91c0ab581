//! Settings from flags and environment variables (clap reads both; see `main.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

/// Everything the server needs, resolved and checked.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub data_dir: PathBuf,
    pub bind: String,
    pub base_url: String,
    pub secret_key: SecretKey,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub notify_interval: Duration,
    /// Create a demo account on a brand-new database (the server does; tests don't).
    pub create_demo: bool,
    /// HTTP worker threads; `None` = one per core.
    pub workers: Option<usize>,
    pub db_pool_size: u32,
    /// Longest wait for a database connection on a request path before answering 503.
    pub db_wait: Duration,
    /// How long after its last successful check a token keeps passing the gateway while the
    /// database is unreachable (zero: never).
    pub outage_grace: Duration,
}

impl Settings {
    /// Secure cookies whenever the app is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

/// The server's signing key (sessions, JWTs). `Debug` never prints it.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    pub fn from_text(text: &str) -> anyhow::Result<SecretKey> {
        let text = text.trim();
        if text.len() < 32 {
            bail!(
                "APITOKENS_SECRET_KEY must be at least 32 characters (try: openssl rand -hex 32)"
            );
        }
        Ok(SecretKey(text.as_bytes().to_vec()))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Reads `<data dir>/secret_key`, creating it (mode 0600) on first run.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<SecretKey> {
        let path = data_dir.join("secret_key");
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretKey::from_text(&text).with_context(|| {
                format!(
                    "the key file {} is damaged; delete it to make a new one",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).context("the OS random number generator failed")?;
                let text = hex::encode(bytes);
                write_private(&path, text.as_bytes())?;
                SecretKey::from_text(&text)
            }
            Err(e) => Err(e).with_context(|| format!("can't read the key file {}", path.display())),
        }
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("can't create the key file {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

/// Makes sure the data directory exists and can be written to, with a message saying how to fix it.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "can't create the data directory {}; set APITOKENS_DATA_DIR to a writable directory",
            dir.display()
        )
    })?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").with_context(|| {
        format!(
            "the data directory {} is not writable; set APITOKENS_DATA_DIR to a writable directory",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::load_or_create(dir.path()).unwrap();
        let b = SecretKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        assert_eq!(a.bytes().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret_key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{a:?}").contains(&String::from_utf8_lossy(a.bytes()).to_string()));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(SecretKey::from_text("short").is_err());
        assert!(SecretKey::from_text(&"k".repeat(32)).is_ok());
    }
}
