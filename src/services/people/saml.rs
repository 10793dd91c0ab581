//! Single sign-on with SAML 2.0 (issue 26): an account's Administrators give us their identity
//! provider's metadata; its people are sent there with an AuthnRequest (HTTP-Redirect) and come
//! back with a Response posted to our ACS (HTTP-POST).
//!
//! What checks what: `samael` with libxmlsec1 verifies every XML signature against the IdP's
//! certificates from the metadata (RSA/ECDSA with SHA-256 or stronger only) and hands on *only
//! the bytes the verified signature covers* (`ReduceMode::PreDigest`), so nothing unsigned is
//! ever read; it checks the issuer, the recipient (our ACS), the destination of a signed
//! Response, the status and `InResponseTo`. Before it, a scan refuses a DOCTYPE (entity tricks)
//! and any response carrying other than exactly one plain `Assertion` (signature wrapping
//! hides a second one). After it, with our `Clock` (samael reads the wall clock, which tests
//! can't move): the audience must be ours, `NotBefore`/`NotOnOrAfter` hold with at most two
//! minutes of skew, and the caller records the assertion's ID as used, once across instances.

use base64::Engine;
use quick_xml::events::Event;
use samael::crypto::{AllowedSignatureAlgorithm, ReduceMode};
use samael::metadata::{
    EntityDescriptor, IndexedEndpoint, SpSsoDescriptor, HTTP_POST_BINDING, HTTP_REDIRECT_BINDING,
};
use samael::schema::Assertion;
use samael::service_provider::{Error as SamlError, ServiceProvider};
use samael::traits::ToXml;
use time::OffsetDateTime;

use super::sso::{SsoFailure, Vouched};

/// Largest IdP metadata an Administrator may give (Entra's is ~10 KB, with its certificates).
pub const METADATA_MAX: usize = 60_000;
/// Largest posted `SAMLResponse` (base64) we read.
pub const RESPONSE_MAX: usize = 200_000;
/// Clock skew allowed between the IdP and us.
const SKEW_SECS: i64 = 120;

const NAME_ID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
/// Attribute names IdPs use for the e-mail (Okta/Google: as configured; Entra: the claim URI).
const EMAIL_ATTRIBUTES: [&str; 5] = [
    "email",
    "mail",
    "emailaddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
];
const NAME_ATTRIBUTES: [&str; 4] = [
    "name",
    "displayname",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "urn:oid:2.16.840.1.113730.3.1.241",
];

/// What an IdP's metadata told us, checked.
#[derive(Debug, Clone)]
pub struct IdpSummary {
    pub entity_id: String,
    pub sso_url: String,
    pub certificates: usize,
}

/// Our side of an account's SAML: what its IdP needs from us.
#[derive(Debug, Clone)]
pub struct SpUrls {
    pub entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
}

impl SpUrls {
    /// Each account is its own service provider (its own entity id, the audience of its
    /// assertions), so an assertion made for one account can't sign in at another.
    pub fn of(base_url: &str, account_id: i64) -> SpUrls {
        let metadata_url = format!("{base_url}/sso/saml/{account_id}/metadata");
        SpUrls {
            entity_id: metadata_url.clone(),
            acs_url: format!("{base_url}/sso/saml/{account_id}/acs"),
            metadata_url,
        }
    }
}

/// Reads and checks an IdP's metadata: an entity id, a single sign-on URL for HTTP-Redirect
/// (`https`, or an origin the operator allows over http), and at least one signing certificate
/// that parses (without one, nothing could be verified). The message names what's missing.
pub fn read_metadata(xml: &str, insecure: &[String]) -> Result<IdpSummary, String> {
    if xml.trim().is_empty() {
        return Err("Paste the identity provider's metadata XML (an <EntityDescriptor>).".into());
    }
    if xml.len() > METADATA_MAX {
        return Err("That metadata is larger than 60 KB: give the one entity's metadata, not a federation's.".into());
    }
    scan(xml, false).map_err(|e| format!("That isn't usable metadata: {e}."))?;
    let entity: EntityDescriptor = xml.parse().map_err(|e| {
        format!("That isn't SAML metadata (an <EntityDescriptor> with an <IDPSSODescriptor>): {e}.")
    })?;
    let entity_id = entity
        .entity_id
        .clone()
        .filter(|e| !e.trim().is_empty())
        .ok_or("The metadata has no entityID.")?;
    let sp = provider(entity, SpUrls::of("", 0), false);
    let sso_url = sp.sso_binding_location(HTTP_REDIRECT_BINDING).ok_or(
        "The metadata has no SingleSignOnService with the HTTP-Redirect binding, which is how we send people there.",
    )?;
    let url = url::Url::parse(&sso_url)
        .map_err(|_| "The metadata's single sign-on URL isn't a URL.".to_string())?;
    let origin = url.origin().ascii_serialization();
    let allowed = insecure
        .iter()
        .any(|i| url::Url::parse(i).is_ok_and(|u| u.origin().ascii_serialization() == origin));
    if url.scheme() != "https" && !allowed {
        return Err("The metadata's single sign-on URL must be https:// (plain http only for origins the operator lists in APITOKENS_INSECURE_ISSUERS).".into());
    }
    let certificates = match sp.idp_signing_certs() {
        Ok(Some(c)) => c,
        Ok(None) => return Err("The metadata has no signing certificate (a <KeyDescriptor use=\"signing\"> with an X509Certificate): without one no answer could be verified.".into()),
        Err(_) => return Err("A certificate in the metadata isn't base64 DER.".into()),
    };
    for c in &certificates {
        openssl::x509::X509::from_der(c.der_data())
            .map_err(|_| "A certificate in the metadata isn't an X.509 certificate.".to_string())?;
    }
    Ok(IdpSummary {
        entity_id,
        sso_url,
        certificates: certificates.len(),
    })
}

