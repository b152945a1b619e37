"""The config file: a bad key or value stops sesamed with exit 2 and names the file, line and
key; appended keys take effect; the generated certificate serves HTTPS to real clients."""
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, SSLError

from conftest import SESAMED, assert_ok, base_env, run_sesame


@pytest.fixture(scope="module")
def conf(module_instance):
    """A config written by `sesame init`, never started."""
    return module_instance(start=False).conf


def run_sesamed(path):
    return subprocess.run([str(SESAMED), "-c", str(path)], capture_output=True, text=True,
                          env=base_env(), timeout=60)


def with_lines(conf, tmp_path, text):
    """A copy of conf with text appended; returns (path, line number of its last line)."""
    path = tmp_path / "sesame.conf"
    shutil.copy(conf, path)
    base = path.read_text()
    if not base.endswith("\n"):
        base += "\n"
    path.write_text(base + text.strip() + "\n")
    return path, len((base + text.strip()).splitlines())


@pytest.mark.parametrize("text,key", [
    ("[api]\nno_such_key = 1", "no_such_key"),
    ("[nosuchsection]\nenabled = true", "enabled"),
    ("[verification]\npoll_interval = soon", "verification.poll_interval"),
    ("[verification]\nfailure_window = -5s", "verification.failure_window"),
    ("[verification]\nauto_verify = maybe", "verification.auto_verify"),
    ("[api]\nnon_send_rate = fast", "api.non_send_rate"),
    ("[api]\nnon_send_burst = 0", "api.non_send_burst"),
    ("[api]\nmax_identities = 0", "api.max_identities"),
    ("[api]\nmax_body_bytes = 12", "api.max_body_bytes"),
    ("[regions]\nnames = us-east-1, US_EAST_1", "regions.names"),
    ("[server]\nthreads = many", "server.threads"),
])
def test_bad_key_or_value_exits_2(conf, tmp_path, text, key):
    path, line = with_lines(conf, tmp_path, text)
    res = run_sesamed(path)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "%s:%d:" % (path, line) in res.stderr, res.stderr
    assert key in res.stderr, res.stderr
    assert "sesamed ready" not in res.stderr
    # The admin command refuses the same file.
    adm = run_sesame(path, "account", "list")
    assert adm.returncode == 1 and key in adm.stderr, adm


def test_bad_line_in_the_middle_is_named(conf, tmp_path):
    path = tmp_path / "sesame.conf"
    lines = conf.read_text().splitlines()
    at = lines.index("[verification]") + 1
    lines.insert(at, "poll_intervall = 1s")
    path.write_text("\n".join(lines) + "\n")
    res = run_sesamed(path)
    assert res.returncode == 2, res.stderr
    assert "%s:%d:" % (path, at + 1) in res.stderr and "poll_intervall" in res.stderr, res.stderr


@pytest.mark.parametrize("text", [
    "[api]\nhttp_listen = nowhere",
    "[dns]\nresolver = 127.0.0.1",
    "[delivery]\nmode = teleport",
    "[store]\nbackend = cassandra",
])
def test_invalid_setting_exits_2(conf, tmp_path, text):
    path, _ = with_lines(conf, tmp_path, text)
    res = run_sesamed(path)
    assert res.returncode == 2, (res.returncode, res.stderr)
    key = text.split("\n")[1].split("=")[0].strip()
    assert str(path) in res.stderr and key in res.stderr, res.stderr


def test_appended_keys_take_effect(instance):
    inst = instance(extra="[api]\nmax_identities = 1\n\n[accounts]\nsandbox_max_24h = 50\n"
                          "sandbox_max_rate = 2.5")
    # Limits are stored with an account when it is created: a new account gets these.
    _, key, secret = inst.new_account("after-config")
    q = inst.client(key=key, secret=secret).get_send_quota()
    assert (q["Max24HourSend"], q["MaxSendRate"]) == (50.0, 2.5)
    c = inst.client()
    c.verify_email_identity(EmailAddress="only@example.com")
    with pytest.raises(ClientError) as e:
        c.verify_email_identity(EmailAddress="second@example.com")
    assert e.value.response["Error"]["Code"] == "LimitExceeded"


def test_https_with_the_generated_certificate(instance):
    inst = instance(regions=("us-east-1", "eu-west-1"))
    for region in ("us-east-1", "eu-west-1"):
        c = inst.client(region, https=True)  # verify=DIR/tls/cert.pem
        c.verify_email_identity(EmailAddress="tls-%s@example.com" % region)
        assert c.list_identities()["Identities"] == ["tls-%s@example.com" % region]
        assert c.get_send_quota()["Max24HourSend"] == 200.0
    assert inst.aws("list-identities", https=True) == {"Identities": ["tls-us-east-1@example.com"]}
    reply = assert_ok(inst.raw(body={"Action": "GetSendQuota"}, https=True), "GetSendQuota")
    assert reply.find("GetSendQuotaResult/Max24HourSend") == "200.0"

    # The certificate is really checked: without it the default trust store refuses.
    untrusted = boto3.session.Session().client(
        "ses", region_name="us-east-1", endpoint_url=inst.https_url,
        aws_access_key_id=inst.key, aws_secret_access_key=inst.secret,
        config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(SSLError):
        untrusted.get_send_quota()
    with pytest.raises(urllib.error.URLError) as e:
        urllib.request.urlopen(inst.https_url + "/", timeout=10)
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError), e.value
    # And the server presents the certificate in DIR/tls/cert.pem.
    pem = ssl.get_server_certificate(("127.0.0.1", inst.port_base + 1))
    assert ssl.PEM_cert_to_DER_cert(pem) == ssl.PEM_cert_to_DER_cert(inst.cert.read_text())
