#!/usr/bin/python3
"""Sets up the notification benchmark (bench/feedback.sh): a topic, an HTTPS subscription
to the sink (confirmed by the sink itself), and the topic as bench@example.com's Delivery
topic. Usage: feedback_setup.py ENDPOINT CREDENTIALS SINK_URL"""
import configparser
import sys
import time

import boto3

endpoint, creds_file, sink = sys.argv[1:4]
cp = configparser.ConfigParser()
cp.read(creds_file)
kw = dict(region_name="us-east-1", endpoint_url=endpoint,
          aws_access_key_id=cp["default"]["aws_access_key_id"],
          aws_secret_access_key=cp["default"]["aws_secret_access_key"])
sns = boto3.client("sns", **kw)
ses = boto3.client("ses", **kw)
arn = sns.create_topic(Name="bench")["TopicArn"]
sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=sink)
for _ in range(100):
    subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    if subs and subs[0]["SubscriptionArn"].startswith(arn + ":"):
        break
    time.sleep(0.1)
else:
    sys.exit("feedback_setup: the sink did not confirm its subscription")
ses.set_identity_notification_topic(Identity="bench@example.com", NotificationType="Delivery",
                                    SnsTopic=arn)
