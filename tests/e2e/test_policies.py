"""Access control through real clients (issue 3): users with IAM policies, root keys,
tenant isolation, failed-authentication limits and secrets at rest."""
import json
import os
import stat

import pytest

from conftest import assert_error, assert_ok, http_send, parse_kv
from sendlib import SIM, client, client_error, verify

SEND_ONLY = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": ["ses:SendEmail", "ses:SendRawEmail"],
                            "Resource": "*"}]}
FULL = {"Version": "2012-10-17",
        "Statement": [{"Sid": "All", "Effect": "Allow", "Action": "ses:*", "Resource": "*"}]}
DENY_SEND_EMAIL = {"Statement": [{"Effect": "Deny", "Action": "ses:SendEmail", "Resource": "*"}]}
MESSAGE = {"Subject": {"Data": "policies"}, "Body": {"Text": {"Data": "body"}}}
SENDER = "sender@example.com"


def denied(inst, user, action):
    return "User: arn:aws:iam::%s:user/%s is not authorized to perform: ses:%s" % (
        inst.account_id(), user, action)


def new_user(inst, name, *policies, account=None):
    """Creates a user with the given policies (dicts) and a key; returns (key, secret)."""
    extra = ["--account", account] if account else []
    inst.sesame("user", "create", name, *extra)
    for i, doc in enumerate(policies):
        path = inst.dir / ("%s-%d.json" % (name, i))
        path.write_text(json.dumps(doc, indent=2))
        inst.sesame("policy", "put", name, "p%d" % i, "--file", str(path), *extra)
    out = parse_kv(inst.sesame("key", "create", "--user", name, *extra).stdout)
    return out["access_key_id"], out["secret_access_key"]


def credentials_file(inst, name, key, secret):
    path = inst.dir / ("credentials-" + name)
    path.write_text("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    "region = %s\n" % (key, secret, inst.default_region))
    return path


def send(ses, source=SENDER, to=SIM):
    return ses.send_email(Source=source, Destination={"ToAddresses": [to]}, Message=MESSAGE)


@pytest.fixture(scope="module")
def inst(module_instance):
    i = module_instance(regions=("us-east-1",), production=True,
                        extra="[delivery]\nmode = capture\n[api]\nnon_send_rate = 1000\n"
                              "non_send_burst = 1000\n")
    verify(i, SENDER)
    return i


def test_root_keys_have_full_access(inst):
    ses = inst.client()
    assert send(ses)["MessageId"]
    ses.list_identities()
    ses.get_send_statistics()


def test_send_only_user_sends_and_reads_nothing(inst):
    key, secret = new_user(inst, "sender", SEND_ONLY)
    ses = client(inst, key=key, secret=secret)
    assert send(ses)["MessageId"]
    raw = "From: %s\r\nTo: %s\r\nSubject: raw\r\n\r\nbody\r\n" % (SENDER, SIM)
    assert ses.send_raw_email(RawMessage={"Data": raw.encode()})["MessageId"]
    for fn, action in ((ses.list_identities, "ListIdentities"),
                       (ses.get_send_statistics, "GetSendStatistics"),
                       (ses.get_send_quota, "GetSendQuota")):
        assert client_error(fn) == (403, "AccessDenied", denied(inst, "sender", action))
    # The AWS CLI: the same answers.
    creds = credentials_file(inst, "sender", key, secret)
    out = inst.aws("send-email", "--from", SENDER, "--to", SIM, "--subject", "s", "--text",
                   "b", credentials=creds)
    assert out["MessageId"]
    code, err = inst.aws("list-identities", credentials=creds, expect_ok=False)
    assert "AccessDenied" in err and denied(inst, "sender", "ListIdentities") in err


def test_user_without_policies_is_denied_everything(inst):
    key, secret = new_user(inst, "nobody")
    ses = client(inst, key=key, secret=secret)
    assert client_error(send, ses) == (403, "AccessDenied", denied(inst, "nobody", "SendEmail"))
    assert client_error(ses.get_send_quota)[1] == "AccessDenied"


def test_explicit_deny_beats_allow(inst):
    key, secret = new_user(inst, "limited", FULL, DENY_SEND_EMAIL)
    ses = client(inst, key=key, secret=secret)
    assert client_error(send, ses) == (403, "AccessDenied", denied(inst, "limited", "SendEmail"))
    raw = "From: %s\r\nTo: %s\r\nSubject: raw\r\n\r\nbody\r\n" % (SENDER, SIM)
    assert ses.send_raw_email(RawMessage={"Data": raw.encode()})["MessageId"]
    assert ses.get_send_quota()["Max24HourSend"] > 0


def test_not_action_and_wildcards(inst):
    doc = {"Statement": [
        {"Effect": "Allow", "Action": "ses:Get*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": ["ses:Send*", "ses:Delete*", "ses:Get*"],
         "Resource": ["*"]}]}
    key, secret = new_user(inst, "reader", doc)
    ses = client(inst, key=key, secret=secret)
    ses.get_send_quota()
    ses.get_send_statistics()
    ses.list_identities()
    assert client_error(send, ses)[1] == "AccessDenied"
    assert client_error(ses.delete_identity, Identity="x@example.com")[1] == "AccessDenied"


def test_source_ip_condition(inst):
    doc = {"Statement": [{"Effect": "Allow", "Action": "ses:*", "Resource": "*",
                          "Condition": {"IpAddress": {"AWS:SourceIp": ["127.0.0.1/32"]}}}]}
    key, secret = new_user(inst, "ip-bound", doc)
    ses = client(inst, key=key, secret=secret)
    assert send(ses)["MessageId"]  # boto3 connects from 127.0.0.1
    assert_ok(inst.call("GetSendQuota", key=key, secret=secret, source="127.0.0.1"),
              "GetSendQuota")
    assert_error(inst.call("GetSendQuota", key=key, secret=secret, source="127.0.0.2"), 403,
                 "AccessDenied", denied(inst, "ip-bound", "GetSendQuota"))


def test_not_ip_address_condition(inst):
    doc = {"Statement": [
        {"Effect": "Allow", "Action": "ses:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ses:*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:sourceip": ["127.0.0.0/31", "::1"]}}}]}
    key, secret = new_user(inst, "ip-deny", doc)
    assert_ok(inst.call("GetSendQuota", key=key, secret=secret, source="127.0.0.1"),
              "GetSendQuota")
    assert_error(inst.call("GetSendQuota", key=key, secret=secret, source="127.0.0.3"), 403,
                 "AccessDenied")