fn provider(idp: EntityDescriptor, urls: SpUrls, idp_initiated: bool) -> ServiceProvider {
    ServiceProvider {
        entity_id: Some(urls.entity_id),
        metadata_url: Some(urls.metadata_url),
        acs_url: Some(urls.acs_url),
        slo_url: None,
        idp_metadata: idp,
        authn_name_id_format: Some(NAME_ID_EMAIL.into()),
        allow_idp_initiated: idp_initiated,
        // Generous here: our own checks below hold the times to our clock and two minutes.
        max_issue_delay: chrono::Duration::minutes(10),
        max_clock_skew: chrono::Duration::seconds(SKEW_SECS),
        allowed_signature_algorithms: Some(vec![
            AllowedSignatureAlgorithm::RsaSha256,
            AllowedSignatureAlgorithm::RsaSha384,
            AllowedSignatureAlgorithm::RsaSha512,
            AllowedSignatureAlgorithm::EcdsaSha256,
            AllowedSignatureAlgorithm::EcdsaSha384,
            AllowedSignatureAlgorithm::EcdsaSha512,
        ]),
        ..ServiceProvider::default()
    }
}

/// Our SP metadata (what an Administrator gives their IdP): the entity id, the ACS for
/// HTTP-POST, e-mail NameIDs, signed assertions wanted, unsigned requests (no SP key), no
/// single logout.
pub fn sp_metadata(urls: SpUrls) -> String {
    let descriptor = SpSsoDescriptor {
        protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".into()),
        name_id_formats: Some(vec![NAME_ID_EMAIL.into()]),
        authn_requests_signed: Some(false),
        want_assertions_signed: Some(true),
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: HTTP_POST_BINDING.into(),
            location: urls.acs_url,
            response_location: None,
            index: 0,
            is_default: Some(true),
        }],
        ..SpSsoDescriptor::default()
    };
    let entity = EntityDescriptor {
        entity_id: Some(urls.entity_id),
        sp_sso_descriptors: Some(vec![descriptor]),
        ..EntityDescriptor::default()
    };
    entity.to_string().unwrap_or_default()
}

/// A new AuthnRequest to the IdP: the URL to send the browser to (HTTP-Redirect, unsigned:
/// no SP key to keep) and the request's ID, which the answer must name. Our own 128-bit random
/// ID (samael's is 32 bits).
pub fn authn_request(
    idp_metadata: &str,
    urls: SpUrls,
    relay_state: &str,
) -> Result<(String, String), SsoFailure> {
    let idp: EntityDescriptor = idp_metadata
        .parse()
        .map_err(|e| SsoFailure::Provider(format!("the stored IdP metadata doesn't parse: {e}")))?;
    let sp = provider(idp, urls, false);
    let sso_url = sp
        .sso_binding_location(HTTP_REDIRECT_BINDING)
        .ok_or_else(|| SsoFailure::Provider("no HTTP-Redirect sign-on URL".into()))?;
    let mut request = sp
        .make_authentication_request(&sso_url)
        .map_err(|e| SsoFailure::Provider(e.to_string()))?;
    request.id = format!(
        "id-{}",
        &crate::domain::secret::sha256_hex(crate::domain::Secret::generate().expose())[..32]
    );
    let url = request
        .redirect(relay_state)
        .map_err(|e| SsoFailure::Provider(e.to_string()))?
        .ok_or_else(|| SsoFailure::Provider("no sign-on URL".into()))?;
    Ok((url.to_string(), request.id))
}

/// A verified assertion: who, its ID (for the replay record), until when it could be
/// accepted, and until when the IdP lets the session last.
#[derive(Debug, Clone)]
pub struct Verified {
    pub vouched: Vouched,
    pub assertion_id: String,
    pub issuer: String,
    pub accept_until: OffsetDateTime,
    pub session_until: Option<OffsetDateTime>,
}

