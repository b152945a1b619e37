"""The admin HTTP API (admin.listen, bearer admin.token), driven with curl against a real
sesamed: accounts, limits, users, policies, keys, the suppression list and identity
overrides; and what it refuses. Its writes happen inside sesamed, so the Query API sees
them on the very next request: nothing here waits for api.cache_ttl."""
import json
import subprocess

import pytest

from conftest import smtp_password_v2, smtp_password_v4
from sendlib import captured, client, client_error

# Capture mode keeps sent messages for inspection; the default cache_ttl stays on, so the
# tests show that the API's own writes need no waiting.
EXTRA = "[delivery]\nmode = capture\n"
ALLOW_ALL = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "ses:*", "Resource": "*"}]}
INVALID_POLICY = '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Perhaps"}\n  ]\n}'


class Reply:
    def __init__(self, status, text):
        self.status = status
        self.text = text
        try:
            self.json = json.loads(text) if text.strip() else None
        except ValueError:
            self.json = None

    @property
    def error(self):
        """(code, message) of an error reply."""
        assert self.json and set(self.json) == {"error"}, self
        err = self.json["error"]
        assert set(err) == {"code", "message"} and err["message"], self
        return err["code"], err["message"]

    def __repr__(self):
        return "Reply(%d, %r)" % (self.status, self.text[:600])


class Admin:
    """curl against an instance's admin API, with its token unless told otherwise."""

    def __init__(self, inst):
        self.url = inst.endpoints["admin"]
        self.token = inst.endpoints["admin_token"]

    def __call__(self, method, path, body=None, token=True, raw=None, headers=()):
        cmd = ["curl", "-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}",
               "--max-time", "60", self.url + path]
        if token is True:
            token = self.token
        if token is not None:
            cmd += ["-H", "Authorization: Bearer " + token]
        for h in headers:
            cmd += ["-H", h]
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        if data is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        if isinstance(data, str):
            data = data.encode()
        res = subprocess.run(cmd, input=data, capture_output=True, timeout=90)
        assert res.returncode == 0, res.stderr
        text, _, status = res.stdout.decode("utf-8", "replace").rpartition("\n")
        return Reply(int(status), text)

    def ok(self, method, path, body=None, status=200, **kw):
        r = self(method, path, body, **kw)
        assert r.status == status, r
        return r.json

    def error(self, method, path, body=None, status=400, code=None, **kw):
        r = self(method, path, body, **kw)
        assert r.status == status, r
        got_code, message = r.error
        if code:
            assert got_code == code, r
        return message


@pytest.fixture(scope="module")
def inst(module_instance):
    return module_instance(extra=EXTRA)


@pytest.fixture(scope="module")
def admin(inst):
    return Admin(inst)


def new_account(admin, inst, name="tenant", **fields):
    """POST /v1/accounts: (account JSON, access key JSON, boto3 client for its key)."""
    got = admin.ok("POST", "/v1/accounts", dict(name=name, **fields), status=201)
    key = got["access_key"]
    return got["account"], key, client(inst, key=key["access_key_id"],
                                       secret=key["secret_access_key"])


def quota(ses):
    r = ses.get_send_quota()
    return r["Max24HourSend"], r["MaxSendRate"]


def send(ses, source="news@example.org", to="someone@example.net"):
    return ses.send_email(Source=source, Destination={"ToAddresses": [to]},
                          Message={"Subject": {"Data": "hello"},
                                   "Body": {"Text": {"Data": "hi"}}})


# ---- the whole lifecycle ----


