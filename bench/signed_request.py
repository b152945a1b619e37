#!/usr/bin/python3
"""Prints a wrk Lua script that replays one SigV4-signed Query API request.

The signature covers X-Amz-Date, so the replay stays valid for the 15-minute skew window;
signing happens once, verification happens on every request.
Usage: signed_request.py ENDPOINT CREDENTIALS_FILE REGION BODY
BODY is the form-encoded request body, or @FILE to read it from a file.
"""
import configparser
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint, creds_file, region, body = sys.argv[1:5]
if body.startswith("@"):
    body = open(body[1:]).read()
cp = configparser.ConfigParser()
cp.read(creds_file)
creds = Credentials(cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"])
req = AWSRequest(method="POST", url=endpoint + "/", data=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
SigV4Auth(creds, "ses", region).add_auth(req)


def lua(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


print('wrk.method = "POST"')
print(f"wrk.body = {lua(body)}")
for name, value in req.headers.items():
    print(f"wrk.headers[{lua(name)}] = {lua(value)}")
