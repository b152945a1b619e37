"""Bad input on the Query API: every error has its HTTP status and Code, an ErrorResponse in
the SES namespace with a RequestId equal to the x-amzn-RequestId header, and leaves the
instance as it was."""
import datetime
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from conftest import NS, assert_error, assert_ok, q, sign_request

REGIONS = ("us-east-1", "eu-west-1")
MAX_BODY = 65536


@pytest.fixture(scope="module")
def inst(module_instance):
    i = module_instance(regions=REGIONS, extra="[api]\nmax_body_bytes = %d" % MAX_BODY)
    c = i.client()
    c.verify_email_identity(EmailAddress="keep@example.com")
    c.verify_domain_identity(Domain="keep.example.com")
    i.client("eu-west-1").verify_email_identity(EmailAddress="keep-eu@example.com")
    return i


@pytest.fixture
def unchanged(inst):
    """Fails the test if the identities of either region changed."""

    def snapshot():
        return {r: (inst.identities(region=r),
                    inst.sesame("identity", "list", "--region", r).stdout) for r in REGIONS}

    before = snapshot()
    assert "keep@example.com" in before["us-east-1"][0]
    yield
    assert snapshot() == before


def form(**params):
    body = {"Action": "VerifyEmailIdentity", "Version": "2010-12-01",
            "EmailAddress": "new@example.com"}
    body.update(params)
    return urllib.parse.urlencode({k: v for k, v in body.items() if v is not None})


# ---- a valid request, for reference ----


def test_valid_request_shape(inst):
    reply = assert_ok(inst.call("ListIdentities"), "ListIdentities")
    assert reply.xml.tag == "{%s}ListIdentitiesResponse" % NS
    assert reply.headers["Content-Type"].startswith("text/xml")
    assert "keep@example.com" in reply.findall("member")
    # A GET with the parameters in the query string, signed, works the same.
    reply = assert_ok(inst.raw("GET", query="Action=ListIdentities&Version=2010-12-01"),
                      "ListIdentities")
    assert "keep@example.com" in reply.findall("member")
    # Two requests, two request ids.
    assert inst.call("GetSendQuota").request_id != reply.request_id


# ---- authentication ----


