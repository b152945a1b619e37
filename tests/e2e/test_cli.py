"""The admin command: `sesame init` and the files it writes, help and usage errors, and
account, key and identity administration observed through the API."""
import configparser
import re
import stat
import ssl
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import (SESAME, SESAMED, assert_error, assert_sanitizer_clean, base_env,
                      error_code, eventually_equal, parse_kv, run_sesame, smtp_password_v2,
                      smtp_password_v4)

REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture(scope="module")
def inst(module_instance):
    return module_instance(regions=REGIONS)


# ---- init ----


def test_init_writes_instance_files(tmp_path):
    d = tmp_path / "inst"
    res = run_sesame(None, "init", "--dir", d, "--port-base", "24100", "--region", "us-east-1",
                     "--region", "eu-west-1", "--resolver", "127.0.0.1:5399")
    assert res.returncode == 0, res.stderr
    for name in ("sesame.conf", "credentials", "endpoints", "sesame.db", "tls/cert.pem",
                 "tls/key.pem"):
        assert (d / name).is_file(), name
    # Secrets are readable by the owner only.
    for name in ("sesame.conf", "credentials", "endpoints", "tls/key.pem"):
        mode = stat.S_IMODE((d / name).stat().st_mode)
        assert mode & 0o077 == 0, (name, oct(mode))

    conf = configparser.ConfigParser()
    conf.read(d / "sesame.conf")
    assert conf["api"]["http_listen"] == "127.0.0.1:24100"
    assert conf["api"]["https_listen"] == "127.0.0.1:24101"
    assert [r.strip() for r in conf["regions"]["names"].split(",")] == list(REGIONS)
    assert conf["verification"]["poll_interval"] == "5s"
    assert conf["verification"]["auto_verify"] == "false"
    assert conf["dns"]["resolver"] == "127.0.0.1:5399"
    assert conf["store"]["backend"] == "sqlite"
    assert conf["store"]["path"] == str(d.resolve() / "sesame.db")
    assert conf["tls"]["cert"] == str(d.resolve() / "tls" / "cert.pem")

    creds = configparser.ConfigParser()
    creds.read(d / "credentials")
    assert creds.sections() == ["default"]
    key = creds["default"]["aws_access_key_id"]
    secret = creds["default"]["aws_secret_access_key"]
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key), key
    assert len(secret) == 40, secret
    assert creds["default"]["region"] == "us-east-1"

    ep = parse_kv((d / "endpoints").read_text(), "=")
    assert ep["api_http"] == "http://127.0.0.1:24100"
    assert ep["api_https"] == "https://127.0.0.1:24101"
    assert ep["admin"].endswith(":24102")
    assert ep["smtp_starttls"] == "127.0.0.1:24187"
    assert ep["smtp_tls"] == "127.0.0.1:24165"
    assert ep["feedback_smtp"] == "127.0.0.1:24125"
    assert ep["smtp_username"] == key
    assert ep["smtp_password"] == smtp_password_v4(secret, "us-east-1")
    assert re.fullmatch(r"[0-9a-f]{64}", ep["admin_token"]), ep["admin_token"]

    # What init prints: the key, its secret and the SMTP passwords of every region.
    out = parse_kv(res.stdout)
    assert out["access_key_id"] == key
    assert out["secret_access_key"] == secret
    assert out["smtp_password_v2"] == smtp_password_v2(secret)
    assert out["smtp_password_v4 (eu-west-1)"] == smtp_password_v4(secret, "eu-west-1")

    # The certificate is a loadable PEM certificate for localhost and 127.0.0.1.
    cert = ssl._ssl._test_decode_cert(str(d / "tls" / "cert.pem"))
    sans = cert.get("subjectAltName", ())
    assert ("IP Address", "127.0.0.1") in sans, sans
    assert ("DNS", "localhost") in sans, sans
    ssl.create_default_context(cafile=str(d / "tls" / "cert.pem"))