def test_secure_transport_condition(inst):
    doc = {"Statement": [{"Effect": "Allow", "Action": "ses:*", "Resource": "*",
                          "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}
    key, secret = new_user(inst, "tls-only", doc)
    assert_ok(inst.call("GetSendQuota", key=key, secret=secret, https=True), "GetSendQuota")
    assert_error(inst.call("GetSendQuota", key=key, secret=secret), 403, "AccessDenied")
    ses = inst.client(https=True, key=key, secret=secret)
    assert send(ses)["MessageId"]


def test_user_agent_and_time_conditions(inst):
    doc = {"Statement": [
        {"Effect": "Allow", "Action": "ses:GetSendQuota", "Resource": "*",
         "Condition": {"StringLike": {"aws:UserAgent": "*aws-cli/*"}}},
        {"Effect": "Allow", "Action": "ses:GetSendStatistics", "Resource": "*",
         "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
                       "NumericGreaterThan": {"aws:EpochTime": 1577836800}}},
        {"Effect": "Allow", "Action": "ses:ListIdentities", "Resource": "*",
         "Condition": {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]}
    key, secret = new_user(inst, "conditional", doc)
    creds = credentials_file(inst, "conditional", key, secret)
    assert inst.aws("get-send-quota", credentials=creds)["Max24HourSend"] > 0
    ses = client(inst, key=key, secret=secret)  # boto3's agent is not aws-cli's
    assert client_error(ses.get_send_quota)[1] == "AccessDenied"
    assert_error(inst.call("GetSendQuota", key=key, secret=secret), 403, "AccessDenied")
    assert_ok(inst.call("GetSendQuota", key=key, secret=secret,
                        headers={"User-Agent": "aws-cli/2.9.19 Python/3.11"}), "GetSendQuota")
    ses.get_send_statistics()
    assert client_error(ses.list_identities)[1] == "AccessDenied"


def test_policy_changes_and_revocation_through_the_admin_command(inst):
    key, secret = new_user(inst, "changing", SEND_ONLY)
    ses = client(inst, key=key, secret=secret)
    assert client_error(ses.get_send_quota)[1] == "AccessDenied"
    path = inst.dir / "full.json"
    path.write_text(json.dumps(FULL))
    inst.sesame("policy", "put", "changing", "p0", "--file", str(path))
    inst.settle()  # the admin command is another process: seen within api.cache_ttl
    ses.get_send_quota()
    inst.sesame("key", "revoke", key)
    inst.settle()
    assert client_error(ses.get_send_quota)[1] == "InvalidClientTokenId"


# ---- tenants ----


@pytest.fixture(scope="module")
def tenants(inst):
    """Account B with its own key and a verified identity only B owns."""
    account, key, secret = inst.new_account("tenant-b")
    verify(inst, "b-only@example.org", account=account)
    inst.sesame("account", "set", account, "--production")
    return account, client(inst, key=key, secret=secret)


def test_tenant_cannot_see_or_use_another_tenants_identities(inst, tenants):
    _, b = tenants
    a = inst.client()
    assert "b-only@example.org" not in a.list_identities()["Identities"]
    assert "b-only@example.org" in b.list_identities()["Identities"]
    attrs = a.get_identity_verification_attributes(Identities=["b-only@example.org"])
    assert attrs["VerificationAttributes"] == {}
    status, code, message = client_error(send, a, source="b-only@example.org")
    assert (status, code) == (400, "MessageRejected") and "b-only@example.org" in message
    a.delete_identity(Identity="b-only@example.org")  # SES answers success for unknown ones
    assert "b-only@example.org" in b.list_identities()["Identities"]
    assert send(b, source="b-only@example.org")["MessageId"]
    # A verifying the same address makes A's own, Pending, and leaves B's verified.
    a.verify_email_identity(EmailAddress="b-only@example.org")
    got = b.get_identity_verification_attributes(Identities=["b-only@example.org"])
    assert got["VerificationAttributes"]["b-only@example.org"]["VerificationStatus"] == "Success"
    a.delete_identity(Identity="b-only@example.org")


def test_tenant_statistics_and_quota_are_their_own(inst, tenants):
    _, b = tenants
    before_a = inst.client().get_send_quota()["SentLast24Hours"]
    before_b = b.get_send_quota()["SentLast24Hours"]
    a = inst.client()
    for _ in range(3):  # the simulator counts for nobody: real recipients (capture mode)
        send(a, to="someone@example.net")
    assert b.get_send_quota()["SentLast24Hours"] == before_b
    assert a.get_send_quota()["SentLast24Hours"] == before_a + 3
    assert b.get_send_statistics()["SendDataPoints"] == []


def test_user_of_one_account_acts_only_in_it(inst, tenants):
    account_b, _ = tenants
    key, secret = new_user(inst, "b-user", FULL, account=account_b)
    ses = client(inst, key=key, secret=secret)
    ids = ses.list_identities()["Identities"]
    assert "b-only@example.org" in ids and SENDER not in ids
    assert client_error(send, ses, source=SENDER)[1] == "MessageRejected"


# ---- failed authentication and secrets at rest ----


def test_failed_authentications_are_limited_per_address(instance):
    inst = instance(extra="[auth]\nfailure_limit = 3\nfailure_window = 60s\n")
    for _ in range(3):
        assert_error(inst.call("GetSendQuota", secret="x" * 40, source="127.0.0.2"), 403,
                     "SignatureDoesNotMatch")
    # The address is refused even with good credentials; another address is not.
    assert_error(inst.call("GetSendQuota", source="127.0.0.2"), 400, "Throttling")
    assert_ok(inst.call("GetSendQuota", source="127.0.0.1"), "GetSendQuota")
    log = inst.log()
    assert "127.0.0.2 failed to authenticate 3 times" in log
    assert "x" * 40 not in log and inst.secret not in log


def test_wrong_admin_tokens_count_with_api_failures(instance):
    """One limit per address across interfaces: guessing the admin token is as slow as
    guessing a key."""
    inst = instance(extra="[auth]\nfailure_limit = 3\nfailure_window = 60s\n")
    admin, token = inst.endpoints["admin"], inst.endpoints["admin_token"]

    def accounts(tok, source):
        return http_send(admin, "GET", "/v1/accounts", b"",
                         {"Host": "x", "Authorization": "Bearer " + tok}, source=source)
    for _ in range(3):
        assert accounts("wrong-" + token, "127.0.0.2").status == 401
    assert accounts(token, "127.0.0.2").status == 429
    assert_error(inst.call("GetSendQuota", source="127.0.0.2"), 400, "Throttling")
    assert accounts(token, "127.0.0.1").status == 200
    assert token not in inst.log()


def test_secrets_are_sealed_at_rest(inst):
    key, secret = new_user(inst, "sealed", SEND_ONLY)
    inst.sesame("key", "list")  # reads and unseals: still usable
    ses = client(inst, key=key, secret=secret)
    assert send(ses)["MessageId"]
    store = inst.dir / "sesame.db"
    data = b"".join(p.read_bytes() for p in inst.dir.glob("sesame.db*") if p.is_file()
                    and not p.name.endswith(".key"))
    assert store.exists() and key.encode() in data
    for s in (secret, inst.secret):
        assert s.encode() not in data
    keyfile = inst.dir / "sesame.db.key"
    assert keyfile.exists()
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
