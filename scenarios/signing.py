"""Sign requests as Twilio does: the load generator's webhooks and the fake provider's
status callbacks carry an ``X-Twilio-Signature``.

Deliberately its own code, not the responder's verifier (``responder.signing``): a
harness that signed with the code under test would hide any bug the two shared. Both are
checked against Twilio's published test vector and the official library
(``tests/test_responder_signing.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def sign_twilio(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """HMAC-SHA1, under the auth token, of the full URL followed by every POST parameter
    as name then value, in order of name (distinct values of one name in order too);
    base64."""
    data = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")
