import pytest

from webhooks.signature import SignatureError, sign, verify_signature, verify_token

# Atlassian's documented test vector for X-Hub-Signature.
DOC_SECRET = "It's a Secret to Everybody"
DOC_BODY = b"Hello World!"
DOC_HEADER = "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9"


def test_sign_matches_atlassian_test_vector():
    assert sign(DOC_BODY, secret=DOC_SECRET) == DOC_HEADER


@pytest.mark.parametrize(
    "header", [DOC_HEADER, DOC_HEADER.upper().replace("SHA256", "sha256"), f" {DOC_HEADER} "]
)
def test_valid_signature_is_accepted(header):
    verify_signature(DOC_BODY, header, secret=DOC_SECRET)


def test_method_is_parsed_from_header():
    body = b'{"webhookEvent": "jira:issue_created"}'
    verify_signature(body, sign(body, secret="s", method="sha512"), secret="s")


@pytest.mark.parametrize(
    ("body", "header", "secret", "message"),
    [
        (DOC_BODY, None, DOC_SECRET, "missing X-Hub-Signature"),
        (DOC_BODY, "", DOC_SECRET, "missing X-Hub-Signature"),
        (
            DOC_BODY,
            "a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9",
            DOC_SECRET,
            "malformed",
        ),
        (DOC_BODY, "sha256=", DOC_SECRET, "malformed"),
        (DOC_BODY, "md5=abc", DOC_SECRET, "unsupported"),
        (DOC_BODY + b" ", DOC_HEADER, DOC_SECRET, "does not match"),
        (DOC_BODY, DOC_HEADER, "another secret", "does not match"),
        (DOC_BODY, "sha256=zz\u00e9", DOC_SECRET, "does not match"),
        (DOC_BODY, DOC_HEADER, "", "no webhook secret"),
    ],
)
def test_bad_signature_is_refused_with_reason(body, header, secret, message):
    with pytest.raises(SignatureError, match=message):
        verify_signature(body, header, secret=secret)


def test_refusal_never_echoes_the_secret():
    with pytest.raises(SignatureError) as info:
        verify_signature(DOC_BODY, "sha256=00", secret=DOC_SECRET)
    assert DOC_SECRET not in str(info.value)


def test_token_both_ways():
    verify_token("t0ken", token="t0ken")
    for given, message in [(None, "missing"), ("", "missing"), ("other", "does not match")]:
        with pytest.raises(SignatureError, match=message):
            verify_token(given, token="t0ken")
    with pytest.raises(SignatureError, match="no webhook token"):
        verify_token("t0ken", token="")
