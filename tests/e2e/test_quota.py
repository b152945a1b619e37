"""GetSendQuota and GetSendStatistics, the sandbox/production switch, account states and
the throttle on non-send actions."""
import time

import pytest
from botocore.exceptions import ClientError

from conftest import assert_error, assert_ok, error_code, eventually_equal, parse_kv

REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture(scope="module")
def inst(module_instance):
    return module_instance(regions=REGIONS)


def quota(client):
    r = client.get_send_quota()
    return r["Max24HourSend"], r["MaxSendRate"], r["SentLast24Hours"]


def test_get_send_quota_shape(inst):
    assert inst.aws("get-send-quota", region="eu-west-1") == {
        "Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0}
    for region in REGIONS:
        assert quota(inst.client(region)) == (200.0, 1.0, 0.0)
        reply = assert_ok(inst.call("GetSendQuota", region=region), "GetSendQuota")
        # Doubles are written as SES writes them.
        assert reply.find("GetSendQuotaResult/Max24HourSend") == "200.0"
        assert reply.find("GetSendQuotaResult/MaxSendRate") == "1.0"
        assert reply.find("GetSendQuotaResult/SentLast24Hours") == "0.0"


def test_get_send_statistics_shape(inst):
    assert inst.aws("get-send-statistics") == {"SendDataPoints": []}
    for region in REGIONS:
        got = inst.client(region).get_send_statistics()
        assert got["SendDataPoints"] == []
        reply = assert_ok(inst.call("GetSendStatistics", region=region), "GetSendStatistics")
        assert reply.find("GetSendStatisticsResult/SendDataPoints") == ""


def test_production_and_sandbox(inst):
    # The API sees admin changes within api.cache_ttl: each check waits for that.
    us, eu = inst.client("us-east-1"), inst.client("eu-west-1")
    inst.sesame("account", "set", "--production")
    eventually_equal(lambda: quota(us), (10000.0, 5.0, 0.0))
    eventually_equal(lambda: quota(eu), (10000.0, 5.0, 0.0))

    # One region only.
    out = inst.sesame("account", "set", "--sandbox", "--region", "us-east-1").stdout
    assert "region eu-west-1: production" in out and "region us-east-1: sandbox" in out
    eventually_equal(lambda: quota(us), (200.0, 1.0, 0.0))
    assert quota(eu) == (10000.0, 5.0, 0.0)

    # Explicit values, printed as SES prints doubles.
    inst.sesame("account", "set", "--quota", "123456", "--rate", "0.5", "--region", "us-east-1")

    def limits():
        reply = assert_ok(inst.call("GetSendQuota", region="us-east-1"), "GetSendQuota")
        return (reply.find("GetSendQuotaResult/Max24HourSend"),
                reply.find("GetSendQuotaResult/MaxSendRate"))

    eventually_equal(limits, ("123456.0", "0.5"))
    assert quota(eu) == (10000.0, 5.0, 0.0)

    # Moving between sandbox and production sets that mode's limits.
    inst.sesame("account", "set", "--production")
    eventually_equal(lambda: quota(us), (10000.0, 5.0, 0.0))
    inst.sesame("account", "set", "--sandbox")
    eventually_equal(lambda: quota(us), (200.0, 1.0, 0.0))
    eventually_equal(lambda: quota(eu), (200.0, 1.0, 0.0))


def test_disabled_account_is_refused(inst):
    c = inst.client()
    inst.sesame("account", "set", "--disabled", "true")
    assert parse_kv(inst.sesame("account", "show").stdout)["disabled"] == "true"
    try:
        for region in REGIONS:
            r = inst.client(region)
            eventually_equal(lambda: error_code(r.get_send_quota), "OptInRequired")
        inst.settle()  # now every API thread knows
        for region in REGIONS:
            with pytest.raises(ClientError) as e:
                inst.client(region).list_identities()
            assert e.value.response["Error"]["Code"] == "OptInRequired"
            assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        reply = inst.call("VerifyEmailIdentity", EmailAddress="while-disabled@example.com")
        assert_error(reply, 403, "OptInRequired")
        rc, err = inst.aws("list-identities", expect_ok=False)
        assert "OptInRequired" in err, err
        # Another account is not affected.
        _, key, secret = inst.new_account("still-enabled")
        assert quota(inst.client(key=key, secret=secret))[0] == 200.0
    finally:
        inst.sesame("account", "set", "--disabled", "false")
    eventually_equal(lambda: error_code(c.get_send_quota), None)
    inst.settle()
    assert quota(c) == (200.0, 1.0, 0.0)
    assert "while-disabled@example.com" not in c.list_identities()["Identities"]


def test_suspended_account_can_still_administer(inst):
    inst.sesame("account", "set", "--suspended", "true")
    try:
        assert parse_kv(inst.sesame("account", "show").stdout)["suspended"] == "true"
        inst.settle()
        c = inst.client()
        assert quota(c)[0] == 200.0
        c.verify_email_identity(EmailAddress="while-suspended@example.com")
        assert "while-suspended@example.com" in c.list_identities()["Identities"]
    finally:
        inst.sesame("account", "set", "--suspended", "false")


def test_new_accounts_start_in_the_sandbox(instance):
    inst = instance(regions=REGIONS, production=True)
    for region in REGIONS:
        assert quota(inst.client(region)) == (10000.0, 5.0, 0.0)
    _, key, secret = inst.new_account("newcomer")
    for region in REGIONS:
        assert quota(inst.client(region, key=key, secret=secret)) == (200.0, 1.0, 0.0)


def test_non_send_throttle(instance):
    inst = instance(regions=REGIONS, extra="[api]\nnon_send_rate = 1\nnon_send_burst = 2")
    _, key2, secret2 = inst.new_account("neighbour")
    c = inst.client()
    assert_ok(inst.call("ListIdentities"), "ListIdentities")
    assert_ok(inst.call("GetSendQuota"), "GetSendQuota")
    reply = inst.call("GetSendQuota")
    assert_error(reply, 400, "Throttling", "Rate exceeded")
    with pytest.raises(ClientError) as e:
        c.list_identities()
    assert e.value.response["Error"]["Code"] == "Throttling"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The bucket is the account's, across regions ...
    assert_error(inst.call("ListIdentities", region="eu-west-1"), 400, "Throttling")
    # ... and another account has its own.
    assert_ok(inst.call("GetSendQuota", key=key2, secret=secret2), "GetSendQuota")
    assert_ok(inst.call("GetSendQuota", key=key2, secret=secret2), "GetSendQuota")
    # A throttled write did nothing.
    assert_error(inst.call("VerifyEmailIdentity", EmailAddress="throttled@example.com"), 400,
                 "Throttling")
    # One request a second comes back.
    time.sleep(1.2)
    assert_ok(inst.call("ListIdentities"), "ListIdentities")
    time.sleep(1.1)
    assert "throttled@example.com" not in c.list_identities()["Identities"]