def test_wrong_secret(inst, unchanged):
    reply = inst.raw(body=form(), secret=inst.secret[:-4] + "AAAA")
    assert_error(reply, 403, "SignatureDoesNotMatch")
    # A signature that was valid, but for other bytes than were sent.
    signed = sign_request("POST", inst.http_url + "/", form().encode(),
                          {"Host": "127.0.0.1:%d" % inst.port_base,
                           "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                          inst.key, inst.secret, "us-east-1")
    reply = inst.raw(body=form(EmailAddress="other@example.com"), sign=False, headers=signed)
    assert_error(reply, 403, "SignatureDoesNotMatch")
    # boto3 with a wrong secret.
    with pytest.raises(ClientError) as e:
        inst.client(secret="x" * 40).verify_email_identity(EmailAddress="new@example.com")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tampered_signed_header(inst, unchanged):
    def tamper(h):
        sig = h["Authorization"].rsplit("Signature=", 1)[1]
        flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
        h["Authorization"] = h["Authorization"].replace(sig, flipped)

    assert_error(inst.raw(body=form(), tamper=tamper), 403, "SignatureDoesNotMatch")

    def later(h):
        h["X-Amz-Date"] = h["X-Amz-Date"][:-3] + ("00Z" if h["X-Amz-Date"][-3:] != "00Z" else "01Z")

    assert_error(inst.raw(body=form(), tamper=later), 403, "SignatureDoesNotMatch")


def test_unknown_key(inst, unchanged):
    reply = inst.raw(body=form(), key="AKIAUNKNOWNKEY000000")
    assert_error(reply, 403, "InvalidClientTokenId")


def test_no_credentials(inst, unchanged):
    reply = inst.raw(body=form(), sign=False)
    assert_error(reply, 403, "MissingAuthenticationToken")
    reply = inst.raw("GET", query=form(), sign=False)
    assert_error(reply, 403, "MissingAuthenticationToken")


@pytest.mark.parametrize("minutes", [-20, 20])
def test_request_too_far_from_now(inst, unchanged, minutes):
    reply = inst.raw(body=form(), skew=datetime.timedelta(minutes=minutes))
    assert_error(reply, 400, "RequestExpired")


def test_small_skew_is_accepted(inst):
    reply = inst.raw(body={"Action": "GetSendQuota"}, skew=datetime.timedelta(minutes=-10))
    assert_ok(reply, "GetSendQuota")


def test_region_not_served(inst, unchanged):
    reply = inst.raw(body=form(), region="ap-south-1")
    assert_error(reply, 403, "SignatureDoesNotMatch")
    assert "ap-south-1" in reply.find("Error/Message")
    rc, err = inst.aws("verify-email-identity", "--email-address", "new@example.com",
                       region="ap-south-1", expect_ok=False)
    assert "SignatureDoesNotMatch" in err, err


# ---- the action ----


def test_missing_action(inst, unchanged):
    reply = inst.raw(body="Version=2010-12-01&EmailAddress=new%40example.com")
    assert_error(reply, 400, "MissingAction")


def test_unknown_action(inst, unchanged):
    reply = inst.raw(body=form(Action="FlyToTheMoon"))
    assert_error(reply, 400, "InvalidAction")
    assert "FlyToTheMoon" in reply.find("Error/Message")


def test_unknown_version(inst, unchanged):
    assert_error(inst.raw(body=form(Version="2099-01-01")), 400, "InvalidAction")


# ---- parameters ----


@pytest.mark.parametrize("action,member", [
    ("VerifyEmailIdentity", "emailAddress"),
    ("VerifyEmailAddress", "emailAddress"),
    ("VerifyDomainIdentity", "domain"),
    ("DeleteIdentity", "identity"),
    ("DeleteVerifiedEmailAddress", "emailAddress"),
    ("GetIdentityVerificationAttributes", "identities"),
])
def test_missing_required_parameter(inst, unchanged, action, member):
    reply = inst.raw(body={"Action": action, "Version": "2010-12-01"})
    assert_error(reply, 400, "ValidationError",
                 "Value null at '%s' failed to satisfy constraint: Member must not be null"
                 % member)


@pytest.mark.parametrize("address", [
    "not-an-address", "@example.com", "user@", "user@localhost", "user@exa mple.com",
    "user..dots@example.com", ".user@example.com", "us(er@example.com", "user@-example.com",
    "user@example..com", "x" * 65 + "@example.com", "üser@example.com", "",
])
def test_invalid_email_address(inst, unchanged, address):
    reply = inst.raw(body=form(EmailAddress=address))
    assert_error(reply, 400, "InvalidParameterValue")
    reply = inst.raw(body=form(Action="VerifyEmailAddress", EmailAddress=address))
    assert_error(reply, 400, "InvalidParameterValue")


@pytest.mark.parametrize("domain", [
    "nodots", "-bad.example.com", "bad-.example.com", "example..com", ".example.com",
    "exa mple.com", "a" * 64 + ".com", ("a" * 60 + ".") * 5 + "com", "",
    "user@example.com",
])
def test_invalid_domain(inst, unchanged, domain):
    reply = inst.raw(body=form(Action="VerifyDomainIdentity", Domain=domain, EmailAddress=None))
    assert_error(reply, 400, "InvalidParameterValue")


def test_invalid_input_through_clients(inst, unchanged):
    with pytest.raises(ClientError) as e:
        inst.client().verify_email_identity(EmailAddress="not-an-address")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    rc, err = inst.aws("verify-domain-identity", "--domain", "bad_..com", expect_ok=False)
    assert "InvalidParameterValue" in err, err


def test_duplicated_parameter(inst, unchanged):
    body = form() + "&EmailAddress=second%40example.com"
    assert_error(inst.raw(body=body), 400, "InvalidQueryParameter")
    # The same name in the query string and the body is also a duplicate.
    reply = inst.raw(body=form(), query="EmailAddress=second%40example.com")
    assert_error(reply, 400, "InvalidQueryParameter")


@pytest.mark.parametrize("body", [
    "Action=VerifyEmailIdentity&Version=2010-12-01&EmailAddress=new%ZZ%40example.com",
    "Action=VerifyEmailIdentity&Version=2010-12-01&EmailAddress=new%40example.com%4",
    "Action=VerifyEmailIdentity&Version=2010-12-01&EmailAddress=new%40example.com%",
    "Action=VerifyEmailIdentity&Version=2010-12-01&Email%G0ddress=new%40example.com",
])
def test_bad_percent_encoding(inst, unchanged, body):
    assert_error(inst.raw(body=body), 404, "MalformedQueryString")


def test_bad_percent_encoding_in_query_string(inst, unchanged):
    reply = inst.raw("GET", query="Action=ListIdentities&Version=2010-12-01&X=%zz", sign=False)
    assert_error(reply, 404, "MalformedQueryString")


@pytest.mark.parametrize("value", ["new%FF%40example.com", "%C3%28%40example.com",
                                   "new%ED%A0%80%40example.com", "new%C0%AE%40example.com"])
def test_value_not_utf8(inst, unchanged, value):
    body = "Action=VerifyEmailIdentity&Version=2010-12-01&EmailAddress=" + value
    assert_error(inst.raw(body=body), 400, "InvalidParameterValue")


def test_oversize_body(inst, unchanged):
    body = form() + "&Pad=" + "x" * (MAX_BODY + 1000)
    reply = inst.raw(body=body)
    assert reply.status == 413, reply
    # Just under the limit is read and answered (an unknown parameter is ignored).
    body = form(Action="ListIdentities", EmailAddress=None)
    body += "&Pad=" + "x" * (MAX_BODY - len(body) - 100)
    assert_ok(inst.raw(body=body), "ListIdentities")


@pytest.mark.parametrize("params", [
    {"MaxItems": "0"}, {"MaxItems": "-1"}, {"MaxItems": "1001"}, {"MaxItems": "ten"},
    {"NextToken": "!!!not base64!!!"}, {"IdentityType": "Phone"},
])
def test_list_identities_bad_parameters(inst, unchanged, params):
    reply = inst.call("ListIdentities", **params)
    assert_error(reply, 400, "InvalidParameterValue")


def test_unsupported_method_and_path(inst, unchanged):
    reply = inst.raw("PUT", body=form())
    assert reply.status in (405, 501), reply  # refused by the HTTP layer
    reply = inst.raw("GET", path="/nothing-here", query="Action=ListIdentities")
    assert reply.status == 404, reply


def test_every_error_reply_is_well_formed(inst):
    # The same request twice: each reply has its own RequestId.
    a = assert_error(inst.raw(body=form(), sign=False), 403, "MissingAuthenticationToken")
    b = assert_error(inst.raw(body=form(), sign=False), 403, "MissingAuthenticationToken")
    assert a.request_id != b.request_id
    assert [c.tag for c in a.xml] == [q("Error"), q("RequestId")]
    assert [c.tag for c in a.xml.find(q("Error"))] == [q("Type"), q("Code"), q("Message")]
