"""A small but real SAML 2.0 identity provider for the browser scenario, built on pysaml2
(which signs with Debian's xmlsec1): it reads our SP metadata, takes an AuthnRequest over
HTTP-Redirect, shows a sign-in page that asks for an e-mail, and answers with a signed
assertion (SHA-256; the response, or both, when the sign-in form's `sign` says so) posted to
our ACS by its own auto-submitting form (HTTP-POST).

    python idp.py --port P --sp-metadata FILE --key KEY.pem --cert CERT.pem

GET /metadata answers the IdP's metadata (what an Administrator pastes into apitokens).
"""

import argparse
import html
import secrets
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256


def make_server(base, sp_metadata, key, cert):
    config = IdPConfig()
    config.load(
        {
            "entityid": f"{base}/metadata",
            "service": {
                "idp": {
                    "name": "pysaml2 test IdP",
                    "endpoints": {
                        "single_sign_on_service": [(f"{base}/sso", BINDING_HTTP_REDIRECT)],
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "want_authn_requests_signed": False,
                    "policy": {"default": {"lifetime": {"minutes": 5}}},
                },
            },
            "key_file": key,
            "cert_file": cert,
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "metadata": {"local": [sp_metadata]},
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
        }
    )
    return config, Server(config=config)


class Handler(BaseHTTPRequestHandler):
    pending = {}

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/html; charset=utf-8"):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/metadata":
            return self.reply(200, self.server.metadata, "application/samlmetadata+xml")
        if url.path == "/sso":
            try:
                request = self.server.idp.parse_authn_request(
                    query["SAMLRequest"], BINDING_HTTP_REDIRECT
                ).message
            except Exception as e:  # a bad request gets a page that says so
                return self.reply(400, f"<p>Bad AuthnRequest: {html.escape(str(e))}</p>")
            key = secrets.token_urlsafe(16)
            Handler.pending[key] = (request, query.get("RelayState", ""))
            return self.reply(
                200,
                f"""<!doctype html><title>Test IdP</title><h1>Test IdP: sign in</h1>
<form method="post" action="/login"><input type="hidden" name="key" value="{key}">
<label for="idp-email">E-mail</label><input id="idp-email" name="email" type="email">
<button id="idp-sign-in" type="submit">Sign in</button></form>""",
            )
        return self.reply(404, "not found")

    def do_POST(self):
        if urlparse(self.path).path != "/login":
            return self.reply(404, "not found")
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        request, relay_state = Handler.pending.pop(form.get("key", ""), (None, ""))
        if request is None:
            return self.reply(400, "<p>No such sign-in</p>")
        email = form.get("email", "")
        # What is signed, as IdPs differ: the assertion (Entra's default), the response
        # (Google's "Signed response"), or both (Okta's default).
        sign = form.get("sign", "assertion")
        response = self.server.idp.create_authn_response(
            identity={"mail": [email]},
            in_response_to=request.id,
            destination=request.assertion_consumer_service_url,
            sp_entity_id=request.issuer.text,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_assertion=sign in ("assertion", "both"),
            sign_response=sign in ("response", "both"),
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        http_args = self.server.idp.apply_binding(
            BINDING_HTTP_POST,
            str(response),
            request.assertion_consumer_service_url,
            relay_state,
            response=True,
        )
        return self.reply(200, http_args["data"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sp-metadata", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--cert", required=True)
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    config, idp = make_server(base, args.sp_metadata, args.key, args.cert)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.idp = idp
    server.metadata = create_metadata_string(None, config=config, valid=None).decode()
    server.serve_forever()


if __name__ == "__main__":
    main()
