"""SendEmail and SendRawEmail through the AWS CLI v2 and boto3: what is accepted, what is
stored (read back through the capture endpoint /_aws/ses and the store), and the
rewrites made at acceptance."""
import base64
import datetime
import json
import subprocess

import pytest

from sendlib import (
    SIM, account_set, assert_canonical, assert_message_id, assert_rewritten, b64,
    capture_delete, capture_get, capture_instance, captured, client, crlf, db, header_lines,
    parse, raw_data, stored, verify,
)

SENDER = "sender@example.com"


@pytest.fixture(scope="module")
def inst(module_instance):
    """A sandbox account: senders under the verified domain example.com, recipients under
    the verified domain example.org; quota and rate high enough never to matter here."""
    i = capture_instance(module_instance)
    verify(i, "example.com", "example.org")
    account_set(i, "--quota", 1000000, "--rate", 100000)
    return i


@pytest.fixture(scope="module")
def ses(inst):
    return client(inst)


def stored_message(inst, message_id):
    row = stored(inst, message_id)
    assert row is not None, message_id
    data = bytes(row["data"])
    assert_canonical(data)
    return row, data, parse(data)


def body_text(part):
    return part.get_content().replace("\r\n", "\n")


def assert_timestamp(entry, accepted_ms):
    when = datetime.datetime.fromisoformat(entry["Timestamp"].replace("Z", "+00:00"))
    assert when.utcoffset() == datetime.timedelta(0), entry["Timestamp"]
    assert abs(when.timestamp() - accepted_ms / 1000.0) < 2, (entry["Timestamp"], accepted_ms)


# ---- SendEmail ----


def test_send_email_text_cli(inst):
    destination = {"ToAddresses": ["to1@example.org", "To Two <to2@example.org>"],
                   "CcAddresses": ["cc@example.org"], "BccAddresses": ["hidden@example.org"]}
    out = inst.aws("send-email", "--from", SENDER, "--destination", json.dumps(destination),
                   "--message", "Subject={Data=Plain text},Body={Text={Data=Hello from the CLI}}")
    assert set(out) == {"MessageId"}
    mid = out["MessageId"]
    accepted_ms = assert_message_id(mid)

    entry = captured(inst, mid)
    assert_timestamp(entry, accepted_ms)
    assert entry == {
        "Id": mid, "Region": "us-east-1", "Timestamp": entry["Timestamp"], "Source": SENDER,
        "Subject": "Plain text",
        "Body": {"text_part": "Hello from the CLI", "html_part": None},
        "Destination": destination,
    }

    row, data, msg = stored_message(inst, mid)
    assert row["recipients"] == ["to1@example.org", "to2@example.org", "cc@example.org",
                                 "hidden@example.org"]
    assert row["states"] == ["captured"] * 4
    assert (row["region"], row["source"], row["captured"]) == ("us-east-1", SENDER, 1)
    assert row["account_id"] == inst.account_id()
    assert row["created_ms"] == accepted_ms
    assert b"hidden@example.org" not in data  # Bcc is envelope only
    assert_rewritten(msg, mid, accepted_ms)
    assert msg["From"] == SENDER
    assert [a.addr_spec for a in msg["To"].addresses] == ["to1@example.org", "to2@example.org"]
    assert msg["To"].addresses[1].display_name == "To Two"
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["cc@example.org"]
    assert msg["Subject"] == "Plain text"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert body_text(msg).rstrip("\n") == "Hello from the CLI"


