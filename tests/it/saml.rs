//! Issue 26, its SAML part: an SSO person signs in with a response signed by the IdP's key
//! (signed here by Debian's `xmlsec1`, the signer pysaml2 uses; the browser scenario runs a
//! real pysaml2 IdP), and what an attacker tries fails with a clear 4xx, signs nobody in and
//! adds nobody: unsigned, another key, SHA-1, signature wrapping, replay on a second instance,
//! wrong audience, expired, another browser's request, another account's person, a RelayState
//! to another host, unsolicited (IdP-initiated) while off, a DOCTYPE.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use apitokens::domain::Role;

use crate::helpers::{free_port, Acme, Client, Page, ProcessGroup, TestApp, ACME_ADMIN, PASSWORD};

pub(crate) const IDP: &str = "https://idp.example.test/saml";
const IDP_SSO: &str = "https://idp.example.test/saml/sso";

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/saml")
        .join(name)
}

/// Whether Debian's `xmlsec1` is here; in CI its absence fails the test.
pub(crate) fn have_xmlsec1() -> bool {
    let ok = Command::new("xmlsec1").arg("--version").output().is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the SAML tests: apt-get install xmlsec1"
        );
        eprintln!("SKIPPED SAML test: apt-get install xmlsec1 to run it");
    }
    ok
}

