"""SNS-compatible topics (DECISIONS 28) through the AWS CLI v2 (`aws sns ...`), boto3 and
hand-built requests: every topic and subscription action, SNS's error codes and XML
shapes, the service scope (sns vs ses), paging, and the unsigned SubscribeURL /
UnsubscribeURL GETs that an HTTP subscriber follows.

The helpers at the top (sns_cli, sns_client, Subscriber) are used by test_notify_api.py
too."""
import email
import email.policy
import http.server
import json
import queue
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from conftest import (
    assert_error, http_send, parse_kv, sign_request, url_get, wait_until,
)
from sendlib import capture_get, client_error

SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"
SES_NS = "http://ses.amazonaws.com/doc/2010-12-01/"
CONFIG = "[api]\ncache_ttl = 0\nnon_send_rate = 0\n[delivery]\nmode = capture\n"
_CLI_ERROR = re.compile(
    r"An error occurred \((\w+)\) when calling the (\w+) operation(?: \([^)]*\))?: (.*)")


# ---- helpers (also used by test_notify_api.py) ----


def sns_cli(inst, *args, region=None, credentials=None, expect_ok=True):
    """`aws sns ARGS` against inst: parsed JSON (None for an empty reply), or with
    expect_ok=False the (code, message) of the error."""
    got = inst.aws(*args, region=region, credentials=credentials, expect_ok=expect_ok,
                   service="sns")
    if expect_ok:
        return got
    m = _CLI_ERROR.search(got[1])
    assert m, got[1]
    return m.group(1), m.group(3).strip()


def sns_client(inst, region=None, key=None, secret=None):
    return inst.client(region=region, key=key, secret=secret, service="sns")


def topic_arn(inst, name, region=None, account=None):
    return "arn:aws:sns:%s:%s:%s" % (region or inst.default_region,
                                     account or inst.account_id(), name)


class Subscriber:
    """An HTTP endpoint on loopback that records what the notifier POSTs: (headers, JSON)
    pairs in a queue. The URL is http://127.0.0.1:<port>/<path>."""

    def __init__(self):
        received = self.received = queue.Queue()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.put((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.server.server_address[1], path)

    def next(self, kind, timeout=20):
        """The next POSTed message of Type kind (others before it are dropped)."""
        def find():
            try:
                headers, msg = self.received.get(timeout=0.2)
            except queue.Empty:
                return None
            if msg.get("Type") == kind:
                assert headers.get("x-amz-sns-message-type") == kind, headers
                return msg
            return None
        return wait_until(find, timeout, interval=0, what="an SNS %s POST" % kind)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def confirm_http(inst, sns, arn, subscriber):
    """Subscribes subscriber to arn and confirms it by opening the SubscribeURL unsigned,
    as a subscriber does; returns the subscription ARN."""
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=subscriber.url())
    msg = subscriber.next("SubscriptionConfirmation")
    assert msg["TopicArn"] == arn, msg
    status, body = url_get(msg["SubscribeURL"], cafile=inst.cert)
    assert status == 200, body
    root = ET.fromstring(body)
    assert root.tag == "{%s}ConfirmSubscriptionResponse" % SNS_NS, body
    return root.find("{%s}ConfirmSubscriptionResult/{%s}SubscriptionArn" % (SNS_NS, SNS_NS)).text


def sns_find(reply, path):
    el = reply.xml.find("/".join("{%s}%s" % (SNS_NS, p) for p in path.split("/")))
    return None if el is None else (el.text or "")


# ---- fixtures ----


@pytest.fixture(scope="module")
def inst(module_instance):
    return module_instance(regions=("us-east-1", "eu-west-1"), extra=CONFIG)


@pytest.fixture(scope="module")
def sns(inst):
    return sns_client(inst)


@pytest.fixture
def subscriber():
    s = Subscriber()
    yield s
    s.close()


# ---- topics ----


