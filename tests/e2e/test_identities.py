"""Identity actions through the AWS CLI, boto3 and hand-built requests, in both regions of
a two-region instance: verify, list (with pages), attributes, delete, the legacy email
actions, case rules, the email verification link, auto-verify and the identity limit."""
import re
import time

import pytest
from botocore.exceptions import ClientError

from conftest import assert_error, assert_ok, parse_kv, q, url_get

REGIONS = ("us-east-1", "eu-west-1")
TOKEN_RE = re.compile(r"^[A-Za-z0-9+/]{43}=$")  # 32 random bytes, base64


@pytest.fixture(scope="module")
def inst(module_instance):
    return module_instance(regions=REGIONS)


def attrs(client, *identities):
    return client.get_identity_verification_attributes(
        Identities=list(identities))["VerificationAttributes"]


def test_verify_email_identity_cli_and_boto3(inst):
    assert inst.aws("verify-email-identity", "--email-address", "cli@example.com") is None
    c = inst.client()
    c.verify_email_identity(EmailAddress="boto@example.com")

    got = inst.aws("get-identity-verification-attributes", "--identities", "cli@example.com",
                   "boto@example.com", "unknown@example.com")
    assert got == {"VerificationAttributes": {
        "cli@example.com": {"VerificationStatus": "Pending"},
        "boto@example.com": {"VerificationStatus": "Pending"},
    }}  # unknown identities are left out; emails carry no token
    assert attrs(c, "cli@example.com", "boto@example.com") == got["VerificationAttributes"]

    listed = inst.aws("list-identities")["Identities"]
    assert {"cli@example.com", "boto@example.com"} <= set(listed)
    assert set(c.list_identities(IdentityType="EmailAddress")["Identities"]) >= {
        "cli@example.com", "boto@example.com"}
    assert not {"cli@example.com", "boto@example.com"} & set(
        c.list_identities(IdentityType="Domain")["Identities"])

    # Verifying again is accepted and keeps one identity.
    c.verify_email_identity(EmailAddress="boto@example.com")
    assert c.list_identities()["Identities"].count("boto@example.com") == 1


def test_verify_domain_identity_token_and_case(inst):
    got = inst.aws("verify-domain-identity", "--domain", "Example.COM")
    token = got["VerificationToken"]
    assert TOKEN_RE.match(token), token
    c = inst.client()
    # The same domain, in any case, is the same identity with the same token.
    assert c.verify_domain_identity(Domain="example.com")["VerificationToken"] == token
    assert c.verify_domain_identity(Domain="EXAMPLE.com")["VerificationToken"] == token
    listed = c.list_identities(IdentityType="Domain")["Identities"]
    assert listed.count("example.com") == 1 and "Example.COM" not in listed
    a = attrs(c, "eXaMpLe.CoM")
    assert a == {"example.com": {"VerificationStatus": "Pending", "VerificationToken": token}}
    # The raw reply: VerifyDomainIdentityResult/VerificationToken in the SES namespace.
    reply = assert_ok(inst.call("VerifyDomainIdentity", Domain="example.com"),
                      "VerifyDomainIdentity")
    assert reply.find("VerifyDomainIdentityResult/VerificationToken") == token
    # Another domain gets another token.
    other = c.verify_domain_identity(Domain="other.example.net")["VerificationToken"]
    assert TOKEN_RE.match(other) and other != token


def test_email_identities_are_case_sensitive(inst):
    c = inst.client()
    c.verify_email_identity(EmailAddress="Case.User@Example.com")
    c.verify_email_identity(EmailAddress="case.user@example.com")
    listed = c.list_identities()["Identities"]
    assert "Case.User@Example.com" in listed and "case.user@example.com" in listed
    assert attrs(c, "CASE.USER@EXAMPLE.COM") == {}
    assert set(attrs(c, "Case.User@Example.com")) == {"Case.User@Example.com"}
    c.delete_identity(Identity="case.user@example.com")
    listed = c.list_identities()["Identities"]
    assert "Case.User@Example.com" in listed and "case.user@example.com" not in listed


