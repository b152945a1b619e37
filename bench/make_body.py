#!/usr/bin/python3
"""Writes the form body of a benchmark request to stdout.

send-email SIZE: SendEmail, one recipient, a text body of SIZE bytes.
send-raw SIZE:   SendRawEmail with a SIZE-byte message (text lines of 76 characters).
quota:           GetSendQuota.
The recipient is $TO, by default success@simulator.amazonses.com.
"""
import base64
import os
import sys
import urllib.parse

to = os.environ.get("TO", "success@simulator.amazonses.com")
kind = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 0
line = ("The quick brown fox jumps over the lazy dog. " * 2)[:74] + "\r\n"
text = (line * (size // len(line) + 1))[:size]
if kind == "quota":
    params = {"Action": "GetSendQuota"}
elif kind == "send-email":
    params = {"Action": "SendEmail", "Source": "bench@example.com",
              "Destination.ToAddresses.member.1": to,
              "Message.Subject.Data": "Benchmark", "Message.Body.Text.Data": text}
else:
    head = ("From: bench@example.com\r\nTo: " + to + "\r\n"
            "Subject: Benchmark\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n")
    raw = (head + text[: max(0, size - len(head))]).encode()
    params = {"Action": "SendRawEmail", "RawMessage.Data": base64.b64encode(raw).decode()}
params["Version"] = "2010-12-01"
sys.stdout.write(urllib.parse.urlencode(params))