def test_lifecycle(admin, inst):
    acct, key, root = new_account(admin, inst, contact="ops@example.com")
    a = acct["id"]
    assert len(a) == 12 and a.isdigit()
    assert acct["name"] == "tenant" and acct["contact"] == "ops@example.com"
    assert acct["suspended"] is False and acct["disabled"] is False
    assert acct["regions"] == {"us-east-1": {"production": False, "max_24h": 200, "max_rate": 1}}
    secret = key["secret_access_key"]
    assert key["user"] is None and key["active"] is True
    assert key["smtp_password_v2"] == smtp_password_v2(secret)
    assert key["smtp_passwords_v4"] == {"us-east-1": smtp_password_v4(secret, "us-east-1")}
    assert a in [x["id"] for x in admin.ok("GET", "/v1/accounts")["accounts"]]
    assert admin.ok("GET", "/v1/accounts/" + a) == acct
    assert quota(root) == (200.0, 1.0)

    # Out of the sandbox: the config's production limits, seen by the very next request.
    got = admin.ok("PATCH", "/v1/accounts/" + a, {"regions": {"us-east-1": {"production": True}}})
    assert got["regions"]["us-east-1"] == {"production": True, "max_24h": 10000, "max_rate": 5}
    assert quota(root) == (10000.0, 5.0)
    got = admin.ok("PATCH", "/v1/accounts/" + a,
                   {"name": "renamed", "regions": {"us-east-1": {"max_24h": 50000, "max_rate": 14}}})
    assert got["name"] == "renamed"
    assert got["regions"]["us-east-1"] == {"production": True, "max_24h": 50000, "max_rate": 14}
    assert quota(root) == (50000.0, 14.0)

    # A user with a policy and a key of its own.
    user = admin.ok("POST", "/v1/accounts/%s/users" % a, {"name": "mailer"}, status=201)
    assert user["name"] == "mailer" and user["arn"] == "arn:aws:iam::%s:user/mailer" % a
    got = admin.ok("PUT", "/v1/accounts/%s/users/mailer/policies/send-all" % a,
                   raw=json.dumps(ALLOW_ALL))
    assert got == {"name": "send-all", "document": ALLOW_ALL}
    assert admin.ok("GET", "/v1/accounts/%s/users/mailer/policies" % a) == {
        "policies": ["send-all"]}
    assert admin.ok("GET", "/v1/accounts/%s/users/mailer/policies/send-all" % a)[
        "document"] == ALLOW_ALL
    ukey = admin.ok("POST", "/v1/accounts/%s/users/mailer/keys" % a, status=201)
    assert ukey["user"] == "mailer" and ukey["active"] is True
    user_ses = client(inst, key=ukey["access_key_id"], secret=ukey["secret_access_key"])
    assert quota(user_ses) == (50000.0, 14.0)  # the user's policy allows ses:*

    got = admin.ok("GET", "/v1/accounts/%s/users/mailer" % a)
    assert [k["access_key_id"] for k in got["keys"]] == [ukey["access_key_id"]]
    assert got["policies"] == ["send-all"]
    keys = admin.ok("GET", "/v1/accounts/%s/keys" % a)["keys"]
    assert {k["access_key_id"]: k["user"] for k in keys} == {
        key["access_key_id"]: None, ukey["access_key_id"]: "mailer"}
    assert not any("secret_access_key" in k for k in keys)

    # Sending from an identity the operator marked verified.
    got = admin.ok("PUT", "/v1/accounts/%s/identities/Example.ORG" % a, {"status": "Success"})
    assert got["identity"] == "example.org" and got["type"] == "Domain"
    mid = send(user_ses)["MessageId"]
    assert captured(inst, mid)["Source"] == "news@example.org"

    # Revoked: refused on the next request, without waiting for any cache.
    got = admin.ok("DELETE", "/v1/accounts/%s/keys/%s" % (a, ukey["access_key_id"]))
    assert got["active"] is False and "secret_access_key" not in got
    status, code, _ = client_error(user_ses.get_send_quota)
    assert (status, code) == (403, "InvalidClientTokenId")

    # Suspended: sending is refused, everything else works.
    assert admin.ok("PATCH", "/v1/accounts/" + a, {"suspended": True})["suspended"] is True
    status, code, message = client_error(send, root)
    assert (status, code, message) == (400, "MessageRejected", "Customer is suspended")
    assert quota(root) == (50000.0, 14.0)
    admin.ok("PATCH", "/v1/accounts/" + a, {"suspended": False})
    assert send(root)["MessageId"]

    # Deleting the user takes its keys and policies with it.
    ukey2 = admin.ok("POST", "/v1/accounts/%s/users/mailer/keys" % a, status=201)
    ses2 = client(inst, key=ukey2["access_key_id"], secret=ukey2["secret_access_key"])
    assert quota(ses2) == (50000.0, 14.0)
    got = admin.ok("DELETE", "/v1/accounts/%s/users/mailer" % a)
    assert got == {"name": "mailer", "deleted_access_keys": 2, "deleted_policies": 1}
    assert client_error(ses2.get_send_quota)[1] == "InvalidClientTokenId"
    admin.error("GET", "/v1/accounts/%s/users/mailer" % a, status=404, code="NotFound")
    assert admin.ok("GET", "/v1/accounts/%s/users" % a) == {"users": []}
    assert [k["access_key_id"] for k in admin.ok("GET", "/v1/accounts/%s/keys" % a)["keys"]] == [
        key["access_key_id"]]


