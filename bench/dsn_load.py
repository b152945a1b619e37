#!/usr/bin/python3
"""Sends DSNs to sesamed's feedback listener for the benchmark (bench/feedback.sh): one
RFC 3464 report per MessageId read from IDS_FILE (a Postfix-style multipart/report, 5.1.1
user unknown, the original's headers with its Message-ID), over PROCS parallel SMTP
connections, one DSN per transaction. Prints the seconds it took.
Usage: dsn_load.py HOST PORT BOUNCE_DOMAIN MESSAGE_ID_DOMAIN IDS_FILE PROCS"""
import multiprocessing
import smtplib
import sys
import time

host, port, bounce_domain, mid_domain, ids_file, procs = sys.argv[1:7]
port, procs = int(port), int(procs)

DSN = ("From: MAILER-DAEMON@mx.sink.bench\r\nTo: postmaster@{bd}\r\n"
       "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
       "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
       "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
       "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
       "Reporting-MTA: dns; mx.sink.bench\r\n\r\n"
       "Final-Recipient: rfc822; success@simulator.amazonses.com\r\nAction: failed\r\n"
       "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
       "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
       "From: bench@example.com\r\nTo: success@simulator.amazonses.com\r\n"
       "Message-ID: <{mid}@{md}>\r\nSubject: bench\r\n\r\n--B--\r\n")


def connect():
    s = smtplib.SMTP(host, port, timeout=60)
    s.ehlo("mx.sink.bench")
    return s


def send(ids):
    """Sends each DSN; a 421 (smtp.max_messages reached) means reconnect and go on, as
    an MTA does."""
    s = connect()
    for mid in ids:
        data = DSN.format(bd=bounce_domain, mid=mid, md=mid_domain).encode()
        try:
            s.sendmail("", ["postmaster@" + bounce_domain], data)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPServerDisconnected):
            s.close()
            s = connect()
            s.sendmail("", ["postmaster@" + bounce_domain], data)
    s.quit()


ids = [l.strip() for l in open(ids_file) if l.strip()]
shares = [ids[i::procs] for i in range(procs)]
t0 = time.time()
with multiprocessing.Pool(procs) as pool:
    pool.map(send, shares)
print("%.3f" % (time.time() - t0))