/// Checks a posted `SAMLResponse` (base64) against the account's IdP metadata: see the module
/// comment for what checks what. `request_id`: the AuthnRequest this browser started, if any;
/// without one, only an account that turned on IdP-initiated sign-in accepts it.
pub fn verify(
    idp_metadata: &str,
    urls: SpUrls,
    idp_initiated: bool,
    encoded: &str,
    request_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<Verified, SsoFailure> {
    let invalid = |d: &str| SsoFailure::Invalid(d.to_owned());
    if encoded.len() > RESPONSE_MAX {
        return Err(invalid("the response is larger than 200 KB"));
    }
    let cleaned: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned)
        .map_err(|_| invalid("the SAMLResponse isn't base64"))?;
    let xml = String::from_utf8(bytes).map_err(|_| invalid("the response isn't UTF-8 XML"))?;
    scan(&xml, true).map_err(|e| invalid(&e))?;
    let idp: EntityDescriptor = idp_metadata
        .parse()
        .map_err(|e| SsoFailure::Provider(format!("the stored IdP metadata doesn't parse: {e}")))?;
    if request_id.is_none() && !idp_initiated {
        return Err(SsoFailure::NotStartedHere);
    }
    let audience = urls.entity_id.clone();
    let sp = provider(idp, urls, idp_initiated && request_id.is_none());
    let ids: Vec<&str> = request_id.into_iter().collect();
    let assertion = sp
        .parse_xml_response_with_mode(&xml, Some(&ids), ReduceMode::PreDigest)
        .map_err(|e| invalid(&explain(&e)))?;
    check_times_and_audience(&assertion, &audience, now)?;
    // Unsolicited means unsolicited: an answer to some request (another browser's, taken from
    // it) isn't accepted as IdP-initiated.
    let answers_a_request = assertion
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
        .any(|c| {
            c.subject_confirmation_data
                .as_ref()
                .is_some_and(|d| d.in_response_to.is_some())
        });
    if request_id.is_none() && answers_a_request {
        return Err(invalid(
            "it answers a sign-in that wasn't started in this browser",
        ));
    }
    let accept_until = latest_not_on_or_after(&assertion)
        .map(|t| t + time::Duration::seconds(SKEW_SECS))
        .ok_or_else(|| invalid("the assertion has no NotOnOrAfter"))?;
    let session_until = assertion
        .authn_statements
        .iter()
        .flatten()
        .filter_map(|s| s.session_not_on_or_after)
        .filter_map(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok())
        .min();
    if assertion.id.trim().is_empty() {
        return Err(invalid("the assertion has no ID"));
    }
    Ok(Verified {
        vouched: vouched(&assertion),
        assertion_id: assertion.id.clone(),
        issuer: assertion.issuer.value.clone().unwrap_or_default(),
        accept_until,
        session_until,
    })
}

/// The structure a response may have before any signature is looked at: no DOCTYPE (entity
/// expansion, external entities), and, for a response, exactly one plain `Assertion` (an
/// encrypted one needs a key we don't keep; a second is how signature wrapping hides the one a
/// naive reader would use).
fn scan(xml: &str, response: bool) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut assertions, mut encrypted, mut depth) = (0usize, 0usize, 0usize);
    loop {
        match reader.read_event() {
            Ok(Event::DocType(_)) => {
                return Err("a DOCTYPE isn't allowed in SAML messages".into());
            }
            Ok(Event::Start(e)) => {
                depth += 1;
                if depth > 64 {
                    return Err("the XML is nested too deeply".into());
                }
                count(e.local_name().as_ref(), &mut assertions, &mut encrypted);
            }
            Ok(Event::Empty(e)) => count(e.local_name().as_ref(), &mut assertions, &mut encrypted),
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("the XML doesn't parse ({e})")),
        }
    }
    if response {
        if encrypted > 0 {
            return Err("the assertion is encrypted; turn assertion encryption off for this app at the identity provider (the signature protects it)".into());
        }
        if assertions != 1 {
            return Err(format!(
                "a response must carry exactly one assertion, this one has {assertions}"
            ));
        }
    }
    Ok(())
}

fn count(name: &[u8], assertions: &mut usize, encrypted: &mut usize) {
    match name {
        b"Assertion" => *assertions += 1,
        b"EncryptedAssertion" => *encrypted += 1,
        _ => {}
    }
}

fn at(t: chrono::DateTime<chrono::Utc>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()
}

fn latest_not_on_or_after(a: &Assertion) -> Option<OffsetDateTime> {
    let conditions = a.conditions.as_ref().and_then(|c| c.not_on_or_after);
    let confirmations = a
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
        .filter_map(|c| c.subject_confirmation_data.as_ref()?.not_on_or_after);
    conditions
        .into_iter()
        .chain(confirmations)
        .filter_map(at)
        .max()
}

