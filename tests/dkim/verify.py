"""Verifies the DKIM signature of one message with dkimpy, against a given DNS record.

    verify.py MESSAGE_FILE 'v=DKIM1; k=rsa; p=...'

Exit 0 when the signature verifies, 1 when it doesn't (the reason on stderr).
"""
import sys

import dkim


def main() -> int:
    message = open(sys.argv[1], "rb").read()
    record = sys.argv[2].encode()

    def dns(name, timeout=5):
        return record

    verifier = dkim.DKIM(message)
    ok = verifier.verify(dnsfunc=dns)
    if not ok:
        print("DKIM signature does not verify", file=sys.stderr)
        return 1
    print("ok: d=%s s=%s" % (verifier.domain.decode(), verifier.selector.decode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
