//! Settings from flags and environment variables (clap reads both; see `main.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use time::OffsetDateTime;

/// Everything the server needs, resolved and checked.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub data_dir: PathBuf,
    pub bind: String,
    pub base_url: String,
    pub secret_key: SecretKey,
    /// The RSA keys that sign JWTs (RS256), with the previous one while it still matters.
    pub jwt_keys: JwtKeyFiles,
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
    /// Proxies whose `X-Forwarded-For` names the client (empty: the TCP peer is the client).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where Prometheus metrics are served (`/metrics`), apart from the app; `None`: nowhere.
    pub metrics_bind: Option<String>,
    /// DKIM: the private key file and the selector; every outgoing mail is signed.
    pub dkim: Option<(PathBuf, String)>,
    /// GitHub-style list of the public keys leak reports are signed with; `None`: the report
    /// endpoint answers 404.
    pub secret_scanning_keys: Option<PathBuf>,
    /// After SIGTERM/SIGINT: how long `/readyz` answers 503 while requests are still served
    /// (so a balancer stops sending new ones), then how long in-flight requests may take.
    pub drain: Duration,
    pub shutdown_timeout: Duration,
    /// How long a confirmed password (and second factor) lets powerful acts go without asking
    /// again ("sudo mode").
    pub sudo_window: Duration,
    /// OpenID issuers allowed over plain `http` (`APITOKENS_INSECURE_ISSUERS`; tests).
    pub insecure_issuers: Vec<String>,
    /// Webhook hosts allowed over plain `http` and on private addresses
    /// (`APITOKENS_WEBHOOK_ALLOW_HOSTS`; tests, internal receivers).
    pub webhook_allow_hosts: Vec<String>,
}

/// `APITOKENS_TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges.
pub fn parse_trusted_proxies(text: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "APITOKENS_TRUSTED_PROXIES: `{s}` is not an address or CIDR range (e.g. 10.0.0.0/8, 127.0.0.1)"
                    )
                })
        })
        .collect()
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

/// The JWT signing key as PEM text, and the key it replaced with when that happened. `Debug`
/// never prints a key.
#[derive(Clone)]
pub struct JwtKeyFiles {
    pub current_pem: String,
    pub previous: Option<(String, OffsetDateTime)>,
}

impl std::fmt::Debug for JwtKeyFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeyFiles(<redacted>)")
    }
}

/// Size of generated signing keys.
pub const JWT_KEY_BITS: usize = 2048;

impl JwtKeyFiles {
    /// The key at `path` (created, mode 0600, if it is the data directory's default and
    /// missing), and `<path>.previous` if a rotation left one.
    pub fn load(path: &Path, create: bool) -> anyhow::Result<JwtKeyFiles> {
        let current_pem = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let pem = generate_rsa_pem()?;
                write_private(path, pem.as_bytes())?;
                pem
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("can't read the JWT signing key {}", path.display()))
            }
        };
        let previous_path = previous_key_path(path);
        let previous = match std::fs::read_to_string(&previous_path) {
            Ok(text) => {
                let retired = std::fs::metadata(&previous_path)
                    .and_then(|m| m.modified())
                    .map(OffsetDateTime::from)
                    .with_context(|| format!("can't read {}", previous_path.display()))?;
                Some((text, retired))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("can't read {}", previous_path.display()))
            }
        };
        Ok(JwtKeyFiles {
            current_pem,
            previous,
        })
    }

    /// Replaces the key at `path` with a new one; the old one becomes `<path>.previous`
    /// (its modification time says when it was retired). An older previous key is dropped.
    pub fn rotate(path: &Path) -> anyhow::Result<()> {
        let previous_path = previous_key_path(path);
        let new_path = path.with_extension("new");
        let _ = std::fs::remove_file(&new_path);
        write_private(&new_path, generate_rsa_pem()?.as_bytes())?;
        if path.exists() {
            let _ = std::fs::remove_file(&previous_path);
            std::fs::rename(path, &previous_path)
                .with_context(|| format!("can't move {} aside", path.display()))?;
            // The rename keeps the old modification time; the retirement is now.
            std::fs::File::options()
                .append(true)
                .open(&previous_path)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()))
                .with_context(|| format!("can't stamp {}", previous_path.display()))?;
        }
        std::fs::rename(&new_path, path)
            .with_context(|| format!("can't install the new key at {}", path.display()))?;
        Ok(())
    }
}

fn previous_key_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".previous");
    path.with_file_name(name)
}

/// A new RSA private key as PKCS#8 PEM.
pub fn generate_rsa_pem() -> anyhow::Result<String> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, JWT_KEY_BITS)
        .context("can't generate an RSA key")?;
    Ok(key
        .to_pkcs8_pem(LineEnding::LF)
        .context("can't encode the RSA key")?
        .to_string())
}

/// Sets a file's or directory's permission bits (a no-op off Unix).
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
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
    // Keys, the SQLite file and the mail outbox live here: nobody else may list or read it.
    set_mode(dir, 0o700)
        .with_context(|| format!("can't make the data directory {} private", dir.display()))?;
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
    fn a_jwt_key_is_created_private_and_rotation_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt_key.pem");
        assert!(
            JwtKeyFiles::load(&path, false).is_err(),
            "not created unless asked"
        );
        let first = JwtKeyFiles::load(&path, true).unwrap();
        assert!(first.current_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(first.previous.is_none());
        assert_eq!(
            JwtKeyFiles::load(&path, true).unwrap().current_pem,
            first.current_pem
        );
        JwtKeyFiles::rotate(&path).unwrap();
        let second = JwtKeyFiles::load(&path, false).unwrap();
        assert_ne!(second.current_pem, first.current_pem);
        let (previous, retired) = second.previous.clone().expect("the old key is kept");
        assert_eq!(previous, first.current_pem);
        assert!(OffsetDateTime::now_utc() - retired < time::Duration::minutes(1));
        #[cfg(unix)]
        for name in ["jwt_key.pem", "jwt_key.pem.previous"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        assert!(!format!("{second:?}").contains("PRIVATE"));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(SecretKey::from_text("short").is_err());
        assert!(SecretKey::from_text(&"k".repeat(32)).is_ok());
    }
}