/// Time and audience, with our clock: the audience restriction must name us (samael accepts an
/// assertion with none); every NotBefore/NotOnOrAfter holds within the skew.
fn check_times_and_audience(
    a: &Assertion,
    audience: &str,
    now: OffsetDateTime,
) -> Result<(), SsoFailure> {
    let invalid = |d: String| Err(SsoFailure::Invalid(d));
    let skew = time::Duration::seconds(SKEW_SECS);
    let Some(conditions) = &a.conditions else {
        return invalid("the assertion has no Conditions (so no audience)".into());
    };
    let ours = conditions
        .audience_restrictions
        .iter()
        .flatten()
        .any(|r| r.audience.iter().any(|x| x == audience));
    if !ours {
        return invalid(format!(
            "the assertion is for another audience: its Audience must be {audience}"
        ));
    }
    let mut windows = vec![(conditions.not_before, conditions.not_on_or_after)];
    for c in a
        .subject
        .iter()
        .flat_map(|s| s.subject_confirmations.iter().flatten())
    {
        if let Some(d) = &c.subject_confirmation_data {
            windows.push((d.not_before, d.not_on_or_after));
        }
    }
    for (before, after) in windows {
        if before.and_then(at).is_some_and(|b| now < b - skew) {
            return invalid("the assertion isn't valid yet (check the clocks)".into());
        }
        if after.and_then(at).is_some_and(|n| now >= n + skew) {
            return invalid("the assertion has expired".into());
        }
    }
    if a.issue_instant.timestamp() + 600 < now.unix_timestamp() {
        return invalid("the assertion was issued more than 10 minutes ago".into());
    }
    Ok(())
}

/// Who the assertion is about: an e-mail NameID, or an e-mail attribute; the NameID otherwise
/// as the user name; a display name if given.
fn vouched(a: &Assertion) -> Vouched {
    let name_id = a.subject.as_ref().and_then(|s| s.name_id.as_ref());
    let attribute = |names: &[&str]| {
        a.attribute_statements
            .iter()
            .flatten()
            .flat_map(|s| s.attributes.iter())
            .find(|at| {
                [at.name.as_deref(), at.friendly_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|n| names.iter().any(|x| x.eq_ignore_ascii_case(n)))
            })
            .and_then(|at| at.values.iter().find_map(|v| v.value.clone()))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let name_id_email = name_id
        .filter(|n| n.format.as_deref() == Some(NAME_ID_EMAIL) || n.value.contains('@'))
        .map(|n| n.value.trim().to_owned());
    Vouched {
        email: name_id_email.or_else(|| attribute(&EMAIL_ATTRIBUTES)),
        subject: name_id.map(|n| n.value.clone()).unwrap_or_default(),
        preferred_username: name_id.map(|n| n.value.trim().to_owned()),
        name: attribute(&NAME_ATTRIBUTES),
    }
}

/// samael's reason, in words for the failure page.
fn explain(e: &SamlError) -> String {
    match e {
        SamlError::FailedToValidateSignature => "it isn't signed by the identity provider's certificate from the metadata (or it's signed with SHA-1, which we refuse)".into(),
        SamlError::AssertionInResponseToInvalid { .. } | SamlError::ResponseInResponseToInvalid { .. } => {
            "it answers a sign-in that wasn't started in this browser".into()
        }
        SamlError::AssertionRecipientMismatch { .. } | SamlError::DestinationValidationError { .. } => {
            "it was sent to another address than this account's ACS URL".into()
        }
        SamlError::AssertionIssuerMismatch { .. } | SamlError::ResponseIssuerMismatch { .. } => {
            "it was issued by another identity provider than the one in the metadata".into()
        }
        SamlError::ResponseBadStatusCode { code } => format!(
            "the identity provider answered {}",
            code.rsplit(':').next().unwrap_or(code)
        ),
        SamlError::AssertionConditionAudienceRestrictionFailed { .. } => {
            "the assertion is for another audience".into()
        }
        SamlError::AssertionExpired { .. }
        | SamlError::AssertionConditionExpired { .. }
        | SamlError::AssertionSubjectConfirmationExpired { .. }
        | SamlError::ResponseExpired { .. } => "the assertion has expired".into(),
        SamlError::AssertionConditionExpiredBefore { .. }
        | SamlError::AssertionSubjectConfirmationExpiredBefore { .. } => {
            "the assertion isn't valid yet (check the clocks)".into()
        }
        SamlError::AssertionBearerSubjectConfirmationMissing
        | SamlError::AssertionSubjectConfirmationMissing => {
            "the assertion has no bearer SubjectConfirmation".into()
        }
        other => format!("it isn't a SAML response we can read ({other})")
            .chars()
            .take(200)
            .collect(),
    }
}