def test_user_without_policy_is_denied(admin, inst):
    acct, _, _ = new_account(admin, inst, name="nopolicy")
    a = acct["id"]
    admin.ok("POST", "/v1/accounts/%s/users" % a, {"name": "bare"}, status=201)
    k = admin.ok("POST", "/v1/accounts/%s/users/bare/keys" % a, status=201)
    ses = client(inst, key=k["access_key_id"], secret=k["secret_access_key"])
    status, code, _ = client_error(ses.get_send_quota)
    assert (status, code) == (403, "AccessDenied")


# ---- keys and users ----


def test_user_key_limit(admin, inst):
    acct, root_key, _ = new_account(admin, inst, name="keys")
    a = acct["id"]
    admin.ok("POST", "/v1/accounts/%s/users" % a, {"name": "rotating"}, status=201)
    first = admin.ok("POST", "/v1/accounts/%s/users/rotating/keys" % a, status=201)
    admin.ok("POST", "/v1/accounts/%s/users/rotating/keys" % a, status=201)
    message = admin.error("POST", "/v1/accounts/%s/users/rotating/keys" % a, status=409,
                          code="LimitExceeded")
    assert message == "user rotating already has 2 active access keys (the limit)"
    assert len(admin.ok("GET", "/v1/accounts/%s/users/rotating/keys" % a)["keys"]) == 2
    # Revoking one makes room for the next: the limit counts active keys.
    admin.ok("DELETE", "/v1/accounts/%s/keys/%s" % (a, first["access_key_id"]))
    admin.ok("POST", "/v1/accounts/%s/users/rotating/keys" % a, status=201)
    # Root keys have no such limit; a user must exist to get one.
    for _ in range(3):
        admin.ok("POST", "/v1/accounts/%s/keys" % a, status=201)
    admin.error("POST", "/v1/accounts/%s/users/nobody/keys" % a, status=404, code="NotFound")
    got = admin.ok("GET", "/v1/accounts/%s/keys/%s" % (a, root_key["access_key_id"]))
    assert got["active"] is True and "secret_access_key" not in got


def test_user_names(admin, inst):
    acct, _, _ = new_account(admin, inst, name="names")
    users = "/v1/accounts/%s/users" % acct["id"]
    for name in ("a", "x" * 64, "svc+mail=1,v.2@corp_-"):
        admin.ok("POST", users, {"name": name}, status=201)
    for name in ("", "x" * 65, "has space", "slash/y", "ünï"):
        admin.error("POST", users, {"name": name}, code="ValidationError")
    assert admin.error("POST", users, {"name": "a"}, status=409, code="Conflict")
    assert sorted(u["name"] for u in admin.ok("GET", users)["users"]) == sorted(
        ["a", "x" * 64, "svc+mail=1,v.2@corp_-"])
    # Percent-encoded names in paths are decoded.
    assert admin.ok("GET", users + "/svc%2Bmail%3D1%2Cv.2%40corp_-")["name"] == \
        "svc+mail=1,v.2@corp_-"


# ---- policies ----


def test_policy_crud_and_validation(admin, inst):
    acct, _, _ = new_account(admin, inst, name="policies")
    base = "/v1/accounts/%s/users/pol" % acct["id"]
    admin.ok("POST", "/v1/accounts/%s/users" % acct["id"], {"name": "pol"}, status=201)
    message = admin.error("PUT", base + "/policies/p1", raw=INVALID_POLICY,
                          code="MalformedPolicyDocument")
    assert "line" in message and "column" in message, message
    assert message.startswith("line 4, column "), message
    for bad in ("", "not json", "[1,2]", '{"Version": "2012-10-17"}'):
        message = admin.error("PUT", base + "/policies/p1", raw=bad,
                              code="MalformedPolicyDocument")
        assert "line" in message and "column" in message, (bad, message)
    assert admin.ok("GET", base + "/policies") == {"policies": []}
    big = json.dumps(dict(ALLOW_ALL, Padding=" " * 70000))
    admin.error("PUT", base + "/policies/p1", raw=big, code="ValidationError")
    admin.error("PUT", base + "/policies/" + "n" * 129, raw=json.dumps(ALLOW_ALL),
                code="ValidationError")
    admin.error("PUT", "/v1/accounts/%s/users/ghost/policies/p1" % acct["id"],
                raw=json.dumps(ALLOW_ALL), status=404, code="NotFound")

    admin.ok("PUT", base + "/policies/p1", raw=json.dumps(ALLOW_ALL))
    deny = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": "ses:SendRawEmail", "Resource": "*"}]}
    admin.ok("PUT", base + "/policies/p2", raw=json.dumps(deny))
    admin.ok("PUT", base + "/policies/p1", raw=json.dumps(deny))  # replaces
    assert admin.ok("GET", base + "/policies/p1")["document"] == deny
    assert admin.ok("GET", base + "/policies") == {"policies": ["p1", "p2"]}
    r = admin("DELETE", base + "/policies/p1")
    assert r.status == 204 and r.text == "", r
    admin.error("DELETE", base + "/policies/p1", status=404, code="NotFound")
    admin.error("GET", base + "/policies/p1", status=404, code="NotFound")
    assert admin.ok("GET", base + "/policies") == {"policies": ["p2"]}


