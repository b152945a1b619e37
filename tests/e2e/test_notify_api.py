"""SES notification settings (spec 20 §5.2–5.4, DECISIONS 29) through the AWS CLI v2 and
boto3: SetIdentityNotificationTopic, SetIdentityFeedbackForwardingEnabled and
GetIdentityNotificationAttributes with the seed's rules and messages, topics made with the
SNS-compatible actions, and the AmazonSnsSubscriptionSucceeded notification a topic gets
when it is attached."""
import email
import email.policy
import json

import pytest

from conftest import unique_domain, wait_until
from sendlib import capture_get, cli_error, client_error, verify
from test_sns_api import Subscriber, confirm_http, sns_client, topic_arn

CONFIG = "[api]\ncache_ttl = 0\nnon_send_rate = 0\n[delivery]\nmode = capture\n"
UNVERIFIED = "Invalid identity. Must be a verified email address or domain."
CONTACT = "owner@contact.test"


@pytest.fixture(scope="module")
def inst(module_instance):
    i = module_instance(regions=("us-east-1", "eu-west-1"), extra=CONFIG)
    i.sesame("account", "set", "--contact", CONTACT)
    return i


@pytest.fixture(scope="module")
def ses(inst):
    return inst.client()


@pytest.fixture(scope="module")
def sns(inst):
    return sns_client(inst)


def verified_domain(inst):
    domain = unique_domain("notify")
    verify(inst, domain)
    return domain


def attributes(ses, *identities):
    return ses.get_identity_notification_attributes(
        Identities=list(identities))["NotificationAttributes"]


def captured_to(inst, address, subject_part):
    """The captured emails to address whose Subject contains subject_part."""
    out = []
    for m in capture_get(inst):
        msg = email.message_from_string(m.get("RawData", ""), policy=email.policy.default)
        if msg["To"] == address and subject_part in (msg["Subject"] or ""):
            out.append(msg)
    return out


def test_defaults_and_unknown_identities(inst):
    domain = verified_domain(inst)
    got = inst.aws("get-identity-notification-attributes", "--identities", domain,
                   "unknown-%s" % domain)
    assert got == {"NotificationAttributes": {domain: {"ForwardingEnabled": True}}}


def test_topics_forwarding_and_clearing(inst, ses, sns):
    domain = verified_domain(inst)
    bounce, complaint, delivery = (sns.create_topic(Name="%s-%s" % (kind, domain.split(".")[0]))
                                   ["TopicArn"] for kind in ("bounce", "complaint", "delivery"))
    # the identity as given in any case: a domain is normalized
    inst.aws("set-identity-notification-topic", "--identity", domain.upper(),
             "--notification-type", "Bounce", "--sns-topic", bounce)
    code, message = cli_error(inst, "set-identity-feedback-forwarding-enabled", "--identity",
                              domain, "--no-forwarding-enabled")
    assert (code, message) == ("InvalidParameterValue", "Feedback notification topic not set.")
    ses.set_identity_notification_topic(Identity=domain, NotificationType="Complaint",
                                        SnsTopic=complaint)
    ses.set_identity_notification_topic(Identity=domain, NotificationType="Delivery",
                                        SnsTopic=delivery)
    inst.aws("set-identity-feedback-forwarding-enabled", "--identity", domain,
             "--no-forwarding-enabled")
    got = inst.aws("get-identity-notification-attributes", "--identities", domain)
    assert got["NotificationAttributes"][domain] == {
        "BounceTopic": bounce, "ComplaintTopic": complaint, "DeliveryTopic": delivery,
        "ForwardingEnabled": False}
    # clearing the Delivery topic leaves forwarding off: deliveries are SNS-only anyway
    ses.set_identity_notification_topic(Identity=domain, NotificationType="Delivery")
    assert attributes(ses, domain)[domain] == {
        "BounceTopic": bounce, "ComplaintTopic": complaint, "ForwardingEnabled": False}
    # clearing the Bounce topic turns forwarding back on and tells the account's contact
    inst.aws("set-identity-notification-topic", "--identity", domain,
             "--notification-type", "Bounce")
    assert attributes(ses, domain)[domain] == {"ComplaintTopic": complaint,
                                               "ForwardingEnabled": True}
    notices = wait_until(lambda: captured_to(inst, CONTACT, domain), 10,
                         what="the forwarding notice to the contact")
    assert "Bounce topic was cleared" in notices[0].get_content(), notices[0].get_content()
    # forwarding on again needs nothing; an empty SnsTopic clears as well
    ses.set_identity_feedback_forwarding_enabled(Identity=domain, ForwardingEnabled=True)
    ses.set_identity_notification_topic(Identity=domain, NotificationType="Complaint",
                                        SnsTopic="")
    assert attributes(ses, domain)[domain] == {"ForwardingEnabled": True}