def test_init_refuses_an_existing_instance(tmp_path):
    d = tmp_path / "inst"
    assert run_sesame(None, "init", "--dir", d, "--port-base", "24200").returncode == 0
    before = {p.name: p.read_bytes() for p in (d / "sesame.conf", d / "credentials",
                                               d / "endpoints")}
    res = run_sesame(None, "init", "--dir", d, "--port-base", "24300")
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "sesame.conf" in res.stderr
    after = {p.name: p.read_bytes() for p in (d / "sesame.conf", d / "credentials",
                                              d / "endpoints")}
    assert before == after


def test_init_options_auto_verify_and_production(tmp_path):
    d = tmp_path / "inst"
    res = run_sesame(None, "init", "--dir", d, "--port-base", "24400", "--auto-verify",
                     "--production", "--region", "eu-west-1", "--region", "us-west-2")
    assert res.returncode == 0, res.stderr
    conf = configparser.ConfigParser()
    conf.read(d / "sesame.conf")
    assert conf["verification"]["auto_verify"] == "true"
    creds = configparser.ConfigParser()
    creds.read(d / "credentials")
    assert creds["default"]["region"] == "eu-west-1"  # the first --region is the default
    show = run_sesame(d / "sesame.conf", "account", "show")
    assert show.returncode == 0, show.stderr
    assert "region eu-west-1: production, quota 10000 per 24h, rate 5/s" in show.stdout
    assert "region us-west-2: production, quota 10000 per 24h, rate 5/s" in show.stdout


@pytest.mark.parametrize("bad", [
    ["--port-base", "70000"],
    ["--port-base", "abc"],
    ["--mode", "teleport"],
])
def test_init_rejects_bad_values(tmp_path, bad):
    d = tmp_path / "inst"
    res = run_sesame(None, "init", "--dir", d, *bad)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert not (d / "sesame.conf").exists()


# ---- help and usage ----

SUBCOMMANDS = [
    ["init"],
    ["account", "create"], ["account", "list"], ["account", "show"], ["account", "set"],
    ["key", "create"], ["key", "list"], ["key", "revoke"],
    ["user", "create"], ["user", "list"], ["user", "delete"],
    ["policy", "put"], ["policy", "get"], ["policy", "list"], ["policy", "delete"],
    ["identity", "list"], ["identity", "show"], ["identity", "verify"], ["identity", "delete"],
    ["dkim-zone"],
]


def test_help_everywhere(tmp_path):
    res = run_sesame(None, "--help")
    assert res.returncode == 0, res.stderr
    assert "usage: sesame" in res.stdout
    for sub in SUBCOMMANDS:
        assert " ".join(sub) in res.stdout, sub  # the top-level help lists every verb
    for group in ("account", "key", "user", "policy", "identity"):
        res = run_sesame(tmp_path / "none.conf", group, "--help")
        assert res.returncode == 0, (group, res.stderr)
        assert res.stdout.startswith("sesame " + group), res.stdout
    for sub in SUBCOMMANDS:
        # --help works without an instance: it must not need the config.
        res = run_sesame(tmp_path / "none.conf", *sub, "--help")
        assert res.returncode == 0, (sub, res.stderr)
        assert res.stdout.startswith("usage: " + " ".join(sub)), (sub, res.stdout)
    res = subprocess.run([str(SESAMED), "-h"], capture_output=True, text=True, env=base_env())
    assert res.returncode == 0 and "usage: sesamed" in res.stdout, res


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["account"],
    ["account", "frobnicate"],
    ["account", "set", "--bogus"],
    ["account", "list", "--region"],
    ["key", "revoke"],
    ["identity", "verify", "someone@example.com"],  # without --force
    ["identity", "show"],
    ["user", "create"],  # without a name
    ["user", "delete", "a", "b"],
    ["user", "list", "extra"],
    ["policy", "put", "alice"],  # without a policy name
    ["policy", "list"],
    ["key", "create", "--user"],
    ["init"],  # without --dir
    ["--no-such-global"],
])
def test_usage_errors_exit_2(inst, args):
    res = run_sesame(inst.conf, *args)
    assert res.returncode == 2, (args, res.stdout, res.stderr)
    assert res.stderr.strip() and not res.stdout.strip(), (res.stdout, res.stderr)