/// The base64 body of a PEM certificate.
pub(crate) fn cert_body(name: &str) -> String {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// IdP metadata with `sso` as its HTTP-Redirect sign-on URL and the `idp` certificate.
pub(crate) fn idp_metadata(entity: &str, sso: &str, cert: Option<&str>) -> String {
    let key = cert
        .map(|c| {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{c}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {key}
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

/// What goes into a response; `Default` is a good one but for the fields every test sets.
#[derive(Clone)]
pub(crate) struct Assertion {
    pub email: String,
    pub in_response_to: Option<String>,
    pub acs: String,
    pub audience: String,
    pub issuer: String,
    pub now: OffsetDateTime,
    pub lifetime: Duration,
    pub session_until: Option<OffsetDateTime>,
    pub id: String,
    /// Which key signs: "idp", "other", or None (unsigned).
    pub key: Option<&'static str>,
    pub sha1: bool,
}

fn t(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0).unwrap().format(&Rfc3339).unwrap()
}

impl Assertion {
    pub(crate) fn for_account(app: &TestApp, account: i64, email: &str) -> Assertion {
        let base = app.state.settings.base_url.clone();
        Assertion {
            email: email.into(),
            in_response_to: None,
            acs: format!("{base}/sso/saml/{account}/acs"),
            audience: format!("{base}/sso/saml/{account}/metadata"),
            issuer: IDP.into(),
            now: app.clock().now(),
            lifetime: Duration::minutes(5),
            session_until: None,
            id: format!(
                "_a{}",
                &apitokens::domain::Secret::generate().expose()[..20]
            ),
            key: Some("idp"),
            sha1: false,
        }
    }

    /// The assertion element, with a signature template when it is to be signed.
    fn assertion_xml(&self) -> String {
        let irt = self
            .in_response_to
            .as_ref()
            .map(|i| format!(r#" InResponseTo="{i}""#))
            .unwrap_or_default();
        let (sig, digest) = if self.sha1 {
            (
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                "http://www.w3.org/2000/09/xmldsig#sha1",
            )
        } else {
            (
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "http://www.w3.org/2001/04/xmlenc#sha256",
            )
        };
        let signature = if self.key.is_some() {
            format!(
                r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{sig}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"##,
                id = self.id
            )
        } else {
            String::new()
        };
        let session = self
            .session_until
            .map(|s| format!(r#" SessionNotOnOrAfter="{}""#, t(s)))
            .unwrap_or_default();
        let exp = t(self.now + self.lifetime);
        format!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{issuer}</saml:Issuer>{signature}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{email}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData{irt} NotOnOrAfter="{exp}" Recipient="{acs}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{nb}" NotOnOrAfter="{exp}">{aud}</saml:Conditions><saml:AuthnStatement AuthnInstant="{now}" SessionIndex="s1"{session}><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement></saml:Assertion>"#,
            id = self.id,
            now = t(self.now),
            nb = t(self.now - Duration::seconds(30)),
            issuer = self.issuer,
            email = self.email,
            acs = self.acs,
            // No audience at all when it is empty (samael alone would accept that).
            aud = if self.audience.is_empty() {
                String::new()
            } else {
                format!(
                    "<saml:AudienceRestriction><saml:Audience>{}</saml:Audience></saml:AudienceRestriction>",
                    self.audience
                )
            },
        )
    }

    /// The whole response around `assertions`, as XML (unsigned parts as given).
    fn wrap(&self, assertions: &str) -> String {
        let irt = self
            .in_response_to
            .as_ref()
            .map(|i| format!(r#" InResponseTo="{i}""#))
            .unwrap_or_default();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{id}" Version="2.0" IssueInstant="{now}" Destination="{acs}"{irt}><saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>{assertions}</samlp:Response>"#,
            id = self.id,
            now = t(self.now),
            acs = self.acs,
            issuer = self.issuer,
        )
    }

    /// The signed response XML (signed by `xmlsec1 --sign` with the chosen key).
    pub(crate) fn xml(&self) -> String {
        let unsigned = self.wrap(&self.assertion_xml());
        match self.key {
            Some(key) => sign(&unsigned, key),
            None => unsigned,
        }
    }

    /// The signed response as the IdP posts it (base64).
    pub(crate) fn encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.xml())
    }
}

/// Signs the assertion template in `xml` with `xmlsec1` and the fixture key `key`.
fn sign(xml: &str, key: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.xml");
    let output = dir.path().join("out.xml");
    std::fs::write(&input, xml).unwrap();
    let keys = format!(
        "{},{}",
        fixture(&format!("{key}.key.pem")).display(),
        fixture(&format!("{key}.cert.pem")).display()
    );
    let run = Command::new("xmlsec1")
        .args(["--sign", "--privkey-pem", &keys])
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        ])
        .arg("--output")
        .arg(&output)
        .arg(&input)
        .output()
        .expect("xmlsec1 runs");
    assert!(
        run.status.success(),
        "xmlsec1 --sign: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(output).unwrap()
}

/// Turns SAML on for Acme through the API; the answer.
pub(crate) async fn configure_saml(
    app: &TestApp,
    metadata: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let admin = app.api_jwt(ACME_ADMIN).await;
    let account = admin.get("/iam/users/me").await.json["client"]
        .as_i64()
        .unwrap();
    let mut body = json!({"protocol": "saml", "idp_metadata": metadata});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = admin
        .put(&format!("/iam/clients/{account}/sso"), body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json
}

/// The AuthnRequest ID in an HTTP-Redirect URL (deflated, base64).
pub(crate) fn request_id(url: &str) -> String {
    use std::io::Read;
    let url = url::Url::parse(url).unwrap();
    let encoded = url
        .query_pairs()
        .find(|(k, _)| k == "SAMLRequest")
        .expect("a SAMLRequest")
        .1
        .to_string();
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&deflated[..])
        .read_to_string(&mut xml)
        .unwrap();
    let at = xml.find(" ID=\"").expect("an ID") + 5;
    xml[at..at + xml[at..].find('"').unwrap()].to_owned()
}

/// `/sso/start?email=…` in `client`: the AuthnRequest's ID.
pub(crate) async fn start(client: &Client, email: &str) -> String {
    let started = client
        .get(&format!("/sso/start?email={}", email.replace('@', "%40")))
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert!(
        started.location().starts_with(IDP_SSO),
        "{}",
        started.location()
    );
    request_id(started.location())
}

async fn post_acs(client: &Client, account: i64, response: &str, relay: &str) -> Page {
    client
        .post(
            &format!("/sso/saml/{account}/acs"),
            &[("SAMLResponse", response), ("RelayState", relay)],
        )
        .await
}

async fn counts(app: &TestApp) -> (i64, i64) {
    app.db(|c| {
        use apitokens::db::schema::{sessions, users};
        use diesel::prelude::*;
        (
            sessions::table.count().get_result(c).unwrap(),
            users::table.count().get_result(c).unwrap(),
        )
    })
    .await
}

async fn sso_person(app: &TestApp, email: &str) {
    let admin = app.signed_in(ACME_ADMIN).await;
    let added = admin
        .post_from(
            "/users",
            "/users",
            &[
                ("name", email.split('@').next().unwrap()),
                ("email", email),
                ("role", &Role::Engineers.id().to_string()),
                ("sign_in", "sso"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
}

fn refused(page: &Page, status: StatusCode, words: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    let error = page.text_of("sso-error").unwrap_or_default();
    assert!(error.contains(words), "{words:?} not in {error:?}");
}

#[tokio::test]
async fn an_sso_person_signs_in_with_saml_and_what_attackers_try_fails() {
    if !have_xmlsec1() {
        return;
    }
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let metadata = idp_metadata(IDP, IDP_SSO, Some(&cert_body("idp.cert.pem")));
    let shown = configure_saml(&app, &metadata, json!({})).await;
    assert_eq!(shown["protocol"], "saml");
    assert_eq!(shown["idp_entity_id"], IDP);
    assert_eq!(shown["idp_sso_url"], IDP_SSO);
    let acs = shown["acs_url"].as_str().unwrap().to_owned();
    assert_eq!(acs, format!("http://127.0.0.1/sso/saml/{account}/acs"));
    assert_eq!(
        shown["sp_entity_id"],
        format!("http://127.0.0.1/sso/saml/{account}/metadata")
    );
    assert_eq!(shown["metadata_url"], shown["sp_entity_id"]);
    let sp = app
        .client()
        .get(&format!("/sso/saml/{account}/metadata"))
        .await;
    assert_eq!(sp.status, StatusCode::OK);
    assert!(
        sp.body.contains(&acs) && sp.body.contains("SPSSODescriptor"),
        "{}",
        sp.body
    );
    sso_person(&app, "sam@acme.test").await;

    // Sam signs in: e-mail → IdP (HTTP-Redirect) → response posted to the ACS → a session.
    let sam = app.client();
    let id = start(&sam, "sam@acme.test").await;
    let mut good = Assertion::for_account(&app, account, "sam@acme.test");
    good.in_response_to = Some(id.clone());
    let captured_cookie = sam.cookie_header();
    let encoded = good.encoded();
    let done = post_acs(&sam, account, &encoded, "").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/");
    let tokens = sam.get("/profile/api-tokens").await;
    assert_eq!(tokens.status, StatusCode::OK);
    assert!(tokens.has("#sso-warning"), "the seed's warning");
    let made = sam
        .create_token(&[
            ("name", "from saml"),
            ("role", &Role::Engineers.id().to_string()),
        ])
        .await;
    assert!(made.body.contains("from saml"), "{}", made.body);
    assert_eq!(app.events_of(account, "sso.sign_in").await.len(), 1);
    let before = counts(&app).await;

    // Replayed on a second instance, even with the cookie captured before it was used.
    let sibling = app.spawn_sibling().await;
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/sso/saml/{account}/acs", sibling.base))
        .header("cookie", &captured_cookie)
        .form(&[("SAMLResponse", encoded.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(replay.text().await.unwrap().contains("used already"));
    assert_eq!(counts(&app).await, before, "nothing signed in");

    // Each attack: a fresh browser that started its own sign-in, and a response made for it.
    struct Case {
        what: &'static str,
        status: StatusCode,
        words: &'static str,
    }
    type Make = Box<dyn Fn(&mut Assertion) -> Option<String>>;
    let attacks: Vec<(Case, Make)> = vec![
        (
            Case {
                what: "unsigned",
                status: StatusCode::BAD_REQUEST,
                words: "isn't signed",
            },
            Box::new(|a| {
                a.key = None;
                None
            }),
        ),
        (
            Case {
                what: "another key",
                status: StatusCode::BAD_REQUEST,
                words: "isn't signed",
            },
            Box::new(|a| {
                a.key = Some("other");
                None
            }),
        ),
        (
            Case {
                what: "SHA-1",
                status: StatusCode::BAD_REQUEST,
                words: "SHA-1",
            },
            Box::new(|a| {
                a.sha1 = true;
                None
            }),
        ),
        (
            Case {
                what: "wrong audience",
                status: StatusCode::BAD_REQUEST,
                words: "audience",
            },
            Box::new(|a| {
                a.audience = "https://another.example/sp".into();
                None
            }),
        ),
        (
            Case {
                what: "no audience",
                status: StatusCode::BAD_REQUEST,
                words: "audience",
            },
            Box::new(|a| {
                a.audience = String::new();
                None
            }),
        ),
        (
            Case {
                what: "another recipient",
                status: StatusCode::BAD_REQUEST,
                words: "another address",
            },
            Box::new(|a| {
                a.acs = "https://another.example/acs".into();
                None
            }),
        ),
        (
            Case {
                what: "another issuer",
                status: StatusCode::BAD_REQUEST,
                words: "another identity provider",
            },
            Box::new(|a| {
                a.issuer = "https://evil.example/idp".into();
                None
            }),
        ),
        (
            // Signature wrapping: the signed assertion for Sam moved aside, an unsigned one for
            // the Administrator put first, where a naive reader looks.
            Case {
                what: "wrapping, first",
                status: StatusCode::BAD_REQUEST,
                words: "exactly one assertion",
            },
            Box::new(|a| {
                let signed = a.xml();
                let mut mallory = a.clone();
                mallory.key = None;
                mallory.email = ACME_ADMIN.into();
                mallory.id = format!("{}m", a.id);
                let evil = mallory.assertion_xml();
                let at = signed.find("<saml:Assertion").unwrap();
                Some(format!("{}{evil}{}", &signed[..at], &signed[at..]))
            }),
        ),
        (
            // The signed one hidden in an Extensions element, the unsigned one in its place.
            Case {
                what: "wrapping, extensions",
                status: StatusCode::BAD_REQUEST,
                words: "exactly one assertion",
            },
            Box::new(|a| {
                let signed = a.xml();
                let start = signed.find("<saml:Assertion").unwrap();
                let end = signed.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
                let mut mallory = a.clone();
                mallory.key = None;
                mallory.email = ACME_ADMIN.into();
                let evil = mallory.assertion_xml();
                let issuer_end = signed.find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
                Some(format!(
                    "{}<samlp:Extensions>{}</samlp:Extensions>{}{evil}{}",
                    &signed[..issuer_end],
                    &signed[start..end],
                    &signed[issuer_end..start],
                    &signed[end..]
                ))
            }),
        ),
        (
            Case {
                what: "a DOCTYPE",
                status: StatusCode::BAD_REQUEST,
                words: "DOCTYPE",
            },
            Box::new(|a| {
                let signed = a.xml();
                let at = signed.find("<samlp:Response").unwrap();
                Some(format!(
                    "{}<!DOCTYPE r [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>{}",
                    &signed[..at],
                    &signed[at..]
                ))
            }),
        ),
        (
            Case {
                what: "another account's person",
                status: StatusCode::FORBIDDEN,
                words: "olga@other.test",
            },
            Box::new(|a| {
                a.email = "olga@other.test".into();
                None
            }),
        ),
    ];
    app.add_user("Other", "olga@other.test", Role::Administrators)
        .await;
    let before = counts(&app).await;
    for (case, make) in attacks {
        let browser = app.client();
        let id = start(&browser, "sam@acme.test").await;
        let mut a = Assertion::for_account(&app, account, "sam@acme.test");
        a.in_response_to = Some(id);
        let xml = make(&mut a).unwrap_or_else(|| a.xml());
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
        let page = post_acs(&browser, account, &encoded, "").await;
        assert_eq!(page.status, case.status, "{}: {}", case.what, page.body);
        let error = page.text_of("sso-error").unwrap_or_default();
        assert!(error.contains(case.words), "{}: {error}", case.what);
        assert_eq!(
            counts(&app).await,
            before,
            "{}: nothing signed in or added",
            case.what
        );
        assert_eq!(
            browser.get("/profile").await.status,
            StatusCode::SEE_OTHER,
            "{}",
            case.what
        );
    }

    // A response for another browser's request, posted by a browser with its own sign-in.
    let victim = app.client();
    let theirs = start(&victim, "sam@acme.test").await;
    let attacker = app.client();
    start(&attacker, "sam@acme.test").await;
    let mut a = Assertion::for_account(&app, account, "sam@acme.test");
    a.in_response_to = Some(theirs);
    let page = post_acs(&attacker, account, &a.encoded(), "").await;
    refused(
        &page,
        StatusCode::BAD_REQUEST,
        "wasn't started in this browser",
    );

    // Unsolicited (IdP-initiated) while the account hasn't turned it on: the ACS's own page
    // posts it on once, then it is refused.
    let stranger = app.client();
    let a = Assertion::for_account(&app, account, "sam@acme.test");
    let first = post_acs(&stranger, account, &a.encoded(), "").await;
    assert_eq!(first.status, StatusCode::OK, "the page that posts it on");
    assert_eq!(first.input_value("continued").as_deref(), Some("1"));
    let again = stranger
        .post(
            &format!("/sso/saml/{account}/acs"),
            &[("SAMLResponse", &a.encoded()), ("continued", "1")],
        )
        .await;
    refused(&again, StatusCode::BAD_REQUEST, "started in this browser");

    // RelayState to another host: refused before anything.
    let browser = app.client();
    let id = start(&browser, "sam@acme.test").await;
    let mut a = Assertion::for_account(&app, account, "sam@acme.test");
    a.in_response_to = Some(id);
    let page = post_acs(&browser, account, &a.encoded(), "https://evil.example/").await;
    refused(&page, StatusCode::BAD_REQUEST, "isn't a page of this site");

    // Expired: the clock moves past NotOnOrAfter and the two minutes of skew.
    let browser = app.client();
    let id = start(&browser, "sam@acme.test").await;
    let mut a = Assertion::for_account(&app, account, "sam@acme.test");
    a.in_response_to = Some(id);
    a.lifetime = Duration::minutes(1);
    let encoded = a.encoded();
    app.clock().advance(Duration::minutes(4));
    let page = post_acs(&browser, account, &encoded, "").await;
    refused(&page, StatusCode::BAD_REQUEST, "expired");
    assert_eq!(counts(&app).await, before, "nothing signed in or added");
    let failed = app.events_of(account, "sso.failed").await;
    assert!(
        failed.len() >= 12,
        "each failure of a started sign-in: {failed:?}"
    );
    assert!(
        failed
            .iter()
            .all(|e| !e.summary.contains("PHNhbWxw") && !e.summary.contains("Signature")),
        "never the response"
    );
}

#[tokio::test]
async fn idp_initiated_sign_in_works_once_when_turned_on_and_the_session_ends_with_the_idps() {
    if !have_xmlsec1() {
        return;
    }
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let metadata = idp_metadata(IDP, IDP_SSO, Some(&cert_body("idp.cert.pem")));
    configure_saml(
        &app,
        &metadata,
        json!({"idp_initiated": true, "jit_role": "Engineers"}),
    )
    .await;
    // An unsolicited response for someone new: JIT adds them, the session lasts only as long
    // as the IdP's (SessionNotOnOrAfter), and the same response works once.
    let mut a = Assertion::for_account(&app, account, "nina@acme.test");
    a.session_until = Some(app.clock().now() + Duration::minutes(30));
    let encoded = a.encoded();
    let nina = app.client();
    let page = nina
        .post(
            &format!("/sso/saml/{account}/acs"),
            &[
                ("SAMLResponse", encoded.as_str()),
                ("RelayState", "/profile/api-tokens"),
                ("continued", "1"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/profile/api-tokens");
    assert_eq!(nina.get("/profile").await.status, StatusCode::OK);
    let again = app
        .client()
        .post(
            &format!("/sso/saml/{account}/acs"),
            &[("SAMLResponse", encoded.as_str()), ("continued", "1")],
        )
        .await;
    refused(&again, StatusCode::BAD_REQUEST, "used already");
    // Even with IdP-initiated on, an answer to another browser's request isn't unsolicited.
    let victim = app.client();
    let theirs = start(&victim, "nina@acme.test").await;
    let mut stolen = Assertion::for_account(&app, account, "nina@acme.test");
    stolen.in_response_to = Some(theirs);
    let before = counts(&app).await;
    let page = app
        .client()
        .post(
            &format!("/sso/saml/{account}/acs"),
            &[
                ("SAMLResponse", stolen.encoded().as_str()),
                ("continued", "1"),
            ],
        )
        .await;
    refused(
        &page,
        StatusCode::BAD_REQUEST,
        "wasn't started in this browser",
    );
    assert_eq!(counts(&app).await, before);
    app.clock().advance(Duration::minutes(31));
    assert_eq!(
        nina.get("/profile").await.status,
        StatusCode::SEE_OTHER,
        "the session ended with the IdP's"
    );
}

#[tokio::test]
async fn saml_settings_refuse_metadata_that_cant_work_and_required_refuses_passwords() {
    let Acme { app, admin } = Acme::start().await;
    let api = app.api_jwt(ACME_ADMIN).await;
    let path = format!("/iam/clients/{}/sso", admin.account_id);
    let cert = cert_body("idp.cert.pem");
    for (metadata, words) in [
        (String::new(), "metadata XML"),
        ("<not xml".to_owned(), "metadata"),
        (idp_metadata(IDP, IDP_SSO, None), "no signing certificate"),
        (
            idp_metadata(IDP, "http://idp.example.test/sso", Some(&cert)),
            "https://",
        ),
        (
            idp_metadata(IDP, IDP_SSO, Some("bm90IGEgY2VydA==")),
            "X.509",
        ),
        (
            "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>".to_owned(),
            "DOCTYPE",
        ),
        ("x".repeat(61_000), "60 KB"),
    ] {
        let r = api
            .put(&path, json!({"protocol": "saml", "idp_metadata": metadata}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{words}: {}", r.json);
        assert!(r.json.to_string().contains(words), "{words}: {}", r.json);
    }
    let r = api.put(&path, json!({"protocol": "saml"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json.to_string().contains("idp_metadata"));
    assert_eq!(api.get(&path).await.json["enabled"], false, "nothing saved");

    configure_saml(
        &app,
        &idp_metadata(IDP, IDP_SSO, Some(&cert)),
        json!({"required": true}),
    )
    .await;
    // The page shows what the IdP needs and what was read from the metadata.
    let web = app.signed_in(ACME_ADMIN).await;
    let page = web.get("/single-sign-on").await;
    assert_eq!(page.text_of("sso-idp-entity-id").as_deref(), Some(IDP));
    assert!(page.text_of("sso-acs-url").unwrap().ends_with("/acs"));
    // Required: a member's password sign-in is refused, the Administrator's break-glass works.
    let eng = app.acme_member("eng", Role::Engineers).await;
    let refused = app.client().sign_in(&eng.email, PASSWORD).await;
    assert_ne!(refused.status, StatusCode::SEE_OTHER, "{}", refused.body);
    assert!(refused.body.contains("single sign-on"), "{}", refused.body);
    let broken = app
        .events_of(admin.account_id, "sso.break_glass")
        .await
        .len();
    let glass = app.client().sign_in(ACME_ADMIN, PASSWORD).await;
    assert_eq!(glass.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.events_of(admin.account_id, "sso.break_glass")
            .await
            .len(),
        broken + 1,
        "each break-glass sign-in recorded"
    );
    // Off again, audited.
    assert_eq!(api.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.events_of(admin.account_id, "sso.configured")
            .await
            .len(),
        2
    );
}

/// The pysaml2 IdP (tests/saml/idp.py), killed with its process group when dropped.
pub(crate) struct PyIdp {
    _process: ProcessGroup,
    pub base: String,
    _dir: tempfile::TempDir,
}

/// Acme on an app whose base URL has its port (the IdP posts to it), a pysaml2 IdP that knows
/// its SP metadata, and SAML set up with the IdP's metadata. `None` (skipped, the reason
/// printed) on a developer's machine without `SAML_IDP_PYTHON`; in CI its absence fails.
pub(crate) async fn acme_with_pysaml2(extra: serde_json::Value) -> Option<(Acme, u16, PyIdp)> {
    use std::os::unix::process::CommandExt;
    let python = match std::env::var("SAML_IDP_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI must run the SAML IdP tests: set SAML_IDP_PYTHON (tests/saml/run-setup)")
        }
        Err(_) => {
            eprintln!("SKIPPED SAML IdP test: SAML_IDP_PYTHON=$(tests/saml/run-setup) to run it");
            return None;
        }
    };
    let (port, idp_port) = (free_port(), free_port());
    let idp_base = format!("http://127.0.0.1:{idp_port}");
    let allowed = idp_base.clone();
    let app = TestApp::spawn_with(move |s| {
        s.bind = format!("127.0.0.1:{port}");
        s.base_url = format!("http://127.0.0.1:{port}");
        s.insecure_issuers = vec![allowed];
    })
    .await;
    let acme = Acme::on(app).await;
    let sp = acme
        .app
        .client()
        .get(&format!("/sso/saml/{}/metadata", acme.admin.account_id))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let sp_file = dir.path().join("sp.xml");
    std::fs::write(&sp_file, &sp.body).unwrap();
    let child = Command::new(python)
        .process_group(0)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/saml/idp.py"))
        .args(["--port", &idp_port.to_string()])
        .arg("--sp-metadata")
        .arg(&sp_file)
        .arg("--key")
        .arg(fixture("idp.key.pem"))
        .arg("--cert")
        .arg(fixture("idp.cert.pem"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the pysaml2 IdP starts");
    let idp = PyIdp {
        _process: ProcessGroup(child),
        base: idp_base,
        _dir: dir,
    };
    let mut metadata = None;
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{}/metadata", idp.base)).await {
            if r.status().is_success() {
                metadata = Some(r.text().await.unwrap());
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let metadata = metadata.expect("the pysaml2 IdP answers its metadata");
    configure_saml(&acme.app, &metadata, extra).await;
    Some((acme, port, idp))
}

/// The value of the hidden input `name` in an HTML form.
fn hidden(html: &str, name: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("input[name={name}]")).unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .to_owned()
}

#[tokio::test]
async fn a_real_pysaml2_idp_signs_people_in_whatever_it_signs_and_a_newcomer_joins() {
    let Some((Acme { app, admin }, _, idp)) =
        acme_with_pysaml2(json!({"jit_role": "Engineers"})).await
    else {
        return;
    };
    sso_person(&app, "sam@acme.test").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The assertion signed (Entra's default), the response (Google's "Signed response"), both
    // (Okta's default); then someone new, who joins.
    let sign_ins = [
        ("sam@acme.test", "assertion"),
        ("sam@acme.test", "response"),
        ("sam@acme.test", "both"),
        ("nina@acme.test", "assertion"),
    ];
    for (email, sign) in sign_ins {
        let browser = app.client();
        let started = browser
            .get(&format!(
                "/sso/start?account={}&next=%2Fprofile%2Fapi-tokens",
                admin.account_id
            ))
            .await;
        assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
        let to_idp = started.location().to_owned();
        assert!(to_idp.starts_with(&format!("{}/sso?SAMLRequest=", idp.base)));
        let login = http.get(&to_idp).send().await.unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        let key = hidden(&login.text().await.unwrap(), "key");
        let answer = http
            .post(format!("{}/login", idp.base))
            .form(&[("key", key.as_str()), ("email", email), ("sign", sign)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let response = hidden(&answer, "SAMLResponse");
        let xml = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(&response)
                .unwrap(),
        )
        .unwrap();
        let signatures = xml.matches("SignatureValue>").count() / 2;
        assert_eq!(signatures, if sign == "both" { 2 } else { 1 }, "{sign}");
        let relay = hidden(&answer, "RelayState");
        assert_eq!(relay, "/profile/api-tokens");
        let done = browser
            .post(
                &format!("/sso/saml/{}/acs", admin.account_id),
                &[("SAMLResponse", &response), ("RelayState", &relay)],
            )
            .await;
        assert_eq!(
            done.status,
            StatusCode::SEE_OTHER,
            "{email}, {sign} signed: {}",
            done.body
        );
        assert_eq!(done.location(), "/profile/api-tokens");
        let page = browser.get("/profile/api-tokens").await;
        assert!(page.has("#sso-warning"), "{email}");
    }
    assert_eq!(
        app.events_of(admin.account_id, "sso.sign_in").await.len(),
        sign_ins.len()
    );
    assert_eq!(
        app.events_of(admin.account_id, "user.added").await.len(),
        2,
        "Sam by the Administrator, Nina at her first sign-in"
    );
}

#[tokio::test]
async fn an_sso_person_signs_in_through_a_real_saml_idp_in_chromium_and_makes_a_token() {
    use crate::browser::{click_and_load, start_browser};
    use fantoccini::Locator;
    let Some((Acme { app, .. }, port, idp)) = acme_with_pysaml2(json!({})).await else {
        return;
    };
    sso_person(&app, "sam@acme.test").await;
    let Some(browser) = start_browser().await else {
        return;
    };
    let wd = &browser.client;
    let base = format!("http://127.0.0.1:{port}");
    wd.goto(&format!("{base}/login")).await.unwrap();
    click_and_load(wd, "#sso-sign-in").await;
    wd.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys("sam@acme.test")
        .await
        .unwrap();
    click_and_load(wd, "#sso-continue").await;
    // The IdP's own page: who signs in.
    assert!(wd
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(&idp.base));
    wd.find(Locator::Id("idp-email"))
        .await
        .unwrap()
        .send_keys("sam@acme.test")
        .await
        .unwrap();
    wd.find(Locator::Id("idp-sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The IdP's form posts to our ACS, whose page posts on (with our cookie): signed in.
    wd.wait()
        .at_most(std::time::Duration::from_secs(20))
        .for_element(Locator::Id("sso-warning"))
        .await
        .expect("signed in, on the tokens page with the SSO warning");
    assert_eq!(
        wd.current_url().await.unwrap().path(),
        "/profile/api-tokens"
    );
    wd.goto(&format!("{base}/profile/api-tokens/new"))
        .await
        .unwrap();
    wd.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("made through saml")
        .await
        .unwrap();
    click_and_load(wd, "#create-submit").await;
    let dialog = wd
        .find(Locator::Id("token-dialog"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dialog.contains("made through saml"), "{dialog}");
    // The Administrators' page with SAML on (what the IdP needs, what was read from its
    // metadata) passes axe and fits a phone, like every page.
    if let Some(axe) = crate::browser::axe_source() {
        wd.goto(&format!("{base}/profile/api-tokens"))
            .await
            .unwrap();
        crate::browser::sign_out(wd).await;
        crate::browser::sign_in(wd, &base, ACME_ADMIN).await;
        wd.goto(&format!("{base}/single-sign-on")).await.unwrap();
        let entity = wd
            .find(Locator::Id("sso-idp-entity-id"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(entity, format!("{}/metadata", idp.base));
        let mut problems = vec![];
        crate::browser::check_page(wd, &axe, "sso-settings-saml", &mut problems).await;
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

#[tokio::test]
async fn an_acs_flood_is_gated_a_parallel_burst_signs_in_once_and_a_removed_person_is_refused() {
    if !have_xmlsec1() {
        return;
    }
    let Acme { app, admin } = Acme::start().await;
    let account = admin.account_id;
    let metadata = idp_metadata(IDP, IDP_SSO, Some(&cert_body("idp.cert.pem")));
    configure_saml(&app, &metadata, json!({"idp_initiated": true})).await;
    sso_person(&app, "sam@acme.test").await;
    let acs = format!("/sso/saml/{account}/acs");

    // A parallel burst: one response posted 12 times at once across two instances signs in
    // exactly once; the others are told it was used already.
    let sibling = app.spawn_sibling().await;
    let encoded = Assertion::for_account(&app, account, "sam@acme.test").encoded();
    let before = counts(&app).await;
    let posts = (0..12).map(|i| {
        let client = if i % 2 == 0 {
            app.client()
        } else {
            sibling.client()
        };
        let (acs, encoded) = (acs.clone(), encoded.clone());
        async move {
            client
                .post(
                    &acs,
                    &[("SAMLResponse", encoded.as_str()), ("continued", "1")],
                )
                .await
        }
    });
    let pages = futures_util::future::join_all(posts).await;
    let signed_in = pages
        .iter()
        .filter(|p| p.status == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(
        signed_in,
        1,
        "{:?}",
        pages.iter().map(|p| p.status).collect::<Vec<_>>()
    );
    for page in pages.iter().filter(|p| p.status != StatusCode::SEE_OTHER) {
        refused(page, StatusCode::BAD_REQUEST, "used already");
    }
    assert_eq!(counts(&app).await.0, before.0 + 1, "one session");

    // A removed person, still vouched for by the IdP: refused, no session.
    let sam = app
        .db(|c| {
            apitokens::repo::User::find_by_email(c, "sam@acme.test")
                .unwrap()
                .unwrap()
                .id
        })
        .await;
    let removed = app
        .api_jwt(ACME_ADMIN)
        .await
        .delete(&format!("/iam/clients/{account}/client-users/{sam}"))
        .await;
    assert!(removed.status.is_success(), "{}", removed.json);
    let before = counts(&app).await;
    let gone = Assertion::for_account(&app, account, "sam@acme.test").encoded();
    let page = app
        .client()
        .post(&acs, &[("SAMLResponse", gone.as_str()), ("continued", "1")])
        .await;
    refused(&page, StatusCode::FORBIDDEN, "sam@acme.test");
    assert_eq!(
        counts(&app).await,
        before,
        "a removed person gets no session"
    );

    // An anonymous flood of junk from one address: the flood gate answers 429 before any XML
    // work once its burst is spent, and nothing is written to the account's log.
    let logged = app.events_of(account, "sso.failed").await.len();
    let flood = app.client();
    let mut statuses = vec![];
    for _ in 0..30 {
        let page = flood
            .post(&acs, &[("SAMLResponse", "junk"), ("continued", "1")])
            .await;
        statuses.push(page.status);
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::BAD_REQUEST || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(
        statuses[20..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(
        app.events_of(account, "sso.failed").await.len(),
        logged,
        "anonymous posts write nothing to the account's log"
    );
}
