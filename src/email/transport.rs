//! Where mail goes: SMTP when `APITOKENS_SMTP_URL` is set, otherwise `.eml` files in
//! `<data dir>/outbox/` (private) so a first run works offline; signed with DKIM when a key is
//! configured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use lettre::message::dkim::DkimConfig;
use lettre::transport::smtp::SmtpTransport;
use lettre::{FileTransport, Message, Transport as _};

pub struct Mailer {
    transport: Route,
    /// Signs every message when a DKIM key is configured.
    dkim: Option<DkimConfig>,
}

enum Route {
    Smtp(Box<SmtpTransport>),
    Files(PathBuf),
}

impl Mailer {
    /// `smtp://host:port` (plain; add `?tls=required` for STARTTLS), `smtps://user:pass@host`;
    /// `None` writes files under `<data_dir>/outbox/`.
    pub fn new(smtp_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Mailer> {
        let transport = match smtp_url {
            Some(url) => {
                let transport = SmtpTransport::from_url(url)
                    .context("APITOKENS_SMTP_URL is not a valid smtp:// or smtps:// URL")?
                    .timeout(Some(Duration::from_secs(15)))
                    .build();
                Route::Smtp(Box::new(transport))
            }
            None => {
                let dir = data_dir.join("outbox");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("can't create the mail outbox {}", dir.display()))?;
                crate::config::set_mode(&dir, 0o700).with_context(|| {
                    format!("can't make the mail outbox {} private", dir.display())
                })?;
                Route::Files(dir)
            }
        };
        Ok(Mailer {
            transport,
            dkim: None,
        })
    }

    /// Signs every message from now on.
    /// Where mail goes when no SMTP server is configured: the outbox folder (`None`: SMTP).
    pub fn outbox(&self) -> Option<&Path> {
        match &self.transport {
            Route::Files(dir) => Some(dir),
            _ => None,
        }
    }

    pub fn with_dkim(mut self, dkim: Option<DkimConfig>) -> Mailer {
        self.dkim = dkim;
        self
    }

    /// Sends one message; the error is a line for the outbox row and the log.
    pub fn send(&self, message: &Message) -> Result<(), String> {
        let signed;
        let message = match &self.dkim {
            Some(config) => {
                let mut copy = message.clone();
                copy.sign(config);
                signed = copy;
                &signed
            }
            None => message,
        };
        match &self.transport {
            Route::Smtp(smtp) => smtp
                .send(message)
                .map(drop)
                .map_err(|e| format!("SMTP: {e}")),
            Route::Files(dir) => {
                let id = FileTransport::new(dir)
                    .send(message)
                    .map_err(|e| format!("file outbox: {e}"))?;
                // A set-password link travels in these: private like the rest.
                crate::config::set_mode(&dir.join(format!("{id}.eml")), 0o600)
                    .map_err(|e| format!("file outbox: {e}"))
            }
        }
    }
}