def test_sesamed_usage_errors(tmp_path):
    res = subprocess.run([str(SESAMED)], capture_output=True, text=True, env=base_env())
    assert res.returncode == 2 and "usage" in res.stderr, res
    res = subprocess.run([str(SESAMED), "-c", str(tmp_path / "missing.conf")],
                         capture_output=True, text=True, env=base_env())
    assert res.returncode == 2 and "missing.conf" in res.stderr, res


def test_failures_exit_1(inst):
    assert inst.sesame("account", "set", "--suspended", "maybe", expect=1).stderr
    assert inst.sesame("account", "set", "--quota", "lots", expect=1).stderr
    assert inst.sesame("account", "set", "--contact", "not-an-address", expect=1).stderr
    assert inst.sesame("account", "set", "--sandbox", "--production", expect=1).stderr
    assert inst.sesame("account", "set", "--region", "ap-south-1", "--production", expect=1).stderr
    assert inst.sesame("account", "show", "999999999999", expect=1).stderr
    assert inst.sesame("key", "revoke", "AKIANOSUCHKEY0000000", expect=1).stderr
    assert inst.sesame("identity", "show", "nobody@example.com", expect=1).stderr
    assert inst.sesame("identity", "verify", "--force", "not an address@", expect=1).stderr
    # None of it changed the account.
    show = inst.sesame("account", "show").stdout
    assert "suspended: false" in show and "contact: \n" in show
    assert "region us-east-1: sandbox, quota 200 per 24h, rate 1/s" in show


# ---- accounts ----


def quota(client):
    r = client.get_send_quota()
    return r["Max24HourSend"], r["MaxSendRate"]


def test_account_list_show_set(inst):
    acct = inst.account_id()
    assert re.fullmatch(r"[1-9][0-9]{11}", acct), acct
    lines = inst.sesame("account", "list").stdout.splitlines()
    assert any(l.split("\t")[0] == acct for l in lines), lines

    show = inst.sesame("account", "show", acct).stdout
    assert parse_kv(show)["name"] == "default"
    assert "key: %s Active" % inst.key in show
    for r in REGIONS:
        assert "region %s: sandbox, quota 200 per 24h, rate 1/s" % r in show

    out = inst.sesame("account", "set", acct, "--production", "--contact", "ops@example.com").stdout
    assert parse_kv(out)["contact"] == "ops@example.com"
    # The API sees admin changes within api.cache_ttl.
    for r in REGIONS:
        assert "region %s: production, quota 10000 per 24h, rate 5/s" % r in out
        c = inst.client(r)
        eventually_equal(lambda: quota(c), (10000.0, 5.0))

    inst.sesame("account", "set", "--quota", "50000", "--rate", "14", "--region", "eu-west-1")
    eu, us = inst.client("eu-west-1"), inst.client("us-east-1")
    eventually_equal(lambda: quota(eu), (50000.0, 14.0))
    assert quota(us) == (10000.0, 5.0)

    out = inst.sesame("account", "set", acct, "--sandbox", "--contact", "").stdout
    assert parse_kv(out)["contact"] == ""
    eventually_equal(lambda: quota(eu), (200.0, 1.0))
    eventually_equal(lambda: quota(us), (200.0, 1.0))


