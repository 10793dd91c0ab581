//! `apitokens dkim-record`: the DNS TXT record that publishes the DKIM key.

use anyhow::Context;

use super::options::{settings, Options};

pub fn run(options: &Options) -> anyhow::Result<()> {
    let settings = settings(options, false)?;
    let Some((path, selector)) = &settings.dkim else {
        anyhow::bail!("set APITOKENS_DKIM_KEY and APITOKENS_DKIM_SELECTOR first");
    };
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("can't read {}", path.display()))?;
    let key = crate::email::DkimKey::from_pem(&pem)?;
    let domain = crate::email::sender_domain(&settings.mail_from)?;
    println!(
        "{selector}._domainkey.{domain}. IN TXT \"{}\"",
        key.dns_record()?
    );
    Ok(())
}