# ---- suppression list ----


def test_suppression_list(admin, inst):
    acct, _, _ = new_account(admin, inst, name="suppressions")
    base = "/v1/accounts/%s/suppressions" % acct["id"]
    assert admin.ok("GET", base) == {"suppressions": [], "next": None}
    for addr, reason in (("b@example.com", "BOUNCE"), ("a@example.com", "COMPLAINT"),
                         ("c+tag@example.com", "BOUNCE")):
        got = admin.ok("PUT", base + "/" + addr.replace("+", "%2B"), {"reason": reason})
        assert got["address"] == addr and got["reason"] == reason and got["created"]
    first = admin.ok("GET", base + "?limit=2")
    assert [s["address"] for s in first["suppressions"]] == ["a@example.com", "b@example.com"]
    assert first["next"] == "b@example.com"
    rest = admin.ok("GET", base + "?limit=2&after=b@example.com")
    assert [s["address"] for s in rest["suppressions"]] == ["c+tag@example.com"]
    assert rest["next"] is None
    got = admin.ok("GET", base + "/b@example.com")
    changed = admin.ok("PUT", base + "/b@example.com", {"reason": "COMPLAINT"})
    assert changed["reason"] == "COMPLAINT" and changed["created"] == got["created"]
    r = admin("DELETE", base + "/b@example.com")
    assert r.status == 204, r
    admin.error("GET", base + "/b@example.com", status=404, code="NotFound")
    admin.error("DELETE", base + "/b@example.com", status=404, code="NotFound")

    admin.error("PUT", base + "/not-an-address", {"reason": "BOUNCE"}, code="ValidationError")
    admin.error("PUT", base + "/d@example.com", {"reason": "SPITE"}, code="ValidationError")
    admin.error("PUT", base + "/d@example.com", {}, code="ValidationError")
    admin.error("GET", base + "?limit=0", code="ValidationError")
    admin.error("GET", base + "?limit=abc", code="ValidationError")
    admin.error("GET", base + "?colour=red", code="ValidationError")
    assert [s["address"] for s in admin.ok("GET", base)["suppressions"]] == [
        "a@example.com", "c+tag@example.com"]
    # One address however it is written: kept lower-case, found in any case.
    assert admin.ok("PUT", base + "/Mixed@Example.COM", {"reason": "BOUNCE"})["address"] == \
        "mixed@example.com"
    assert admin.ok("GET", base + "/MIXED@example.com")["address"] == "mixed@example.com"
    assert admin("DELETE", base + "/mixed@EXAMPLE.com").status == 204


# ---- identity overrides ----


