#!/usr/bin/python3
"""Writes the botocore-* vectors: SES requests signed by a real botocore client (Debian's
python3-botocore, which signs through the AWS CRT when python3-awscrt is installed), at the
AWS test suite's time and with its credentials. The canonical requests come from botocore's
pure-Python signer, which must reach the same signature, so two client implementations
agree on every vector. Run from this folder: /usr/bin/python3 gen_botocore.py"""
import datetime
import logging
import os
from unittest import mock

import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.awsrequest import AWSResponse

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime.datetime(2015, 8, 30, 12, 36, 0)


class FrozenDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return NOW


class CanonicalCapture(logging.Handler):
    """botocore logs 'CanonicalRequest:\\n%s' at debug level while it signs."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.canonical = []

    def emit(self, record):
        if record.msg.startswith("CanonicalRequest:"):
            self.canonical.append(record.args[0])


def write(case, name, text):
    os.makedirs(case, exist_ok=True)
    with open(os.path.join(case, name), "wb") as f:
        f.write(text.encode("utf-8"))


def as_http(method, url, headers, body):
    """request.txt shape: request line, Name:value headers, blank line, body."""
    target = "/" + url.split("://", 1)[1].partition("/")[2]
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}:{v}" for k, v in headers]
    return "\n".join(lines) + "\n\n" + body


def signing(fn):
    capture = CanonicalCapture()
    log = logging.getLogger("botocore.auth")
    log.setLevel(logging.DEBUG)
    log.addHandler(capture)
    try:
        with mock.patch.object(botocore.auth.datetime, "datetime", FrozenDatetime):
            result = fn()
    finally:
        log.removeHandler(capture)
    return result, capture.canonical[-1] if capture.canonical else None


def python_signer(cls, method, url, headers, body):
    """Signs with botocore's pure-Python SigV4 classes; returns (request, canonical)."""
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    signer = cls(Credentials(KEY_ID, SECRET), "ses", "eu-west-1")
    if issubclass(cls, botocore.auth.SigV4QueryAuth):
        signer = cls(Credentials(KEY_ID, SECRET), "ses", "eu-west-1", expires=3600)
    return signing(lambda: signer.add_auth(req) or req)


def client():
    return botocore.session.get_session().create_client(
        "ses", region_name="eu-west-1", aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET)


def header_signed():
    """A GetSendQuota POST exactly as botocore sends it (Authorization header)."""
    c = client()
    sent = {}

    def before_send(request, **kwargs):
        sent["request"] = request
        return AWSResponse(request.url, 500, {}, None)

    c.meta.events.register("before-send.ses.GetSendQuota", before_send)

    def call():
        try:
            c.get_send_quota()
        except AttributeError:  # the fake response has no body; the request was captured
            pass

    signing(call)
    req = sent["request"]
    body = req.body.decode() if isinstance(req.body, bytes) else (req.body or "")
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in req.headers.items()]
    # Random per call and not signed: pinned so that reruns write the same file.
    headers = [(k, "00000000-0000-4000-8000-000000000000" if k == "amz-sdk-invocation-id" else v)
               for k, v in headers]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", "email.eu-west-1.amazonaws.com"))
    signature = dict(headers)["Authorization"].rsplit("=", 1)[1]
    ct = dict(headers)["Content-Type"]
    py, creq = python_signer(botocore.auth.SigV4Auth, "POST", req.url, {"Content-Type": ct}, body)
    assert py.headers["Authorization"].rsplit("=", 1)[1] == signature, "signers disagree"
    case = "botocore-ses-post"
    write(case, "header-signed-request.txt", as_http(req.method, req.url, headers, body))
    write(case, "header-canonical-request.txt", creq)
    write(case, "header-signature.txt", signature)


def date_header_signed():
    """Signed over a Date header instead of X-Amz-Date (botocore's pure-Python signer
    uses Date when the request has one)."""
    url = "https://email.eu-west-1.amazonaws.com/"
    body = "Action=GetSendQuota&Version=2010-12-01"
    ct = "application/x-www-form-urlencoded; charset=utf-8"
    py, creq = python_signer(botocore.auth.SigV4Auth, "POST", url,
                             {"Content-Type": ct, "Date": "placeholder"}, body)
    headers = [("Host", "email.eu-west-1.amazonaws.com")] + list(py.headers.items())
    case = "botocore-ses-post-date-header"
    write(case, "header-signed-request.txt", as_http("POST", url, headers, body))
    write(case, "header-canonical-request.txt", creq)
    write(case, "header-signature.txt", py.headers["Authorization"].rsplit("=", 1)[1])


def presigned_case(case, method, url, signature, creq):
    host = [("Host", "email.eu-west-1.amazonaws.com")]
    write(case, "query-signed-request.txt", as_http(method, url, host, ""))
    write(case, "query-canonical-request.txt", creq)
    write(case, "query-signature.txt", signature)


def presigned():
    """Presigned GetSendQuota URLs, valid for an hour. botocore signs them for the
    operation's method (POST for SES) unless told otherwise, over the empty body's hash."""
    c = client()
    for method in ("POST", "GET"):
        url, _ = signing(lambda: c.generate_presigned_url(
            "get_send_quota", ExpiresIn=3600, HttpMethod=method))
        signature = url.rsplit("X-Amz-Signature=", 1)[1]
        base = url.split("?", 1)[0] + "?Action=GetSendQuota&Version=2010-12-01"
        py, creq = python_signer(botocore.auth.SigV4QueryAuth, method, base, {}, "")
        assert py.url.rsplit("X-Amz-Signature=", 1)[1] == signature, "signers disagree"
        presigned_case(f"botocore-ses-presigned-{method.lower()}", method, url, signature, creq)
    # UNSIGNED-PAYLOAD, as S3-style presigners (botocore's S3SigV4QueryAuth) sign it.
    base = "https://email.eu-west-1.amazonaws.com/?Action=GetSendQuota&Version=2010-12-01"
    py, creq = python_signer(botocore.auth.S3SigV4QueryAuth, "GET", base, {}, "")
    assert creq.endswith("\nUNSIGNED-PAYLOAD")
    presigned_case("botocore-ses-presigned-unsigned", "GET", py.url,
                   py.url.rsplit("X-Amz-Signature=", 1)[1], creq)


if __name__ == "__main__":
    header_signed()
    date_header_signed()
    presigned()
