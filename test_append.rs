
#[tokio::test]
async fn the_person_is_told_when_two_recovery_codes_are_left_and_when_an_administrator_resets() {
    let Acme { app, .. } = Acme::start().await;
    let web = app.signed_in(ACME_ADMIN).await;
    let Some((_, recovery)) = enrol(&app, &web).await else {
        return;
    };
    for code in &recovery[..7] {
        let client = password_step(&app).await;
        let used = client
            .post_from("/login/two-factor", "/login/two-factor", &[("code", code)])
            .await;
        assert_eq!(used.status, StatusCode::SEE_OTHER);
    }
    assert!(std::fs::read_dir(app.dir.path().join("outbox")).map_or(true, |d| d.count() == 0), "3 left: no mail yet");
    let client = password_step(&app).await;
    client
        .post_from("/login/two-factor", "/login/two-factor", &[("code", &recovery[7])])
        .await;
    let mails = crate::passwords::outbox(app.dir.path(), 1).await;
    assert!(mails[0].contains("2 of your ten are left"), "{}", mails[0]);
    assert!(!mails[0].contains(&recovery[8]), "no code in the mail");

    // Another Administrator resets it: the person is told who did.
    let second = app.acme_member("second", Role::Administrators).await;
    let other = app.signed_in("second@acme.test").await;
    let admin = app
        .db(|c| apitokens::repo::User::find_by_email(c, ACME_ADMIN))
        .await
        .unwrap()
        .unwrap();
    let reset = other
        .post_from("/users", &format!("/users/{}/reset-two-factor", admin.id), &[])
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
    let mails = crate::passwords::outbox(app.dir.path(), 2).await;
    assert!(mails[1].contains("an Administrator of your account, reset"), "{}", mails[1]);
    assert!(mails[1].contains(&second.name), "{}", mails[1]);
}