def test_regions_are_namespaces(inst):
    us, eu = inst.client("us-east-1"), inst.client("eu-west-1")
    eu.verify_email_identity(EmailAddress="eu-only@example.com")
    eu_token = eu.verify_domain_identity(Domain="eu-only.example.com")["VerificationToken"]
    assert {"eu-only@example.com", "eu-only.example.com"} <= set(eu.list_identities()["Identities"])
    assert not {"eu-only@example.com", "eu-only.example.com"} & set(us.list_identities()["Identities"])
    assert attrs(us, "eu-only@example.com", "eu-only.example.com") == {}
    # The CLI with --region sees the same thing.
    assert "eu-only@example.com" in inst.aws("list-identities", region="eu-west-1")["Identities"]
    # The same domain in the other region is another identity with its own token.
    us_token = us.verify_domain_identity(Domain="eu-only.example.com")["VerificationToken"]
    assert us_token != eu_token
    # Deleting in one region leaves the other alone.
    us.delete_identity(Identity="eu-only.example.com")
    assert "eu-only.example.com" not in us.list_identities()["Identities"]
    assert attrs(eu, "eu-only.example.com")["eu-only.example.com"]["VerificationToken"] == eu_token
    # ... and so does verifying through the link of the other region.
    us.verify_email_identity(EmailAddress="eu-only@example.com")
    assert url_get(inst.verification_link("eu-only@example.com", region="eu-west-1"),
                   inst.cert)[0] == 200
    assert inst.status("eu-only@example.com", region="eu-west-1") == "Success"
    assert inst.status("eu-only@example.com", region="us-east-1") == "Pending"