def test_identity_override(admin, inst):
    acct, key, ses = new_account(admin, inst, name="identities")
    a = acct["id"]
    admin.ok("PATCH", "/v1/accounts/" + a, {"regions": {"us-east-1": {"production": True}}})
    ids = "/v1/accounts/%s/identities" % a
    source = "Sender@Brand.example"
    status, code, _ = client_error(send, ses, source)
    assert (status, code) == (400, "MessageRejected")

    got = admin.ok("PUT", ids + "/" + source, {"status": "Success"})
    assert got["identity"] == source and got["type"] == "EmailAddress"
    assert got["status"] == "Success" and got["region"] == "us-east-1"
    assert ses.get_identity_verification_attributes(Identities=[source])[
        "VerificationAttributes"][source]["VerificationStatus"] == "Success"
    mid = send(ses, source)["MessageId"]
    assert captured(inst, mid)["Source"] == source

    admin.ok("PUT", ids + "/" + source, {"status": "Failed"})
    assert client_error(send, ses, source)[1] == "MessageRejected"
    pending = admin.ok("PUT", ids + "/Brand.EXAMPLE", {"status": "Pending"})
    assert pending["identity"] == "brand.example" and pending["verification_token"]
    assert admin.ok("GET", ids + "/brand.example") == pending
    listed = admin.ok("GET", ids)["identities"]
    assert sorted((i["identity"], i["status"]) for i in listed) == [
        ("Sender@Brand.example", "Failed"), ("brand.example", "Pending")]
    assert admin.ok("GET", ids + "?region=us-east-1")["identities"] == listed

    admin.error("GET", ids + "?region=mars-north-1", code="ValidationError")
    admin.error("PUT", ids + "/x@example.com?region=mars-north-1", {"status": "Success"},
                code="ValidationError")
    admin.error("PUT", ids + "/x@example.com", {"status": "Verified"}, code="ValidationError")
    admin.error("PUT", ids + "/not..a..domain", {"status": "Success"}, code="ValidationError")
    admin.error("GET", ids + "/nobody@example.com", status=404, code="NotFound")

    r = admin("DELETE", ids + "/brand.example")
    assert r.status == 204, r
    admin.error("DELETE", ids + "/brand.example", status=404, code="NotFound")
    assert [i["identity"] for i in admin.ok("GET", ids)["identities"]] == [source]
    assert ses.list_identities()["Identities"] == [source]


# ---- what is refused ----


def snapshot(admin, a):
    """Everything the bad requests below might have changed in account a."""
    users = admin.ok("GET", "/v1/accounts/%s/users" % a)["users"]
    return {
        "account": admin.ok("GET", "/v1/accounts/" + a),
        "keys": admin.ok("GET", "/v1/accounts/%s/keys" % a),
        "users": [admin.ok("GET", "/v1/accounts/%s/users/%s" % (a, u["name"])) for u in users],
        "suppressions": admin.ok("GET", "/v1/accounts/%s/suppressions" % a),
        "identities": admin.ok("GET", "/v1/accounts/%s/identities" % a),
    }