def test_every_action_through_the_cli(inst):
    """One `aws sns` call per action (the CLI takes a second or more to start)."""
    arn = sns_cli(inst, "create-topic", "--name", "cli-topic",
                  "--attributes", "DisplayName=Bounces")["TopicArn"]
    assert arn == topic_arn(inst, "cli-topic")
    assert {"TopicArn": arn} in sns_cli(inst, "list-topics")["Topics"]
    sub = sns_cli(inst, "subscribe", "--topic-arn", arn, "--protocol", "email",
                  "--notification-endpoint", "ops@example.com",
                  "--return-subscription-arn")["SubscriptionArn"]
    assert re.fullmatch(re.escape(arn) + r":[0-9a-f-]{36}", sub), sub
    attrs = sns_cli(inst, "get-topic-attributes", "--topic-arn", arn)["Attributes"]
    assert attrs["TopicArn"] == arn
    assert attrs["Owner"] == inst.account_id()
    assert attrs["DisplayName"] == "Bounces"
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsPending"],
            attrs["SubscriptionsDeleted"]) == ("0", "1", "0")
    assert json.loads(attrs["Policy"])["Statement"][0]["Resource"] == arn
    assert "http" in json.loads(attrs["EffectiveDeliveryPolicy"])
    want = {"TopicArn": arn, "Protocol": "email", "SubscriptionArn": "PendingConfirmation",
            "Owner": inst.account_id(), "Endpoint": "ops@example.com"}
    listed = sns_cli(inst, "list-subscriptions-by-topic", "--topic-arn", arn)["Subscriptions"]
    assert listed == [want]
    # the token comes by email: the link in the captured confirmation
    link = confirmation_link(inst, "ops@example.com")
    token = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))["Token"]
    assert len(token) >= 64 and re.fullmatch(r"[0-9a-f]+", token), token
    got = sns_cli(inst, "confirm-subscription", "--topic-arn", arn, "--token", token)
    assert got == {"SubscriptionArn": sub}
    want["SubscriptionArn"] = sub
    assert want in sns_cli(inst, "list-subscriptions")["Subscriptions"]
    assert sns_cli(inst, "unsubscribe", "--subscription-arn", sub) is None
    assert sns_cli(inst, "delete-topic", "--topic-arn", arn) is None
    sns = sns_client(inst)
    assert {"TopicArn": arn} not in sns.list_topics()["Topics"]
    assert client_error(sns.get_topic_attributes, TopicArn=arn) == (
        404, "NotFound", "Topic does not exist")


def confirmation_link(inst, address):
    """The SubscribeURL in the confirmation email captured for address."""
    def find():
        for m in capture_get(inst):
            msg = email.message_from_string(m.get("RawData", ""), policy=email.policy.default)
            if msg["To"] != address or "Subscription Confirmation" not in msg["Subject"]:
                continue
            found = re.search(r"https?://\S*Action=ConfirmSubscription\S*", msg.get_content())
            if found:
                return found.group(0)
        return None
    return wait_until(find, 15, what="the confirmation email to %s" % address)


def test_create_topic_is_idempotent(inst, sns):
    arn = sns.create_topic(Name="same", Attributes={"DisplayName": "Same"})["TopicArn"]
    assert sns.create_topic(Name="same")["TopicArn"] == arn
    assert sns.create_topic(Name="same", Attributes={"DisplayName": "Same"})["TopicArn"] == arn
    # a different DisplayName for the same name is refused, as SNS does
    status, code, _ = client_error(sns.create_topic, Name="same",
                                   Attributes={"DisplayName": "Other"})
    assert (status, code) == (400, "InvalidParameter")
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # deleting what is gone succeeds (SNS's is idempotent)
    # a control character could never be listed in XML: refused, nothing created
    status, code, message = client_error(sns.create_topic, Name="controlled",
                                         Attributes={"DisplayName": "a\x01b"})
    assert (status, code) == (400, "InvalidParameter") and "DisplayName" in message, message
    assert not [t for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":controlled")]