def test_list_identities_pages(inst):
    acct, key, secret = inst.new_account("pages")  # an empty namespace
    c = inst.client("eu-west-1", key=key, secret=secret)
    emails = ["a@example.com", "b@example.com", "c@example.com"]
    domains = ["d.example.com", "e.example.com"]
    for e in emails:
        c.verify_email_identity(EmailAddress=e)
    for d in domains:
        c.verify_domain_identity(Domain=d)
    everything = sorted(emails + domains)
    assert sorted(c.list_identities()["Identities"]) == everything

    seen, token, pages = [], None, 0
    while True:
        kw = {"MaxItems": 2}
        if token:
            kw["NextToken"] = token
        page = c.list_identities(**kw)
        pages += 1
        assert 1 <= len(page["Identities"]) <= 2
        seen += page["Identities"]
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert sorted(seen) == everything and len(set(seen)) == 5

    # Exactly one page's worth: no NextToken.
    full = c.list_identities(MaxItems=5)
    assert sorted(full["Identities"]) == everything and "NextToken" not in full

    paginator = c.get_paginator("list_identities")
    got = [i for p in paginator.paginate(IdentityType="EmailAddress",
                                         PaginationConfig={"PageSize": 2})
           for i in p["Identities"]]
    assert sorted(got) == emails
    first = c.list_identities(IdentityType="Domain", MaxItems=1)
    second = c.list_identities(IdentityType="Domain", MaxItems=1, NextToken=first["NextToken"])
    assert sorted(first["Identities"] + second["Identities"]) == domains
    assert "NextToken" not in second

    # The CLI pages with --page-size: MaxItems=2 and NextToken on the wire, three calls.
    creds = inst.dir / "credentials-pages"
    creds.write_text("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                     "region = eu-west-1\n" % (key, secret))
    got = inst.aws("list-identities", "--page-size", "2", credentials=creds)
    assert sorted(got["Identities"]) == everything and "NextToken" not in got
    # The other region of this account is empty.
    assert inst.client("us-east-1", key=key, secret=secret).list_identities()["Identities"] == []


def test_email_verification_link(inst):
    c = inst.client()
    c.verify_email_identity(EmailAddress="linked@example.com")
    link = inst.verification_link("linked@example.com")
    m = re.fullmatch(r"https://127\.0\.0\.1:(\d+)/verify-email\?token=([0-9A-Za-z]+)", link)
    assert m and int(m.group(1)) == inst.port_base + 1, link
    show = parse_kv(inst.sesame("identity", "show", "linked@example.com").stdout)
    assert show["status"] == "Pending" and show["type"] == "EmailAddress"
    assert "linked@example.com" not in c.list_verified_email_addresses()["VerifiedEmailAddresses"]

    status, body = url_get(link, inst.cert)  # the generated certificate verifies
    assert status == 200, body
    assert attrs(c, "linked@example.com") == {"linked@example.com": {"VerificationStatus": "Success"}}
    assert "linked@example.com" in c.list_verified_email_addresses()["VerifiedEmailAddresses"]
    assert url_get(link, inst.cert)[0] == 404  # a link works once
    assert inst.verification_link("linked@example.com") is None  # nothing more to click
    # Verifying a verified address changes nothing.
    c.verify_email_identity(EmailAddress="linked@example.com")
    assert inst.status("linked@example.com") == "Success"

    # Links that never existed, or carry no token.
    base = "https://127.0.0.1:%d/verify-email" % (inst.port_base + 1)
    assert url_get(base + "?token=" + "0" * 48, inst.cert)[0] == 404
    assert url_get(base, inst.cert)[0] == 404
    # The link also works over plain HTTP.
    c.verify_email_identity(EmailAddress="plain@example.com")
    token = inst.verification_link("plain@example.com").split("token=")[1]
    assert url_get("%s/verify-email?token=%s" % (inst.http_url, token))[0] == 200
    assert inst.status("plain@example.com") == "Success"


def test_new_link_replaces_the_old_one(inst):
    c = inst.client()
    # A new request for a pending address replaces its link: the old one stops working.
    c.verify_email_identity(EmailAddress="relinked@example.com")
    old = inst.verification_link("relinked@example.com")
    c.verify_email_identity(EmailAddress="relinked@example.com")
    new = inst.verification_link("relinked@example.com")
    assert old != new
    assert url_get(old, inst.cert)[0] == 404
    assert inst.status("relinked@example.com") == "Pending"
    assert url_get(new, inst.cert)[0] == 200
    assert inst.status("relinked@example.com") == "Success"


def test_link_does_not_outlive_its_identity(inst):
    c = inst.client()
    # A link sent before the identity was deleted must not verify it once it is added again.
    c.verify_email_identity(EmailAddress="recreated@example.com")
    stale = inst.verification_link("recreated@example.com")
    c.delete_identity(Identity="recreated@example.com")
    c.verify_email_identity(EmailAddress="recreated@example.com")
    assert url_get(stale, inst.cert)[0] == 404
    assert inst.status("recreated@example.com") == "Pending"


def test_expired_verification_link(instance):
    inst = instance(extra="[verification]\nemail_link_ttl = 1s")
    c = inst.client()
    c.verify_email_identity(EmailAddress="late@example.com")
    link = inst.verification_link("late@example.com")
    time.sleep(2.1)
    status, body = url_get(link, inst.cert)
    assert status == 410, body
    assert inst.status("late@example.com") == "Pending"
    assert url_get(link, inst.cert)[0] == 404  # spent either way
    # Asking again gives a fresh link that works.
    c.verify_email_identity(EmailAddress="late@example.com")
    assert url_get(inst.verification_link("late@example.com"), inst.cert)[0] == 200
    assert inst.status("late@example.com") == "Success"


def test_auto_verify_instance(instance):
    inst = instance(auto_verify=True, regions=REGIONS)
    c = inst.client("eu-west-1")
    c.verify_email_identity(EmailAddress="auto@example.com")
    token = c.verify_domain_identity(Domain="Auto.Example.com")["VerificationToken"]
    assert TOKEN_RE.match(token)
    assert attrs(c, "auto@example.com", "auto.example.com") == {
        "auto@example.com": {"VerificationStatus": "Success"},
        "auto.example.com": {"VerificationStatus": "Success", "VerificationToken": token},
    }
    assert c.list_verified_email_addresses()["VerifiedEmailAddresses"] == ["auto@example.com"]
    assert inst.verification_link("auto@example.com", region="eu-west-1") is None
    us = inst.client("us-east-1")
    us.verify_email_address(EmailAddress="legacy-auto@example.com")
    assert us.list_verified_email_addresses()["VerifiedEmailAddresses"] == [
        "legacy-auto@example.com"]


def test_identity_limit(instance):
    inst = instance(regions=REGIONS, extra="[api]\nmax_identities = 3")
    c = inst.client()
    c.verify_email_identity(EmailAddress="one@example.com")
    c.verify_domain_identity(Domain="two.example.com")
    c.verify_email_address(EmailAddress="three@example.com")
    with pytest.raises(ClientError) as e:
        c.verify_email_identity(EmailAddress="four@example.com")
    assert e.value.response["Error"]["Code"] == "LimitExceeded"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert_error(inst.call("VerifyDomainIdentity", Domain="four.example.com"), 400,
                 "LimitExceeded")
    rc, err = inst.aws("verify-email-identity", "--email-address", "four@example.com",
                       expect_ok=False)
    assert "LimitExceeded" in err, err
    assert sorted(c.list_identities()["Identities"]) == [
        "one@example.com", "three@example.com", "two.example.com"]
    # Asking again for an identity that exists is not a new one.
    c.verify_email_identity(EmailAddress="one@example.com")
    c.verify_domain_identity(Domain="TWO.example.com")
    # The limit is per region.
    eu = inst.client("eu-west-1")
    for e_ in ("x@example.com", "y@example.com", "z@example.com"):
        eu.verify_email_identity(EmailAddress=e_)
    # After a delete there is room for one more.
    c.delete_identity(Identity="two.example.com")
    c.verify_email_identity(EmailAddress="four@example.com")
    assert sorted(c.list_identities()["Identities"]) == [
        "four@example.com", "one@example.com", "three@example.com"]


def test_legacy_email_actions(inst):
    c = inst.client("eu-west-1")
    c.verify_email_address(EmailAddress="legacy1@example.com")
    c.verify_email_address(EmailAddress="legacy2@example.com")
    reply = assert_ok(inst.call("VerifyEmailAddress", region="eu-west-1",
                                EmailAddress="legacy3@example.com"), "VerifyEmailAddress")
    # The legacy actions reply with ResponseMetadata only.
    assert [child.tag for child in reply.xml] == [q("ResponseMetadata")], reply
    listed = c.list_identities(IdentityType="EmailAddress")["Identities"]
    assert {"legacy1@example.com", "legacy2@example.com", "legacy3@example.com"} <= set(listed)

    # Only verified addresses are listed by ListVerifiedEmailAddresses.
    verified = c.list_verified_email_addresses()["VerifiedEmailAddresses"]
    assert not {"legacy1@example.com", "legacy2@example.com", "legacy3@example.com"} & set(verified)
    assert url_get(inst.verification_link("legacy1@example.com", region="eu-west-1"),
                   inst.cert)[0] == 200
    inst.sesame("identity", "verify", "--force", "legacy2@example.com", "--region", "eu-west-1")
    c.verify_domain_identity(Domain="legacy.example.com")
    inst.sesame("identity", "verify", "--force", "legacy.example.com", "--region", "eu-west-1")
    verified = c.list_verified_email_addresses()["VerifiedEmailAddresses"]
    assert {"legacy1@example.com", "legacy2@example.com"} <= set(verified)
    assert "legacy3@example.com" not in verified
    assert "legacy.example.com" not in verified  # domains are not email addresses
    raw = assert_ok(inst.call("ListVerifiedEmailAddresses", region="eu-west-1"),
                    "ListVerifiedEmailAddresses")
    assert sorted(raw.findall("member")) == sorted(verified)
    us_verified = inst.client("us-east-1").list_verified_email_addresses()
    assert not {"legacy1@example.com", "legacy2@example.com"} & set(
        us_verified["VerifiedEmailAddresses"])

    c.delete_verified_email_address(EmailAddress="legacy1@example.com")
    c.delete_verified_email_address(EmailAddress="legacy2@example.com")
    reply = assert_ok(inst.call("DeleteVerifiedEmailAddress", region="eu-west-1",
                                EmailAddress="legacy3@example.com"), "DeleteVerifiedEmailAddress")
    assert [child.tag for child in reply.xml] == [q("ResponseMetadata")], reply
    listed = c.list_identities()["Identities"]
    assert not {"legacy1@example.com", "legacy2@example.com", "legacy3@example.com"} & set(listed)
    assert "legacy.example.com" in listed
    assert c.list_verified_email_addresses()["VerifiedEmailAddresses"] == [
        v for v in verified if not v.startswith("legacy")]


def test_delete_identity(inst):
    c = inst.client()
    c.verify_email_identity(EmailAddress="gone1@example.com")
    c.verify_domain_identity(Domain="gone2.example.com")
    assert inst.aws("delete-identity", "--identity", "gone1@example.com") is None
    reply = assert_ok(inst.call("DeleteIdentity", Identity="GONE2.example.com"), "DeleteIdentity")
    assert reply.xml.find(q("DeleteIdentityResult")) is not None
    listed = c.list_identities()["Identities"]
    assert "gone1@example.com" not in listed and "gone2.example.com" not in listed
    assert attrs(c, "gone1@example.com", "gone2.example.com") == {}
    # Deleting what does not exist succeeds, as in SES, and changes nothing.
    c.delete_identity(Identity="never@example.com")
    assert sorted(c.list_identities()["Identities"]) == sorted(listed)
    # A deleted domain verified again gets a new token; a deleted email a new link.
    t = c.verify_domain_identity(Domain="gone2.example.com")["VerificationToken"]
    assert TOKEN_RE.match(t)
    assert inst.status("gone2.example.com") == "Pending"


def test_get_identity_verification_attributes_mixed(inst):
    c = inst.client()
    c.verify_email_identity(EmailAddress="mix@example.com")
    tok = c.verify_domain_identity(Domain="mix.example.com")["VerificationToken"]
    got = attrs(c, "mix@example.com", "nobody@example.com", "MIX.example.com")
    assert got == {"mix@example.com": {"VerificationStatus": "Pending"},
                   "mix.example.com": {"VerificationStatus": "Pending", "VerificationToken": tok}}
    assert attrs(c, "nobody@example.com") == {}
    # Through the CLI, in the other region: nothing.
    assert inst.aws("get-identity-verification-attributes", "--identities", "mix@example.com",
                    region="eu-west-1") == {"VerificationAttributes": {}}