def test_send_email_text_and_html_non_ascii_cli(inst):
    subject = "Grüße aus Köln – 日本語のテスト"
    text = "Grüße,\nzweite Zeile: €\n"
    html = "<html><body><p>Grüße – <b>€</b></p></body></html>"
    message = {"Subject": {"Data": subject, "Charset": "UTF-8"},
               "Body": {"Text": {"Data": text}, "Html": {"Data": html, "Charset": "UTF-8"}}}
    out = inst.aws("send-email", "--from", SENDER, "--destination", "ToAddresses=to@example.org",
                   "--message", json.dumps(message))
    mid = out["MessageId"]
    entry = captured(inst, mid)
    assert entry["Subject"] == subject
    assert entry["Body"] == {"text_part": text, "html_part": html}

    row, data, msg = stored_message(inst, mid)
    data.decode("ascii")  # the whole message is 7-bit: encoded-words, QP or base64
    subject_lines = [l for l in header_lines(data) if l.lower().startswith(b"subject:")]
    assert subject_lines and b"=?" in subject_lines[0], subject_lines
    assert msg["Subject"] == subject
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part, want in zip(parts, (text, html)):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"].lower() in ("quoted-printable", "base64")
        assert body_text(part).rstrip("\n") == want.rstrip("\n")
    assert row["recipients"] == ["to@example.org"]


def test_send_email_html_only_boto3(inst, ses):
    html = "<p>only <i>HTML</i></p>"
    r = ses.send_email(Source=SENDER, Destination={"ToAddresses": ["to@example.org"]},
                       Message={"Subject": {"Data": "html"}, "Body": {"Html": {"Data": html}}})
    mid = r["MessageId"]
    assert_message_id(mid)
    assert captured(inst, mid)["Body"] == {"text_part": None, "html_part": html}
    _, _, msg = stored_message(inst, mid)
    assert msg.get_content_type() == "text/html"
    assert body_text(msg).rstrip("\n") == html


def test_send_email_headers_and_encodings_boto3(inst, ses):
    long_line = "word " * 600  # one 3000-character line must be encoded to fit 998 octets
    r = ses.send_email(
        Source="Sender Name <%s>" % SENDER,
        Destination={"ToAddresses": ["to@example.org"], "CcAddresses": ["cc@example.org"],
                     "BccAddresses": ["bcc1@example.org", "bcc2@example.org"]},
        ReplyToAddresses=["Replies <replies@elsewhere.test>"],  # need not be verified
        ReturnPath="bounces@example.com",
        Message={"Subject": {"Data": "headers"},
                 "Body": {"Text": {"Data": long_line},
                          "Html": {"Data": "café", "Charset": "ISO-8859-1"}}},
        Tags=[{"Name": "campaign", "Value": "spring-2024"}])
    mid = r["MessageId"]
    entry = captured(inst, mid)
    assert entry["Source"] == "Sender Name <%s>" % SENDER
    assert entry["Destination"]["BccAddresses"] == ["bcc1@example.org", "bcc2@example.org"]

    row, data, msg = stored_message(inst, mid)
    assert row["recipients"] == ["to@example.org", "cc@example.org", "bcc1@example.org",
                                 "bcc2@example.org"]
    assert row["source"] == "bounces@example.com"  # feedback goes to ReturnPath
    assert b"bcc1@example.org" not in data and b"bcc2@example.org" not in data
    assert msg["Return-Path"] is None  # the envelope sender, not a header
    assert msg["From"].addresses[0].display_name == "Sender Name"
    assert msg["From"].addresses[0].addr_spec == SENDER
    assert [str(a) for a in msg["Reply-To"].addresses] == ["Replies <replies@elsewhere.test>"]
    text, html = list(msg.iter_parts())
    assert body_text(text) == long_line
    assert html.get_content_charset() == "iso-8859-1"
    raw_html = html.get_payload(decode=True)
    assert raw_html.rstrip(b"\r\n") == "café".encode("latin-1")


def test_message_id_unique_and_monotonic(inst, ses):
    ids = [ses.send_email(Source=SENDER, Destination={"ToAddresses": ["to@example.org"]},
                          Message={"Subject": {"Data": "n%d" % i},
                                   "Body": {"Text": {"Data": "x"}}})["MessageId"]
           for i in range(5)]
    assert len(set(ids)) == 5
    stamps = [assert_message_id(m) for m in ids]
    assert stamps == sorted(stamps)
    for m in ids:
        _, _, msg = stored_message(inst, m)
        assert msg["Message-ID"] == "<%s@email.amazonses.com>" % m


