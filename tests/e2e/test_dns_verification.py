"""Domain verification against a real DNS server (dnslib, UDP and TCP on loopback):
sesamed polls TXT _amazonses.<domain> and amazonses.<domain> every second here."""
import threading
import time

import pytest

from conftest import wait_until

FAILURE_WINDOW = 8
REVOCATION_WINDOW = 4
CONFIG = """
[verification]
poll_interval = 1s
failure_window = %ds
revocation_window = %ds

[dns]
timeout_ms = 1000
""" % (FAILURE_WINDOW, REVOCATION_WINDOW)


class Watcher:
    """Samples the status of some domains every 0.2 s in the background and keeps each
    change with its time, so a slow transition can be observed while other tests run."""

    def __init__(self, inst):
        self.inst = inst
        self.timelines = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def watch(self, domain):
        with self.lock:
            self.timelines[domain] = []

    def timeline(self, domain):
        with self.lock:
            return list(self.timelines[domain])

    def _run(self):
        while not self.done.wait(0.2):
            with self.lock:
                domains = list(self.timelines)
            for d in domains:
                status = self.inst.status(d)
                with self.lock:
                    tl = self.timelines[d]
                    if not tl or tl[-1][1] != status:
                        tl.append((time.monotonic(), status))

    def stop(self):
        self.done.set()
        self.thread.join()


@pytest.fixture(scope="module")
def inst(module_instance):
    return module_instance(regions=("us-east-1", "eu-west-1"), extra=CONFIG)


@pytest.fixture(scope="module")
def early(inst):
    """A domain without a record, asked for when the instance starts; the failure window
    runs out while the other tests run."""
    started = time.monotonic()
    token = inst.client().verify_domain_identity(Domain="never.example.test")["VerificationToken"]
    w = Watcher(inst)
    w.watch("never.example.test")
    yield w, started, token
    w.stop()


def wait_status(inst, domain, want, timeout, region=None):
    seen = []

    def check():
        seen.append(inst.status(domain, region=region))
        return seen[-1] == want

    return wait_until(check, timeout, what=lambda: "%s to be %s (statuses seen: %s)"
                      % (domain, want, sorted(set(seen), key=seen.index)))


def test_txt_record_verifies_the_domain(inst, dns, early):
    c = inst.client()
    token = c.verify_domain_identity(Domain="Good.Example.TEST")["VerificationToken"]
    wait_until(lambda: dns.zone.asked("_amazonses.good.example.test") >= 1 and
               dns.zone.asked("amazonses.good.example.test") >= 1, 8, what="both names asked")
    time.sleep(0.5)
    assert inst.status("good.example.test") == "Pending"  # polled, nothing found yet
    dns.zone.set_txt("_amazonses.good.example.test", "unrelated text", token)
    wait_status(inst, "good.example.test", "Success", 8)
    got = c.get_identity_verification_attributes(Identities=["good.example.test"])
    assert got["VerificationAttributes"]["good.example.test"] == {
        "VerificationStatus": "Success", "VerificationToken": token}
    assert "good.example.test" not in inst.client().list_verified_email_addresses()[
        "VerifiedEmailAddresses"]
    # The CLI sees it too.
    cli = inst.aws("get-identity-verification-attributes", "--identities", "good.example.test")
    assert cli["VerificationAttributes"]["good.example.test"]["VerificationStatus"] == "Success"
    # The other region has its own identity and is not verified by this record.
    eu = inst.client("eu-west-1")
    eu_token = eu.verify_domain_identity(Domain="good.example.test")["VerificationToken"]
    assert eu_token != token
    time.sleep(1.5)
    assert inst.status("good.example.test", region="eu-west-1") == "Pending"
    dns.zone.set_txt("_amazonses.good.example.test", token, eu_token)
    wait_status(inst, "good.example.test", "Success", 8, region="eu-west-1")
    assert inst.status("good.example.test") == "Success"


