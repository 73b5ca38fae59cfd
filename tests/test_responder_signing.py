"""Webhook signatures: Twilio's scheme, bit for bit with the official library."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from responder.signing import (
    generic_signature,
    twilio_signature,
    verify_generic,
    verify_twilio,
)

VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
# The official library's test vector (twilio-python tests/unit/test_request_validator.py).
VECTOR_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
    ("From", "+14158675309"), ("To", "+18005551212"),
]
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_official_test_vector() -> None:
    """The official test vector verifies, with and without the default port."""
    assert twilio_signature("12345", VECTOR_URL, VECTOR_PARAMS) == VECTOR_SIGNATURE
    assert verify_twilio("12345", VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)
    assert verify_twilio("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                         VECTOR_PARAMS, VECTOR_SIGNATURE)
    assert not verify_twilio("12345", VECTOR_URL, VECTOR_PARAMS[:-1], VECTOR_SIGNATURE)
    assert not verify_twilio("54321", VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)
    assert not verify_twilio("12345", VECTOR_URL, VECTOR_PARAMS, None)


def test_the_harness_signs_as_twilio_does() -> None:
    """The load generator's and fake provider's own signer (independent of the verifier)
    gives the official vector, agrees with the official library, and verifies."""
    from scenarios.signing import sign_twilio

    assert sign_twilio("12345", VECTOR_URL, VECTOR_PARAMS) == VECTOR_SIGNATURE
    form = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+33612345678",
            "Body": "Ça répond ? 🙂"}
    url = "https://sms.example.org/webhooks/twilio/status?reply=SMin"
    official = RequestValidator("tok").compute_signature(url, form)
    assert sign_twilio("tok", url, form.items()) == official
    assert verify_twilio("tok", url, list(form.items()), official)


def test_providers_md_vector_numbers() -> None:
    """providers.md's variant (+12349013030) signs to what the official library computes.

    Its quoted signature belongs to the +14158675309 parameters above; with its own
    numbers both implementations agree on a different value.
    """
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
              ("From", "+12349013030"), ("To", "+18005551212")]
    official = RequestValidator("12345").compute_signature(VECTOR_URL, dict(params))
    assert twilio_signature("12345", VECTOR_URL, params) == official
    assert not verify_twilio("12345", VECTOR_URL, params, VECTOR_SIGNATURE)


def test_port_variants_like_the_official_library() -> None:
    """Signed with the port stripped or the default port added, both are accepted."""
    params = [("Body", "hi")]
    for signed, received in [
        ("https://h.example/p", "https://h.example:443/p"),
        ("https://h.example:443/p", "https://h.example/p"),
        ("http://h.example/p?x=1", "http://h.example:80/p?x=1"),
        ("http://h.example:8080/p", "http://h.example:8080/p"),
        ("http://h.example/p", "http://h.example:8080/p"),
    ]:
        signature = twilio_signature("tok", signed, params)
        official = RequestValidator("tok").validate(received, dict(params), signature)
        assert verify_twilio("tok", received, params, signature) is official is True


def test_matches_official_library_on_random_forms() -> None:
    """Random forms (unicode, empty values, odd names) sign exactly as the official library."""
    rng = random.Random(7)
    alphabet = "aZ09 +-_=&?é€😀\n"
    for _ in range(200):
        params = {
            "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))):
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            for _ in range(rng.randint(0, 8))
        }
        url = "https://example.com/hook?q=" + str(rng.randint(0, 99))
        expected = RequestValidator("secret").compute_signature(url, params)
        assert twilio_signature("secret", url, list(params.items())) == expected


def test_repeated_names_contribute_each_value_sorted() -> None:
    """A repeated parameter name contributes each of its values, sorted."""
    class Multi(dict[str, str]):
        def getall(self, name: str) -> list[str]:
            return ["b", "a"] if name == "MediaUrl" else [self[name]]

    params = [("MediaUrl", "b"), ("MediaUrl", "a"), ("To", "+1")]
    official = RequestValidator("t").compute_signature(
        "https://x.example/", Multi({"MediaUrl": "b", "To": "+1"})
    )
    assert twilio_signature("t", "https://x.example/", params) == official


def test_sha256_settings_header_algorithm() -> None:
    """Signatures made with HMAC-SHA256 (webhook signing keys) verify with that algorithm."""
    params = [("Body", "hi")]
    official = RequestValidator("key").compute_signature("https://x.example/", dict(params),
                                                         "HMAC_SHA256")
    assert verify_twilio("key", "https://x.example/", params, official, "HMAC_SHA256")
    assert not verify_twilio("key", "https://x.example/", params, official, "HMAC_SHA1")
    assert not verify_twilio("key", "https://x.example/", params, official, "HMAC_MD5")


def test_generic_scheme() -> None:
    """The generic webhook signs the raw body with HMAC-SHA256, hex, prefixed sha256=."""
    body = b'{"id":"1","from":"+33600000000","to":"+33644649021","body":"x"}'
    header = generic_signature("s" * 16, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_generic("s" * 16, body, header)
    assert verify_generic("s" * 16, body, header.upper().replace("SHA256=", "sha256="))
    assert not verify_generic("s" * 16, body + b" ", header)
    assert not verify_generic("s" * 16, body, None)


def test_cached_signed_url_is_starlettes_request_url() -> None:
    """The cached URL the webhook signature is checked against is ``str(request.url)``."""
    from starlette.requests import Request

    from responder.app import signed_url
    from responder.config import load_settings

    settings = load_settings({"RAIDSIM_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                              "RAIDSIM_TWILIO_AUTH_TOKEN": "tok"})
    hosts = [None, b"sms.example.org", b"sms.example.org:8443", b"[::1]:8000", b"bad host:x"]
    servers = [None, ("127.0.0.1", 8000), ("127.0.0.1", 80), ("::1", 443), ["10.0.0.1", 8080]]
    for scheme in ("http", "https"):
        for host in hosts:
            for server in servers:
                for path, query in (("/webhooks/twilio/sms", b""), ("/w?#\\", b"a=1&b=%20")):
                    scope = {"type": "http", "scheme": scheme, "server": server, "path": path,
                             "query_string": query, "method": "POST",
                             "headers": [] if host is None else [(b"host", host)]}
                    for _ in range(2):  # computed, then cached
                        assert signed_url(Request(scope), settings) == str(Request(scope).url)


_FORM_CHARS = "ab=&+%2C%3D%zz%e9%C3%A9 é~-_.\x00"


@given(st.text(alphabet=st.sampled_from(list(_FORM_CHARS)), max_size=60)
       | st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=8)
       .map(urlencode))
def test_parse_form_is_parse_qsl(text: str) -> None:
    """The webhook's form parser gives parse_qsl's pairs, blanks and bad escapes included."""
    from responder.app import MAX_FIELDS, parse_form

    assert parse_form(text) == parse_qsl(text, keep_blank_values=True,
                                         max_num_fields=MAX_FIELDS)


def test_parse_form_field_limit_is_parse_qsl() -> None:
    from responder.app import MAX_FIELDS, parse_form

    for count in (MAX_FIELDS - 1, MAX_FIELDS, MAX_FIELDS + 1):
        text = "&".join(["a=1"] * count)
        try:
            expected: object = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError:
            expected = ValueError
        try:
            got: object = parse_form(text)
        except ValueError:
            got = ValueError
        assert got == expected


def test_raw_headers_answer_like_starlette() -> None:
    """One dict per request gives what Starlette's ``Headers.get`` gives: the first value."""
    from starlette.requests import Request

    from responder.app import _header, raw_headers

    raw = [(b"host", b"a.example"), (b"x-twilio-signature", b"first"),
           (b"x-twilio-signature", b"second"), (b"content-type", b"text/plain; charset=\xe9")]
    for headers in (raw, tuple(raw)):
        request = Request({"type": "http", "headers": headers})
        mapping = raw_headers(request)
        for name in ("host", "x-twilio-signature", "content-type", "i-twilio-idempotency-token"):
            assert _header(mapping, name.encode()) == request.headers.get(name)


def test_url_variants_try_the_url_as_called_first() -> None:
    from responder.signing import url_variants

    assert url_variants("http://h:8000/w") == ("http://h:8000/w", "http://h/w")
    assert url_variants("https://h/w?a=1") == ("https://h/w?a=1", "https://h:443/w?a=1")
    assert url_variants("https://h:443/w") == ("https://h:443/w", "https://h/w")