# ---- SendRawEmail ----


ATTACHMENT = bytes(range(256)) * 8


def mixed_raw(sender, subject_header):
    """A multipart/mixed message with a text part, an HTML part and a binary attachment,
    a Bcc, a Return-Path, its own Date and Message-ID, and an X- header."""
    att = base64.encodebytes(ATTACHMENT).decode()
    return crlf(
        "Return-Path: <%s>\n"
        "Date: Mon, 01 Jan 2001 00:00:00 +0100\n"
        "Message-ID: <original-id@client.example>\n"
        "From: Raw Sender <%s>\n"
        "To: to1@example.org, Two <to2@example.org>\n"
        "Cc: cc@example.org\n"
        "Bcc: bcc@example.org\n"
        "Subject: %s\n"
        "X-Custom:  kept   exactly \n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\n"
        "\n"
        "preamble\n"
        "--b1\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Grüße from raw\n"
        "--b1\n"
        "Content-Type: application/pdf; name=\"report.pdf\"\n"
        "Content-Disposition: attachment; filename=\"report.pdf\"\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "%s"
        "--b1--\n" % (sender, sender, subject_header, att))


def check_mixed(inst, mid, original, subject):
    accepted_ms = assert_message_id(mid)
    entry = captured(inst, mid)
    assert set(entry) == {"Id", "Region", "Timestamp", "Source", "RawData"}, entry
    assert entry["Region"] == "us-east-1"
    assert_timestamp(entry, accepted_ms)
    data = raw_data(entry)
    row, stored_data, msg = stored_message(inst, mid)
    assert stored_data == data
    assert_rewritten(msg, mid, accepted_ms)
    assert b"bcc@example.org" not in data
    assert b"original-id@client.example" not in data
    assert row["recipients"] == ["to1@example.org", "to2@example.org", "cc@example.org",
                                 "bcc@example.org"]
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].addr_spec == SENDER
    # Every header but Date, Message-ID, Return-Path and Bcc keeps its exact bytes.
    dropped = (b"date:", b"message-id:", b"return-path:", b"bcc:")
    kept = [l for l in header_lines(original) if not l.lower().startswith(dropped)]
    got = [l for l in header_lines(data) if not l.lower().startswith((b"date:", b"message-id:"))]
    assert got == kept
    assert b"X-Custom:  kept   exactly " in data
    # The body is untouched.
    assert data.split(b"\r\n\r\n", 1)[1] == original.split(b"\r\n\r\n", 1)[1]
    text, att = list(msg.iter_parts())
    assert body_text(text) == "Grüße from raw"  # the CRLF before a boundary is the boundary's
    assert att.get_filename() == "report.pdf"
    assert att.get_content() == ATTACHMENT
    return entry, row


def test_send_raw_email_cli(inst):
    subject = "Rapport für Ärger – ✓"
    encoded = "=?UTF-8?B?%s?=" % b64(subject)
    original = mixed_raw(SENDER, encoded)
    out = inst.aws("send-raw-email", "--raw-message", "Data=%s" % b64(original))
    assert set(out) == {"MessageId"}
    entry, row = check_mixed(inst, out["MessageId"], original, subject)
    assert entry["Source"] == SENDER  # no Source: the Return-Path, else the From
    assert row["source"] == SENDER


def test_send_raw_email_boto3(inst, ses):
    subject = "boto3 raw"
    original = mixed_raw(SENDER, subject)
    r = ses.send_raw_email(RawMessage={"Data": original})
    check_mixed(inst, r["MessageId"], original, subject)