def test_subscribe_is_idempotent(inst, sns):
    arn = sns.create_topic(Name="twice")["TopicArn"]
    first = sns.subscribe(TopicArn=arn, Protocol="email-json", Endpoint="j@example.com")
    assert first == {"SubscriptionArn": "pending confirmation",
                     "ResponseMetadata": first["ResponseMetadata"]}
    sub = sns.subscribe(TopicArn=arn, Protocol="email-json", Endpoint="j@example.com",
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    again = sns.subscribe(TopicArn=arn, Protocol="email-json", Endpoint="j@example.com",
                          ReturnSubscriptionArn=True)["SubscriptionArn"]
    assert again == sub and sub.startswith(arn + ":")
    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [(s["Protocol"], s["SubscriptionArn"]) for s in listed] == [
        ("email-json", "PendingConfirmation")]
    assert client_error(sns.confirm_subscription, TopicArn=arn, Token="0" * 64) == (
        400, "InvalidParameter", "Invalid token")
    sns.unsubscribe(SubscriptionArn=sub)
    assert client_error(sns.unsubscribe, SubscriptionArn=sub)[:2] == (404, "NotFound")


def test_topics_are_per_region(inst, sns):
    arn = sns.create_topic(Name="regional")["TopicArn"]
    eu = sns_client(inst, region="eu-west-1")
    eu_arn = eu.create_topic(Name="regional")["TopicArn"]
    assert eu_arn == topic_arn(inst, "regional", region="eu-west-1") != arn
    assert arn not in [t["TopicArn"] for t in eu.list_topics()["Topics"]]
    # a topic of another region is not one of this endpoint's
    status, code, _ = client_error(eu.get_topic_attributes, TopicArn=arn)
    assert (status, code) == (400, "InvalidParameter")


def test_list_topics_pages_by_100(inst):
    account, key, secret = inst.new_account("paging")
    sns = sns_client(inst, key=key, secret=secret)
    made = {sns.create_topic(Name="page-%03d" % i)["TopicArn"] for i in range(105)}
    first = sns.list_topics()
    assert len(first["Topics"]) == 100 and first.get("NextToken"), first
    second = sns.list_topics(NextToken=first["NextToken"])
    assert "NextToken" not in second, second
    assert {t["TopicArn"] for t in first["Topics"] + second["Topics"]} == made
    pages = sns.get_paginator("list_topics").paginate()
    assert {t["TopicArn"] for p in pages for t in p["Topics"]} == made
    assert all(arn.split(":")[4] == account for arn in made)


def test_topic_errors(inst, sns):
    for name in ("", "has space", "dot.fifo", "x" * 257, "colon:name"):
        status, code, message = client_error(sns.create_topic, Name=name)
        assert (status, code) == (400, "InvalidParameter"), (name, message)
        assert message.startswith("Invalid parameter:"), message
    missing = topic_arn(inst, "never-made")
    for call in (sns.get_topic_attributes, sns.list_subscriptions_by_topic):
        assert client_error(call, TopicArn=missing) == (404, "NotFound", "Topic does not exist")
    status, code, _ = client_error(sns.subscribe, TopicArn=missing, Protocol="http",
                                   Endpoint="http://127.0.0.1/x")
    assert (status, code) == (404, "NotFound")
    status, code, message = client_error(sns.get_topic_attributes, TopicArn="not-an-arn")
    assert (status, code, message) == (400, "InvalidParameter", "Invalid parameter: TopicArn")
    status, code, _ = client_error(sns.create_topic, Name="attrs",
                                   Attributes={"Policy": "{}"})
    assert (status, code) == (400, "InvalidParameter")


def test_another_accounts_topic_is_refused(inst, sns):
    _, key, secret = inst.new_account("stranger")
    theirs = sns_client(inst, key=key, secret=secret).create_topic(Name="theirs")["TopicArn"]
    for call, kwargs in ((sns.get_topic_attributes, {}), (sns.delete_topic, {}),
                         (sns.list_subscriptions_by_topic, {}),
                         (sns.subscribe, {"Protocol": "email", "Endpoint": "a@example.com"})):
        status, code, _ = client_error(call, TopicArn=theirs, **kwargs)
        assert (status, code) == (403, "AuthorizationError"), call
    # a user of ours is named as the caller, not the account's root
    user = user_sns_client(inst, "crossing", [{"Effect": "Allow", "Action": "sns:*",
                                               "Resource": "*"}])
    status, code, message = client_error(user.get_topic_attributes, TopicArn=theirs)
    assert (status, code) == (403, "AuthorizationError"), message
    assert ":user/crossing is not authorized to perform: SNS:GetTopicAttributes" in message, message


# ---- subscriptions ----


def test_subscribe_checks_protocol_and_endpoint(inst, sns):
    arn = sns.create_topic(Name="checked")["TopicArn"]
    for protocol, endpoint in (("sms", "+15555550100"), ("sqs", "arn:aws:sqs:x"),
                               ("http", "https://127.0.0.1/x"), ("https", "http://127.0.0.1/x"),
                               ("http", "ftp://127.0.0.1/x"), ("http", "http://"),
                               ("email", "not-an-address"), ("email-json", "a@")):
        status, code, message = client_error(sns.subscribe, TopicArn=arn, Protocol=protocol,
                                             Endpoint=endpoint)
        assert (status, code) == (400, "InvalidParameter"), (protocol, endpoint, message)
    status, code, _ = client_error(sns.subscribe, TopicArn=arn, Protocol="http")
    assert (status, code) == (400, "InvalidParameter")


def test_http_subscription_is_confirmed_through_the_subscribe_url(inst, sns, subscriber):
    arn = sns.create_topic(Name="webhook")["TopicArn"]
    assert sns.subscribe(TopicArn=arn, Protocol="http",
                         Endpoint=subscriber.url())["SubscriptionArn"] == "pending confirmation"
    msg = subscriber.next("SubscriptionConfirmation")
    assert msg["TopicArn"] == arn and len(msg["Token"]) >= 64, msg
    url = urllib.parse.urlsplit(msg["SubscribeURL"])
    params = dict(urllib.parse.parse_qsl(url.query))
    assert params == {"Action": "ConfirmSubscription", "TopicArn": arn, "Token": msg["Token"]}
    # a wrong token, unsigned: refused
    bad = msg["SubscribeURL"].replace(msg["Token"], "f" * len(msg["Token"]))
    status, body = url_get(bad, cafile=inst.cert)
    assert status == 400 and "Invalid token" in body, body
    # the real one, unsigned, as a subscriber opens it
    status, body = url_get(msg["SubscribeURL"], cafile=inst.cert)
    assert status == 200, body
    root = ET.fromstring(body)
    assert root.tag == "{%s}ConfirmSubscriptionResponse" % SNS_NS
    sub = root.find("{%s}ConfirmSubscriptionResult/{%s}SubscriptionArn" % (SNS_NS, SNS_NS)).text
    assert sub.startswith(arn + ":"), sub
    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == [sub]
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsPending"]) == ("1", "0")
    # opening it again, or confirming through boto3, gives the same subscription
    assert url_get(msg["SubscribeURL"], cafile=inst.cert)[0] == 200
    assert sns.confirm_subscription(TopicArn=arn, Token=msg["Token"])["SubscriptionArn"] == sub
    # subscribing a confirmed endpoint again returns its ARN at once
    assert sns.subscribe(TopicArn=arn, Protocol="http",
                         Endpoint=subscriber.url())["SubscriptionArn"] == sub
    # the signing certificate is served, unsigned, where SigningCertURL says
    status, pem = url_get(msg["SigningCertURL"], cafile=inst.cert)
    assert status == 200 and pem.startswith("-----BEGIN CERTIFICATE-----"), pem[:100]
    # UnsubscribeURL's form, unsigned
    query = urllib.parse.urlencode({"Action": "Unsubscribe", "SubscriptionArn": sub})
    status, body = url_get(inst.http_url + "/?" + query)
    assert status == 200 and "UnsubscribeResponse" in body, body
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []


def test_authenticate_on_unsubscribe_refuses_the_unsigned_link(inst, sns, subscriber):
    arn = sns.create_topic(Name="guarded")["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=subscriber.url())
    msg = subscriber.next("SubscriptionConfirmation")
    status, code, _ = client_error(sns.confirm_subscription, TopicArn=arn, Token=msg["Token"],
                                   AuthenticateOnUnsubscribe="maybe")
    assert (status, code) == (400, "InvalidParameter")
    sub = sns.confirm_subscription(TopicArn=arn, Token=msg["Token"],
                                   AuthenticateOnUnsubscribe="true")["SubscriptionArn"]
    query = urllib.parse.urlencode({"Action": "Unsubscribe", "SubscriptionArn": sub})
    status, body = url_get(inst.http_url + "/?" + query)
    assert status == 403 and "AuthorizationError" in body, body
    assert [s["SubscriptionArn"] for s in
            sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]] == [sub]
    sns.unsubscribe(SubscriptionArn=sub)  # signed, by the topic's owner
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []


def test_unsigned_requests_are_limited_to_the_two_links(inst):
    for query in ({"Action": "ListTopics"},
                  {"Action": "ConfirmSubscription", "TopicArn": "x", "Token": "y"}):
        reply = inst.raw(method="POST", body=query, sign=False)
        assert_error(reply, 403, "MissingAuthenticationToken")
    status, body = url_get(inst.http_url + "/?Action=ListTopics")
    assert status == 403 and "MissingAuthenticationToken" in body, body
    status, body = url_get(inst.http_url + "/?" + urllib.parse.urlencode(
        {"Action": "ConfirmSubscription", "TopicArn": topic_arn(inst, "nothing"), "Token": "1"}))
    assert status == 404 and "NotFound" in body, body


def test_list_subscriptions_pages_and_stays_in_its_region(inst):
    _, key, secret = inst.new_account("subpaging")
    sns = sns_client(inst, key=key, secret=secret)
    eu = sns_client(inst, region="eu-west-1", key=key, secret=secret)
    arn = sns.create_topic(Name="many")["TopicArn"]
    eu_arn = eu.create_topic(Name="elsewhere")["TopicArn"]
    eu.subscribe(TopicArn=eu_arn, Protocol="email", Endpoint="eu@example.com")
    for i in range(102):  # HTTP: more than 100 pending emails would be refused
        sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:9/u%03d" % i)
    first = sns.list_subscriptions()
    assert len(first["Subscriptions"]) == 100 and first.get("NextToken"), first
    rest = sns.list_subscriptions(NextToken=first["NextToken"])
    assert len(rest["Subscriptions"]) == 2 and "NextToken" not in rest, rest
    by_topic = [s for p in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
                for s in p["Subscriptions"]]
    assert len(by_topic) == 102
    assert [s["Endpoint"] for s in eu.list_subscriptions()["Subscriptions"]] == ["eu@example.com"]


# ---- the service scope and the wire shapes ----


def sns_raw(inst, params, service="sns", region=None):
    """A POST signed for service (sns or ses); returns the Reply."""
    body = urllib.parse.urlencode(params).encode()
    hdrs = {"Host": "127.0.0.1:%d" % inst.port_base,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    hdrs = sign_request("POST", inst.http_url + "/", body, hdrs, inst.key, inst.secret,
                        region or inst.default_region, service=service)
    return http_send(inst.http_url, "POST", "/", body, hdrs)


def test_replies_use_sns_namespace_and_shapes(inst):
    reply = sns_raw(inst, {"Action": "CreateTopic", "Name": "shapes", "Version": "2010-03-31"})
    assert reply.status == 200, reply
    assert reply.xml.tag == "{%s}CreateTopicResponse" % SNS_NS, reply
    arn = sns_find(reply, "CreateTopicResult/TopicArn")
    assert arn == topic_arn(inst, "shapes")
    assert sns_find(reply, "ResponseMetadata/RequestId") == reply.request_id
    reply = sns_raw(inst, {"Action": "ListTopics"})
    assert arn in [e.text for e in reply.xml.iter("{%s}TopicArn" % SNS_NS)], reply
    reply = sns_raw(inst, {"Action": "GetTopicAttributes", "TopicArn": arn + "-gone"})
    assert reply.status == 404 and reply.xml.tag == "{%s}ErrorResponse" % SNS_NS, reply
    assert sns_find(reply, "Error/Code") == "NotFound"
    assert sns_find(reply, "Error/Type") == "Sender"
    assert sns_find(reply, "RequestId") == reply.request_id


def test_each_service_sees_only_its_actions(inst):
    reply = sns_raw(inst, {"Action": "ListIdentities"}, service="sns")
    assert reply.status == 400 and sns_find(reply, "Error/Code") == "InvalidAction", reply
    reply = sns_raw(inst, {"Action": "ListTopics"}, service="ses")
    assert reply.status == 400 and reply.xml.tag == "{%s}ErrorResponse" % SES_NS, reply
    assert reply.xml.find("{%s}Error/{%s}Code" % (SES_NS, SES_NS)).text == "InvalidAction"
    reply = sns_raw(inst, {"Action": "ListTopics", "Version": "2010-12-01"})
    assert reply.status == 400 and sns_find(reply, "Error/Code") == "InvalidAction", reply
    reply = sns_raw(inst, {"Action": "ListTopics"}, service="sqs")
    assert reply.status == 403, reply


def user_sns_client(inst, name, statements):
    """An SNS client with the keys of a new user whose one policy holds statements."""
    inst.sesame("user", "create", name)
    path = inst.dir / ("%s.json" % name)
    path.write_text(json.dumps({"Statement": statements}))
    inst.sesame("policy", "put", name, "p", "--file", str(path))
    out = parse_kv(inst.sesame("key", "create", "--user", name).stdout)
    return sns_client(inst, key=out["access_key_id"], secret=out["secret_access_key"])


def test_iam_users_get_what_their_sns_policies_allow(inst):
    ses_only = user_sns_client(inst, "sesonly", [
        {"Effect": "Allow", "Action": "ses:*", "Resource": "*"}])
    status, code, message = client_error(ses_only.list_topics)
    assert (status, code) == (403, "AuthorizationError"), message
    assert "sesonly" in message and "SNS:ListTopics" in message, message

    topics = user_sns_client(inst, "topicmaker", [
        {"Effect": "Allow", "Action": ["sns:CreateTopic", "SNS:List*", "sns:DeleteTopic"],
         "Resource": "*"},
        {"Effect": "Deny", "Action": "sns:DeleteTopic", "Resource": "*"}])
    arn = topics.create_topic(Name="made-by-a-user")["TopicArn"]
    assert arn == topic_arn(inst, "made-by-a-user")
    assert arn in [t["TopicArn"] for t in topics.list_topics()["Topics"]]
    assert topics.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    status, code, message = client_error(topics.subscribe, TopicArn=arn, Protocol="email",
                                         Endpoint="someone@example.com")
    assert (status, code) == (403, "AuthorizationError"), message
    assert "SNS:Subscribe" in message, message
    status, code, message = client_error(topics.delete_topic, TopicArn=arn)
    assert (status, code) == (403, "AuthorizationError"), message  # the explicit Deny wins
    # the topic is the account's: its root key sees it and deletes it
    root = sns_client(inst)
    assert arn in [t["TopicArn"] for t in root.list_topics()["Topics"]]
    root.delete_topic(TopicArn=arn)

    everything = user_sns_client(inst, "allofit", [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}])
    arn = everything.create_topic(Name="by-a-star")["TopicArn"]
    everything.delete_topic(TopicArn=arn)


def confirmations_to(inst, address):
    return sum(1 for m in capture_get(inst)
               if m.get("Destination", {}).get("ToAddresses") == [address]
               or ("To: %s" % address) in m.get("RawData", ""))


def test_confirmation_emails_are_capped(instance):
    """Confirmation emails are Sesame's own mail, outside the account's quota: an account
    may send at most 100 in 3 days, whatever becomes of their subscriptions and topics,
    then Subscribe of an email address is refused; one topic sends one endpoint at most one
    confirmation in 5 minutes, even across Unsubscribe and Subscribe."""
    inst = instance(extra=CONFIG)
    sns = sns_client(inst)
    arn = sns.create_topic(Name="capped")["TopicArn"]
    # Subscribe, Unsubscribe, Subscribe again: one confirmation
    sub = sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="victim@example.com",
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    confirmation_link(inst, "victim@example.com")
    sns.unsubscribe(SubscriptionArn=sub)
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="victim@example.com")
    for i in range(1, 99):
        sns.subscribe(TopicArn=arn, Protocol="email" if i % 2 else "email-json",
                      Endpoint="reader%d@example.com" % i)
    # 99 sent; deleting the topic does not give them back
    sns.delete_topic(TopicArn=arn)
    arn = sns.create_topic(Name="capped")["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="last@example.com")
    status, code, message = client_error(sns.subscribe, TopicArn=arn, Protocol="email",
                                         Endpoint="one-too-many@example.com")
    assert (status, code) == (403, "SubscriptionLimitExceeded"), message
    # HTTP endpoints are not email: still fine
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:9/x")
    wait_until(lambda: confirmations_to(inst, "last@example.com") == 1, 15,
               what="the 100th confirmation")
    assert confirmations_to(inst, "victim@example.com") == 1
    assert confirmations_to(inst, "one-too-many@example.com") == 0