def test_bad_input_changes_nothing(admin, inst):
    acct_a, key_a, ses_a = new_account(admin, inst, name="tenant-a")
    acct_b, key_b, ses_b = new_account(admin, inst, name="tenant-b")
    a, b = acct_a["id"], acct_b["id"]
    admin.ok("POST", "/v1/accounts/%s/users" % a, {"name": "alice"}, status=201)
    admin.ok("POST", "/v1/accounts/%s/users" % b, {"name": "bob"}, status=201)
    admin.ok("PUT", "/v1/accounts/%s/users/bob/policies/p" % b, raw=json.dumps(ALLOW_ALL))
    admin.ok("PUT", "/v1/accounts/%s/identities/b.example" % b, {"status": "Success"})
    admin.ok("PUT", "/v1/accounts/%s/suppressions/x@b.example" % b, {"reason": "BOUNCE"})
    before = {a: snapshot(admin, a), b: snapshot(admin, b)}
    accounts_before = admin.ok("GET", "/v1/accounts")

    # Credentials: missing, wrong, wrong scheme. The log never shows what was sent.
    wrong = "f" * 64
    for token in (None, wrong, "", admin.token[:-1]):
        r = admin("GET", "/v1/accounts", token=token)
        assert r.status == 401 and r.error[0] == "Unauthorized", r
    r = admin("POST", "/v1/accounts", {"name": "x"}, token=None,
              headers=["Authorization: Basic " + admin.token])
    assert r.status == 401 and r.error[0] == "Unauthorized", r
    assert "refused" in inst.log() and wrong not in inst.log()
    assert admin.token not in inst.log()

    acc = "/v1/accounts/" + a
    # Malformed JSON, wrong types, unknown fields.
    for raw in ("{", '{"name": "x",}', "[]", '"x"', '{"name": "x"} trailing',
                '{"name": "a", "name": "b"}'):
        admin.error("PATCH", acc, raw=raw, code="BadRequest")
    for body in ({"name": 5}, {"suspended": "yes"}, {"contact": None}, {"regions": []},
                 {"regions": {"us-east-1": {"production": "true"}}},
                 {"regions": {"us-east-1": {"max_24h": "10"}}},
                 {"regions": {"us-east-1": 1}}):
        admin.error("PATCH", acc, body, code="ValidationError")
    for body in ({"nmae": "x"}, {"regions": {"us-east-1": {"quota": 5}}},
                 {"regions": {"ap-south-1": {"production": True}}}):
        message = admin.error("PATCH", acc, body, code="ValidationError")
        assert "nmae" in message or "quota" in message or "ap-south-1" in message, message
    for body in ({"regions": {"us-east-1": {"max_24h": -1}}},
                 {"regions": {"us-east-1": {"max_rate": 1e13}}},
                 {"contact": "not-an-address"}, {"name": ""}, {"name": "n" * 64}):
        admin.error("PATCH", acc, body, code="ValidationError")
    # A valid change together with an invalid one: neither is made.
    admin.error("PATCH", acc, {"suspended": True, "regions": {"us-east-1": {"max_rate": -2}}},
                code="ValidationError")
    admin.error("POST", "/v1/accounts", {"name": "x", "colour": "red"}, code="ValidationError")
    admin.error("POST", "/v1/accounts", {"production": "yes"}, code="ValidationError")
    admin.error("POST", "/v1/accounts/%s/users" % a, {}, code="ValidationError")
    admin.error("POST", "/v1/accounts/%s/users" % a, {"name": ["x"]}, code="ValidationError")
    admin.error("POST", "/v1/accounts/%s/keys" % a, {"user": "alice"}, code="ValidationError")
    admin.error("GET", "/v1/accounts?x=1", code="ValidationError")

    # Unknown accounts, endpoints and methods.
    for path in ("/v1/accounts/999999999999", "/v1/accounts/12", "/v1/accounts/abc/users",
                 "/v1/accounts/999999999999/keys", "/v1/nothing", "/v2/accounts", "/",
                 "/v1/accounts/%s/frobs" % a, "/v1/accounts/%s/" % a):
        admin.error("GET", path, status=404, code="NotFound")
    admin.error("PATCH", "/v1/accounts/999999999999", {"suspended": True}, status=404,
                code="NotFound")
    r = admin("DELETE", acc)
    assert r.status == 405 and r.error[0] == "MethodNotAllowed", r
    admin.error("PUT", "/v1/accounts", {}, status=405, code="MethodNotAllowed")

    # Another tenant's key, user, policy, identity and suppression entry under A's path.
    kb = key_b["access_key_id"]
    admin.error("DELETE", "/v1/accounts/%s/keys/%s" % (a, kb), status=404, code="NotFound")
    admin.error("GET", "/v1/accounts/%s/keys/%s" % (a, kb), status=404, code="NotFound")
    for method in ("GET", "DELETE"):
        admin.error(method, "/v1/accounts/%s/users/bob" % a, status=404, code="NotFound")
        admin.error(method, "/v1/accounts/%s/users/bob/policies/p" % a, status=404,
                    code="NotFound")
        admin.error(method, "/v1/accounts/%s/identities/b.example" % a, status=404,
                    code="NotFound")
        admin.error(method, "/v1/accounts/%s/suppressions/x@b.example" % a, status=404,
                    code="NotFound")
    admin.error("POST", "/v1/accounts/%s/users/bob/keys" % a, status=404, code="NotFound")
    admin.error("PUT", "/v1/accounts/%s/users/bob/policies/p" % a, raw=json.dumps(ALLOW_ALL),
                status=404, code="NotFound")

    # Policies: invalid documents, oversized bodies.
    message = admin.error("PUT", "/v1/accounts/%s/users/alice/policies/p" % a,
                          raw=INVALID_POLICY, code="MalformedPolicyDocument")
    assert "line" in message and "column" in message, message
    r = admin("PUT", "/v1/accounts/%s/users/alice/policies/p" % a,
              raw="{" + " " * (1024 * 1024) + "}")
    assert r.status == 413, r
    r = admin("POST", "/v1/accounts", raw='{"name": "%s"}' % ("n" * (1024 * 1024)))
    assert r.status == 413, r

    after = {a: snapshot(admin, a), b: snapshot(admin, b)}
    assert after == before
    assert admin.ok("GET", "/v1/accounts") == accounts_before
    # B's key still works; A's too.
    assert ses_b.get_send_quota()["Max24HourSend"] == 200.0
    assert ses_a.get_send_quota()["Max24HourSend"] == 200.0


def test_empty_token_refuses_everything(instance):
    inst = instance(extra="[admin]\ntoken =\n")
    admin = Admin(inst)
    for token in (admin.token, "", None):
        r = admin("GET", "/v1/accounts", token=token)
        assert r.status == 401 and r.error[0] == "Unauthorized", r
    r = admin("POST", "/v1/accounts", {"name": "x"})
    assert r.status == 401, r
    assert len(inst.sesame("account", "list").stdout.splitlines()) == 1