def test_send_raw_destinations_and_source_cli(inst):
    original = crlf("From: %s\nTo: header-only@example.org\nSubject: envelope\n\nbody\n" % SENDER)
    out = inst.aws("send-raw-email", "--source", "Envelope <bounce@example.com>",
                   "--destinations", "env1@example.org", "env2@example.org",
                   "--raw-message", "Data=%s" % b64(original))
    mid = out["MessageId"]
    row = stored(inst, mid)
    assert row["recipients"] == ["env1@example.org", "env2@example.org"]
    assert row["source"] == "bounce@example.com"
    data = bytes(row["data"])
    assert b"To: header-only@example.org\r\n" in data
    assert captured(inst, mid)["Source"] in ("Envelope <bounce@example.com>", "bounce@example.com")


def test_send_raw_lf_only_stored_with_crlf(inst, ses):
    lf = ("From: %s\nTo: to@example.org\nSubject: lf only\nX-Folded: first\n second\n"
          "\nline one\nline two\n" % SENDER).encode()
    r = ses.send_raw_email(RawMessage={"Data": lf})
    data = raw_data(captured(inst, r["MessageId"]))
    assert_canonical(data)
    assert data.endswith(b"\r\n\r\nline one\r\nline two\r\n")
    assert b"X-Folded: first\r\n second\r\n" in data
    assert parse(data)["Subject"] == "lf only"


def test_send_raw_without_from_gets_source(inst, ses):
    original = crlf("To: to@example.org\nSubject: no from\n\nbody\n")
    r = ses.send_raw_email(Source=SENDER, RawMessage={"Data": original})
    data = raw_data(captured(inst, r["MessageId"]))
    msg = parse(data)
    assert msg.get_all("From") == [SENDER]
    assert stored(inst, r["MessageId"])["recipients"] == ["to@example.org"]


def test_send_raw_8bit_not_utf8_is_base64_in_capture(inst, ses):
    original = crlf("From: %s\nTo: to@example.org\nSubject: latin-1\n"
                    "Content-Type: text/plain; charset=iso-8859-1\n"
                    "Content-Transfer-Encoding: 8bit\n\n" % SENDER) + "café\r\n".encode("latin-1")
    r = ses.send_raw_email(RawMessage={"Data": original})
    entry = captured(inst, r["MessageId"])
    assert entry["RawDataEncoding"] == "base64"
    data = raw_data(entry)
    assert data.endswith("\r\n\r\ncafé\r\n".encode("latin-1"))
    assert bytes(stored(inst, r["MessageId"])["data"]) == data


def test_send_raw_simulator_recipient_and_group_syntax(inst, ses):
    original = crlf("From: %s\nTo: team: a@example.org, B <b@example.org>;\n"
                    "Cc: %s\nSubject: group\n\nx\n" % (SENDER, SIM.upper()))
    r = ses.send_raw_email(RawMessage={"Data": original})
    row = stored(inst, r["MessageId"])
    assert row["recipients"] == ["a@example.org", "b@example.org", SIM.upper()]


def test_dkim_signature_survives_rewrites(inst, ses, tmp_path):
    """A customer's DKIM signature over the headers Sesame keeps still verifies."""
    dkim = pytest.importorskip("dkim")
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "1024"], check=True,
                   capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)
    original = crlf("Date: Mon, 01 Jan 2001 00:00:00 +0000\nMessage-ID: <x@client.example>\n"
                    "Return-Path: <%s>\nFrom: Signer <%s>\nTo: to@example.org\n"
                    "Bcc: bcc@example.org\nSubject:   Signed   message \n"
                    "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
                    "Signed body.\n\nSecond paragraph.\n" % (SENDER, SENDER))
    sig = dkim.sign(original, b"sel", b"example.com", key.read_bytes(),
                    include_headers=[b"from", b"to", b"subject", b"mime-version",
                                     b"content-type"],
                    canonicalize=(b"simple", b"simple"))
    signed = sig + original

    def dns(name, timeout=5):
        assert name == b"sel._domainkey.example.com.", name
        return record

    assert dkim.verify(signed, dnsfunc=dns)
    r = ses.send_raw_email(RawMessage={"Data": signed})
    data = raw_data(captured(inst, r["MessageId"]))
    assert b"x@client.example" not in data and b"bcc@example.org" not in data
    assert dkim.verify(data, dnsfunc=dns), data.decode()


