#!/usr/bin/python3
"""Writes the benchmark user's policies: 10 documents of 10 statements each, into DIR.

Every statement but the very last is one evaluation must look at and reject: Allows of
other actions (exact names, wildcards, NotAction lists), Denies whose action matches
but whose condition does not (aws:SourceIp, aws:UserAgent, aws:CurrentTime), so that
SendEmail is allowed only by statement 10 of policy 10: the worst case for the
evaluator. Usage: make_policies.py DIR
"""
import json
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
OTHER = ["ses:ListIdentities", "ses:GetSendQuota", "ses:VerifyEmailIdentity",
         "ses:DeleteIdentity", "ses:GetIdentity*", "ses:List*", "ses:Verify*"]


def filler(p, s):
    kind = (p * 10 + s) % 5
    if kind == 0:
        return {"Sid": "Other%d%d" % (p, s), "Effect": "Allow", "Action": OTHER[s % len(OTHER)],
                "Resource": "*"}
    if kind == 1:
        return {"Effect": "Allow", "Action": ["ses:GetSendStatistics", "ses:Get*Quota"],
                "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    if kind == 2:
        return {"Effect": "Deny", "Action": "ses:Send*", "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}}
    if kind == 3:
        return {"Effect": "Deny", "Action": "ses:*", "Resource": "*",
                "Condition": {"StringLike": {"aws:UserAgent": ["*evil*", "curl/*"]}}}
    return {"Effect": "Deny", "Action": ["ses:SendEmail", "ses:SendRawEmail"], "Resource": "*",
            "Condition": {"DateLessThan": {"aws:CurrentTime": "2001-01-01T00:00:00Z"}}}


for p in range(10):
    statements = [filler(p, s) for s in range(10)]
    if p == 9:
        statements[9] = {"Sid": "Send", "Effect": "Allow",
                         "Action": ["ses:SendEmail", "ses:SendRawEmail"], "Resource": "*"}
    with open(os.path.join(out, "policy%d.json" % p), "w") as f:
        json.dump({"Version": "2012-10-17", "Statement": statements}, f, indent=2)