def test_underscoreless_name_also_verifies(inst, dns):
    token = inst.client().verify_domain_identity(Domain="bare.example.test")["VerificationToken"]
    dns.zone.set_txt("amazonses.bare.example.test", token)
    wait_status(inst, "bare.example.test", "Success", 8)


def test_large_answer_over_tcp(inst, dns):
    # Many long TXT strings: the UDP answer is truncated and the resolver asks again on TCP.
    token = inst.client().verify_domain_identity(Domain="big.example.test")["VerificationToken"]
    filler = ["v=spf1 " + ("include:spf%02d.example.test " % i) * 8 for i in range(8)]
    dns.zone.set_txt("_amazonses.big.example.test", *filler[:4], token, *filler[4:])
    wait_status(inst, "big.example.test", "Success", 8)
    assert dns.zone.asked("_amazonses.big.example.test", protocol="tcp") >= 1


def test_wrong_value_does_not_verify(inst, dns):
    c = inst.client()
    token = c.verify_domain_identity(Domain="wrong.example.test")["VerificationToken"]
    dns.zone.set_txt("_amazonses.wrong.example.test", token[:-2] + "x=")
    dns.zone.set_txt("amazonses.wrong.example.test", token.lower())
    wait_until(lambda: dns.zone.asked("_amazonses.wrong.example.test") >= 2, 8,
               what="two polls of wrong.example.test")
    assert inst.status("wrong.example.test") == "Pending"


def test_record_removed_revokes_after_window(inst, dns):
    c = inst.client()
    tokens = {}
    for d in ("revoked.example.test", "flaky.example.test"):
        tokens[d] = c.verify_domain_identity(Domain=d)["VerificationToken"]
        dns.zone.set_txt("_amazonses." + d, tokens[d])
    for d in tokens:
        wait_status(inst, d, "Success", 8)
    removed = time.monotonic()
    dns.zone.remove("_amazonses.revoked.example.test")
    dns.zone.remove("_amazonses.flaky.example.test")
    asked = {d: dns.zone.asked("_amazonses." + d) for d in tokens}
    wait_until(lambda: all(dns.zone.asked("_amazonses." + d) > asked[d] for d in tokens), 5,
               what="a poll of both domains after the records went")
    time.sleep(0.3)  # the poll's result is written
    # Still verified inside the revocation window; flaky's record comes back.
    assert inst.status("revoked.example.test") == "Success"
    assert inst.status("flaky.example.test") == "Success"
    dns.zone.set_txt("_amazonses.flaky.example.test", tokens["flaky.example.test"])
    wait_status(inst, "revoked.example.test", "Failed", REVOCATION_WINDOW + 8)
    assert time.monotonic() - removed >= REVOCATION_WINDOW
    # A record that came back inside the window keeps the domain verified.
    assert inst.status("flaky.example.test") == "Success"


def test_pending_without_record_fails_after_window(inst, dns, early):
    watcher, started, token = early
    wait_until(lambda: watcher.timeline("never.example.test")[-1:][0][1] == "Failed"
               if watcher.timeline("never.example.test") else False,
               FAILURE_WINDOW + 8, what="never.example.test to fail")
    timeline = watcher.timeline("never.example.test")
    assert [s for _, s in timeline] == ["Pending", "Failed"], timeline
    assert timeline[-1][0] - started >= FAILURE_WINDOW, (timeline, started)
    assert dns.zone.asked("_amazonses.never.example.test") >= 2
    assert dns.zone.asked("amazonses.never.example.test") >= 2
    c = inst.client()
    assert c.list_identities(IdentityType="Domain")["Identities"].count("never.example.test") == 1
    # A failed domain stays Failed when its record appears ...
    dns.zone.set_txt("amazonses.never.example.test", token)
    time.sleep(1.5)
    assert inst.status("never.example.test") == "Failed"
    # ... until verification is asked for again: the same token, and now it succeeds.
    assert c.verify_domain_identity(Domain="never.example.test")["VerificationToken"] == token
    assert inst.status("never.example.test") in ("Pending", "Success")
    wait_status(inst, "never.example.test", "Success", 8)