def test_rewrites_match_header_names_in_any_case(inst, ses):
    original = crlf("DATE: Mon, 01 Jan 2001 00:00:00 +0000\ndate: Tue, 02 Jan 2001 00:00:00 +0000\n"
                    "message-id: <one@client.example>\nMESSAGE-ID: <two@client.example>\n"
                    "return-PATH: <%s>\nfRoM: %s\ntO: to@example.org\n"
                    "bCC: hidden1@example.org,\n hidden2@example.org\nSubject: case\n"
                    "X-After: kept\n\nbody\n" % (SENDER, SENDER))
    r = ses.send_raw_email(RawMessage={"Data": original})
    mid = r["MessageId"]
    data = raw_data(captured(inst, mid))
    msg = parse(data)
    assert_rewritten(msg, mid, assert_message_id(mid))
    for gone in (b"client.example", b"hidden1", b"hidden2", b"2001", b"return-PATH"):
        assert gone not in data, gone
    assert b"\r\nfRoM: %s\r\ntO: to@example.org\r\nSubject: case\r\nX-After: kept\r\n\r\n" \
        % SENDER.encode() in data
    assert stored(inst, mid)["recipients"] == ["to@example.org", "hidden1@example.org",
                                               "hidden2@example.org"]


# ---- the capture endpoint ----


def test_capture_filters_and_delete(module_instance):
    inst = capture_instance(module_instance)
    verify(inst, "example.com", "example.org")
    account_set(inst, "--rate", 100000)
    ses = client(inst)
    named = ses.send_email(Source="Named <a@example.com>",
                           Destination={"ToAddresses": ["to@example.org"]},
                           Message={"Subject": {"Data": "1"}, "Body": {"Text": {"Data": "1"}}})
    plain = ses.send_email(Source="b@example.com", Destination={"ToAddresses": ["to@example.org"]},
                           Message={"Subject": {"Data": "2"}, "Body": {"Text": {"Data": "2"}}})
    raw = ses.send_raw_email(RawMessage={"Data": crlf("From: b@example.com\nTo: to@example.org\n"
                                                      "Subject: 3\n\n3\n")})
    bounced = ses.send_email(Source="c@example.com", ReturnPath="bounces@example.com",
                             Destination={"ToAddresses": ["to@example.org"]},
                             Message={"Subject": {"Data": "4"}, "Body": {"Text": {"Data": "4"}}})
    ids = [named["MessageId"], plain["MessageId"], raw["MessageId"], bounced["MessageId"]]
    assert [m["Id"] for m in capture_get(inst)] == ids  # in acceptance order
    assert [m["Id"] for m in capture_get(inst, id=ids[1])] == [ids[1]]
    assert capture_get(inst, id="0000000000000000-nope") == []
    assert [m["Id"] for m in capture_get(inst, email="b@example.com")] == ids[1:3]
    assert capture_get(inst, email="nobody@example.com") == []
    # The filter takes the Source as the entry shows it (as given to SendEmail), even
    # when a ReturnPath is given too.
    assert capture_get(inst, id=ids[0])[0]["Source"] == "Named <a@example.com>"
    assert capture_get(inst, id=ids[3])[0]["Source"] == "c@example.com"
    for entry in capture_get(inst):
        assert entry["Id"] in [m["Id"] for m in capture_get(inst, email=entry["Source"])], entry

    assert capture_delete(inst, ids[0]) == 204
    assert [m["Id"] for m in capture_get(inst)] == ids[1:]
    assert stored(inst, ids[0]) is None
    assert capture_delete(inst) == 204
    assert capture_get(inst) == []
    assert all(stored(inst, m) is None for m in ids)
    conn = db(inst)
    try:  # their envelope recipients went with them
        assert conn.execute("SELECT count(*) FROM recipients").fetchone()[0] == 0
    finally:
        conn.close()
