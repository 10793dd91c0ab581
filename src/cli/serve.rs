//! `apitokens serve` (the default): migrate, then serve the portal and the API until SIGTERM or
//! Ctrl-C; on a brand-new database, a demo account whose sign-in is printed once.

use anyhow::Context;

use crate::config::Settings;
use crate::domain::Clock;
use crate::startup::Application;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let base_url = settings.base_url.clone();
    let app = Application::build(settings, Clock::default()).await?;
    println!(
        "apitokens is listening on port {}: open {base_url}/",
        app.port()
    );
    if let Some(demo) = &app.demo {
        println!();
        println!("A demo account was created. Sign in with:");
        println!("  e-mail:   {}", demo.email);
        println!("  password: {}", demo.password);
        println!("This is shown only this once. Add users with `apitokens user add --help`.");
        println!();
    }
    app.run_until(crate::startup::shutdown_signal())
        .await
        .context("the server stopped with an error")
}