def test_unverified_identities_are_refused(inst, ses, sns):
    pending = "pending-%s@example.com" % unique_domain("p").split(".")[0]
    ses.verify_email_identity(EmailAddress=pending)
    arn = sns.create_topic(Name="unverified")["TopicArn"]
    code, message = cli_error(inst, "set-identity-notification-topic", "--identity", pending,
                              "--notification-type", "Bounce", "--sns-topic", arn)
    assert (code, message) == ("InvalidParameterValue", UNVERIFIED)
    for identity in (pending, unique_domain("unknown")):
        assert client_error(ses.set_identity_notification_topic, Identity=identity,
                            NotificationType="Complaint") == (400, "InvalidParameterValue",
                                                              UNVERIFIED)
        assert client_error(ses.set_identity_feedback_forwarding_enabled, Identity=identity,
                            ForwardingEnabled=True) == (400, "InvalidParameterValue", UNVERIFIED)
    # a pending identity is known: it reports the defaults
    assert attributes(ses, pending) == {pending: {"ForwardingEnabled": True}}


def test_foreign_and_unknown_topics_are_refused(inst, ses, sns):
    domain = verified_domain(inst)
    _, key, secret = inst.new_account("topic-owner")
    foreign = sns_client(inst, key=key, secret=secret).create_topic(Name="foreign")["TopicArn"]
    other_region = sns_client(inst, region="eu-west-1").create_topic(Name="eu")["TopicArn"]
    for arn in (foreign, other_region, topic_arn(inst, "never-made"), "not-an-arn",
                "arn:aws:sqs:us-east-1:%s:queue" % inst.account_id()):
        status, code, message = client_error(ses.set_identity_notification_topic,
                                             Identity=domain, NotificationType="Bounce",
                                             SnsTopic=arn)
        assert (status, code) == (400, "InvalidParameterValue"), arn
        assert message.startswith("Invalid SNS topic ARN: %s." % arn), message
    assert attributes(ses, domain)[domain] == {"ForwardingEnabled": True}


def test_bad_parameters(inst, ses):
    domain = verified_domain(inst)
    status, code, message = client_error(ses.set_identity_notification_topic, Identity=domain,
                                         NotificationType="Open")
    assert (status, code) == (400, "ValidationError")
    assert "Member must satisfy enum value set: [Delivery, Complaint, Bounce]" in message
    reply = inst.call("SetIdentityFeedbackForwardingEnabled", Identity=domain,
                      ForwardingEnabled="maybe")
    assert reply.status == 400 and reply.find("Error/Code") == "InvalidParameterValue", reply
    reply = inst.call("SetIdentityNotificationTopic", Identity=domain)
    assert reply.status == 400 and reply.find("Error/Code") == "ValidationError", reply


def test_attaching_a_topic_publishes_subscription_succeeded(inst, ses, sns):
    domain = verified_domain(inst)
    arn = sns.create_topic(Name="attached-" + domain.split(".")[0])["TopicArn"]
    subscriber = Subscriber()
    try:
        confirm_http(inst, sns, arn, subscriber)
        ses.set_identity_notification_topic(Identity=domain, NotificationType="Delivery",
                                            SnsTopic=arn)
        msg = subscriber.next("Notification")
    finally:
        subscriber.close()
    assert msg["TopicArn"] == arn, msg
    assert json.loads(msg["Message"]) == {
        "notificationType": "AmazonSnsSubscriptionSucceeded",
        "message": "You have successfully subscribed your Amazon SNS topic '%s' to receive "
                   "'Delivery' notifications from Amazon SES for identity '%s'." % (arn, domain)}


def test_deleting_an_identity_drops_its_settings(inst, ses, sns):
    domain = verified_domain(inst)
    arn = sns.create_topic(Name="dropped")["TopicArn"]
    ses.set_identity_notification_topic(Identity=domain, NotificationType="Bounce", SnsTopic=arn)
    ses.delete_identity(Identity=domain)
    assert attributes(ses, domain) == {}
    verify(inst, domain)
    assert attributes(ses, domain) == {domain: {"ForwardingEnabled": True}}
