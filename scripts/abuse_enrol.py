"""Turns on two-factor authentication for a person through the portal (for scripts/abuse's
OTP-guessing flood): signs in with the password, enrols, confirms with a code computed here
(RFC 6238, standard library only). Prints nothing; exits non-zero if any step fails.

    python3 scripts/abuse_enrol.py BASE EMAIL PASSWORD
"""
import base64, hashlib, hmac, http.cookiejar, re, struct, sys, time, urllib.parse, urllib.request

base, email, password = sys.argv[1:4]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def page(path, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    with opener.open(base + path, data) as r:
        return r.read().decode()


def csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def totp(secret_b32, at):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


login = page("/login")
page("/login", {"csrf_token": csrf(login), "email": email, "password": password})
security = page("/profile/security")
page("/profile/security/totp", {"csrf_token": csrf(security)})
security = page("/profile/security")
secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', security).group(1)
done = page("/profile/security/totp/confirm", {"csrf_token": csrf(security), "code": totp(secret, time.time())})
assert "recovery-codes" in done, "two-factor authentication was not turned on"