def test_account_create_is_a_separate_namespace(inst):
    before = inst.sesame("account", "list").stdout.splitlines()
    acct, key, secret = inst.new_account("second")
    after = inst.sesame("account", "list").stdout.splitlines()
    assert len(after) == len(before) + 1
    assert any(l.split("\t")[:2] == [acct, "second"] for l in after), after

    other = inst.client("us-east-1", key=key, secret=secret)
    assert quota(other) == (200.0, 1.0)
    other.verify_email_identity(EmailAddress="second@example.com")
    assert other.list_identities()["Identities"] == ["second@example.com"]
    assert "second@example.com" not in inst.client().list_identities()["Identities"]
    # The admin command picks the account with --account.
    listed = inst.sesame("identity", "list", "--account", acct).stdout
    assert listed.splitlines() == ["second@example.com\tEmailAddress\tPending"], listed


# ---- keys ----


def test_key_create_list_revoke(inst):
    out = inst.sesame("key", "create").stdout
    k = parse_kv(out)
    new_key, new_secret = k["access_key_id"], k["secret_access_key"]
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", new_key)
    assert new_key != inst.key
    assert k["account"] == inst.account_id()
    assert k["smtp_username"] == new_key
    assert k["smtp_password_v2"] == smtp_password_v2(new_secret)
    for r in REGIONS:
        assert k["smtp_password_v4 (%s)" % r] == smtp_password_v4(new_secret, r)

    listed = inst.sesame("key", "list").stdout
    assert "key: %s Active" % inst.key in listed
    assert "key: %s Active" % new_key in listed

    c = inst.client("eu-west-1", key=new_key, secret=new_secret)
    assert c.get_send_quota()["Max24HourSend"] > 0
    creds = inst.dir / "credentials-new"
    creds.write_text("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                     "region = us-east-1\n" % (new_key, new_secret))

    res = inst.sesame("key", "revoke", new_key)
    assert res.stdout.strip() == "revoked: %s" % new_key
    assert "key: %s Inactive" % new_key in inst.sesame("key", "list").stdout

    # Refused once the API threads' caches have let the key go (api.cache_ttl).
    eventually_equal(lambda: error_code(c.get_send_quota), "InvalidClientTokenId")
    inst.settle()
    with pytest.raises(ClientError) as e:
        c.get_send_quota()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    reply = inst.call("VerifyEmailIdentity", key=new_key, secret=new_secret,
                      EmailAddress="revoked@example.com")
    assert_error(reply, 403, "InvalidClientTokenId")
    rc, err = inst.aws("get-send-quota", credentials=creds, expect_ok=False)
    assert rc != 0 and "InvalidClientTokenId" in err, err
    # Nothing was done with the revoked key; the other key still works.
    assert "revoked@example.com" not in inst.identities()
    assert inst.client().get_send_quota()["Max24HourSend"] > 0


# ---- identities through the admin command ----


def test_identity_admin_verbs(inst):
    res = inst.sesame("identity", "verify", "--force", "Admin.Example.ORG", "--region", "eu-west-1")
    assert res.stdout.startswith("verified: admin.example.org (eu-west-1")
    eu, us = inst.client("eu-west-1"), inst.client("us-east-1")
    attrs = eu.get_identity_verification_attributes(Identities=["admin.example.org"])
    entry = attrs["VerificationAttributes"]["admin.example.org"]
    assert entry["VerificationStatus"] == "Success"
    assert "admin.example.org" not in us.list_identities()["Identities"]

    show = parse_kv(inst.sesame("identity", "show", "admin.example.org", "--region",
                                "eu-west-1").stdout)
    assert show["type"] == "Domain" and show["status"] == "Success"
    assert show["region"] == "eu-west-1"
    assert show["txt_record"] == '_amazonses.admin.example.org TXT "%s"' % \
        entry["VerificationToken"]

    listed = inst.sesame("identity", "list", "--region", "eu-west-1").stdout
    assert "admin.example.org\tDomain\tSuccess" in listed.splitlines()

    # verify --force on a pending email identity marks it verified.
    us.verify_email_identity(EmailAddress="Forced@Example.com")
    assert inst.status("Forced@Example.com") == "Pending"
    inst.sesame("identity", "verify", "--force", "Forced@Example.com")
    assert inst.status("Forced@Example.com") == "Success"
    assert "Forced@Example.com" in us.list_verified_email_addresses()["VerifiedEmailAddresses"]

    res = inst.sesame("identity", "delete", "admin.example.org", "--region", "eu-west-1")
    assert res.stdout.startswith("deleted: admin.example.org")
    assert "admin.example.org" not in eu.list_identities()["Identities"]
    inst.sesame("identity", "delete", "admin.example.org", "--region", "eu-west-1", expect=1)


# ---- users, their keys and their policies ----

ALLOW_ALL = ('{"Version": "2012-10-17", "Statement": '
             '[{"Effect": "Allow", "Action": "ses:*", "Resource": "*"}]}')


def sesame_stdin(inst, *args, stdin="", expect=0):
    """`sesame -c CONF ARGS` with stdin fed to it (run_sesame has no stdin)."""
    res = subprocess.run([str(SESAME), "-c", str(inst.conf), *map(str, args)], input=stdin,
                         capture_output=True, text=True, env=base_env(), timeout=60)
    assert_sanitizer_clean(res.stderr, "sesame " + " ".join(map(str, args)))
    assert res.returncode == expect, (args, res.returncode, res.stdout, res.stderr)
    return res


def test_user_verbs(inst):
    acct = inst.account_id()
    out = parse_kv(inst.sesame("user", "create", "alice").stdout)
    assert out == {"user": "alice", "account": acct,
                   "arn": "arn:aws:iam::%s:user/alice" % acct}
    inst.sesame("user", "create", "svc+mail=1,v.2@corp_-", "--account", acct)
    assert "already exists" in inst.sesame("user", "create", "alice", expect=1).stderr
    for bad in ("has space", "x" * 65, "slash/y", ""):
        assert "invalid user name" in inst.sesame("user", "create", bad, expect=1).stderr
    lines = inst.sesame("user", "list").stdout.splitlines()
    names = [l.split("\t")[0] for l in lines]
    assert "alice" in names and "svc+mail=1,v.2@corp_-" in names, lines
    assert "alice\tarn:aws:iam::%s:user/alice\t" % acct in inst.sesame("user", "list").stdout
    # Another account has its own users.
    other, _, _ = inst.new_account("users-elsewhere")
    assert inst.sesame("user", "list", "--account", other).stdout == ""
    inst.sesame("user", "delete", "alice", "--account", other, expect=1)
    inst.sesame("user", "delete", "svc+mail=1,v.2@corp_-")


def test_user_keys_limit_of_two(inst):
    inst.sesame("user", "create", "rotating")
    first = parse_kv(inst.sesame("key", "create", "--user", "rotating").stdout)
    assert first["user"] == "rotating" and first["account"] == inst.account_id()
    second = parse_kv(inst.sesame("key", "create", "--user", "rotating").stdout)
    res = inst.sesame("key", "create", "--user", "rotating", expect=1)
    assert res.stderr.strip() == \
        "sesame: user rotating already has 2 active access keys (the limit)"
    assert not res.stdout
    listed = inst.sesame("key", "list").stdout
    for k in (first, second):
        assert "key: %s Active user=rotating" % k["access_key_id"] in listed
    assert "key: %s Active\n" % inst.key in listed  # the root key has no user
    # A revoked key leaves room for the next one.
    inst.sesame("key", "revoke", first["access_key_id"])
    inst.sesame("key", "create", "--user", "rotating")
    assert "no user nobody" in inst.sesame("key", "create", "--user", "nobody", expect=1).stderr
    assert "invalid user name" in inst.sesame("key", "create", "--user", "", expect=1).stderr
    # The root key's creation is unchanged.
    assert "user" not in parse_kv(inst.sesame("key", "create").stdout)


def test_policy_verbs(inst, tmp_path):
    inst.sesame("user", "create", "writer")
    doc = tmp_path / "policy.json"
    doc.write_text(ALLOW_ALL)
    out = inst.sesame("policy", "put", "writer", "from-file", "--file", doc).stdout
    assert out.startswith("stored: policy from-file of user writer")
    sesame_stdin(inst, "policy", "put", "writer", "from-stdin", stdin=ALLOW_ALL)
    sesame_stdin(inst, "policy", "put", "writer", "from-dash", "--file", "-", stdin=ALLOW_ALL)
    assert inst.sesame("policy", "list", "writer").stdout.splitlines() == [
        "from-dash", "from-file", "from-stdin"]
    assert inst.sesame("policy", "get", "writer", "from-stdin").stdout == ALLOW_ALL + "\n"

    # Invalid: the parser's line and column, exit 1, nothing stored.
    bad = '{\n  "Version": "2012-10-17",\n  "Statement": {"Effect": "Allow", "Action": 7}\n}'
    res = sesame_stdin(inst, "policy", "put", "writer", "broken", stdin=bad, expect=1)
    assert re.match(r"sesame: line 3, column \d+: ", res.stderr), res.stderr
    assert not res.stdout
    res = sesame_stdin(inst, "policy", "put", "writer", "from-file", stdin="{", expect=1)
    assert re.match(r"sesame: line \d+, column \d+: ", res.stderr), res.stderr
    res = sesame_stdin(inst, "policy", "put", "writer", "huge",
                       stdin=ALLOW_ALL[:-1] + ', "x": "' + "y" * 70000 + '"}', expect=1)
    assert "65536" in res.stderr, res.stderr
    assert inst.sesame("policy", "get", "writer", "from-file").stdout == ALLOW_ALL + "\n"
    assert "invalid policy name" in sesame_stdin(inst, "policy", "put", "writer", "bad name",
                                                 stdin=ALLOW_ALL, expect=1).stderr
    assert "no user ghost" in sesame_stdin(inst, "policy", "put", "ghost", "p",
                                           stdin=ALLOW_ALL, expect=1).stderr
    inst.sesame("policy", "put", "writer", "p", "--file", tmp_path / "missing.json", expect=1)
    assert inst.sesame("policy", "list", "writer").stdout.splitlines() == [
        "from-dash", "from-file", "from-stdin"]

    out = inst.sesame("policy", "delete", "writer", "from-dash").stdout
    assert out.startswith("deleted: policy from-dash of user writer")
    inst.sesame("policy", "delete", "writer", "from-dash", expect=1)
    inst.sesame("policy", "get", "writer", "from-dash", expect=1)
    inst.sesame("policy", "list", "ghost", expect=1)

    # The user's key works with a policy that allows everything.
    k = parse_kv(inst.sesame("key", "create", "--user", "writer").stdout)
    c = inst.client(key=k["access_key_id"], secret=k["secret_access_key"])
    eventually_equal(lambda: error_code(c.get_send_quota), None)


def test_user_delete_removes_keys_and_policies(inst):
    inst.sesame("user", "create", "leaving")
    k = parse_kv(inst.sesame("key", "create", "--user", "leaving").stdout)
    sesame_stdin(inst, "policy", "put", "leaving", "all", stdin=ALLOW_ALL)
    c = inst.client(key=k["access_key_id"], secret=k["secret_access_key"])
    eventually_equal(lambda: error_code(c.get_send_quota), None)

    out = inst.sesame("user", "delete", "leaving").stdout
    assert out.strip() == "deleted: user leaving (account %s), with its 1 access key and " \
        "1 policy" % inst.account_id()
    assert k["access_key_id"] not in inst.sesame("key", "list").stdout
    assert "leaving" not in [l.split("\t")[0] for l in
                             inst.sesame("user", "list").stdout.splitlines()]
    inst.sesame("policy", "list", "leaving", expect=1)
    inst.sesame("user", "delete", "leaving", expect=1)
    eventually_equal(lambda: error_code(c.get_send_quota), "InvalidClientTokenId")
    # Created again, the name starts with nothing.
    inst.sesame("user", "create", "leaving")
    assert inst.sesame("policy", "list", "leaving").stdout == ""
