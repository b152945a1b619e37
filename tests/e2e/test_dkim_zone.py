"""`sesame dkim-zone`: the Easy DKIM public keys as a zone file. Without the DKIM API the
only key is the operator's own (dkim.operator_domain), which sesamed makes on its first
start; test_dkim.py covers customers' keys end to end."""
import base64
import configparser
import re
import shutil
import subprocess

import pytest

from conftest import unique_domain

HOST_ZONE = "keys.sesame.test"


def records(text):
    """(owner, joined text) of each TXT record: comments dropped, parentheses joined,
    quoted strings concatenated; also every string's length, to check the 255 limit."""
    origin, out, lengths, pending = None, [], [], ""
    for line in text.splitlines():
        line = re.sub(r';[^"]*$', "", line).rstrip()
        if pending or ("(" in line and ")" not in line):
            pending += " " + line.strip()
            if ")" not in line:
                continue
            line, pending = pending, ""
        if line.startswith("$ORIGIN"):
            origin = line.split()[1]
            continue
        if not line.strip() or line.startswith("$"):
            continue
        fields = line.split()
        owner = fields[0] if fields[0].endswith(".") else fields[0] + "." + origin
        assert fields[1:3] == ["IN", "TXT"], line
        strings = re.findall(r'"([^"\\]*)"', line)
        lengths += [len(s) for s in strings]
        out.append((owner, "".join(strings)))
    return origin, out, lengths


def checkzone(tmp_path, zone, text):
    """named-checkzone on the output with the SOA and NS that the operator's zone has."""
    if not shutil.which("named-checkzone"):
        pytest.skip("named-checkzone (bind9-utils) is not installed")
    path = tmp_path / "zone"
    path.write_text("$TTL 3600\n@ IN SOA ns.example.net. hostmaster.example.net. 1 3600 600"
                    " 86400 300\n@ IN NS ns.example.net.\n$INCLUDE %s\n" % (tmp_path / "keys"))
    (tmp_path / "keys").write_text(text)
    r = subprocess.run(["named-checkzone", zone, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr + text
    return r.stdout


def test_empty_zone_and_usage(instance, tmp_path):
    inst = instance(start=False)
    conf = configparser.ConfigParser(strict=False, interpolation=None)
    conf.read(inst.conf)
    default_zone = "dkim." + conf["server"].get("hostname", "localhost")
    out = inst.sesame("dkim-zone").stdout
    origin, recs, _ = records(out)
    assert origin == default_zone + "." and recs == [], out
    assert "\n$TTL 3600\n" in out
    inst.add_config("[dkim]\nhost_zone = %s.\n" % HOST_ZONE)  # a final dot is allowed
    out = inst.sesame("dkim-zone").stdout
    assert records(out)[0] == HOST_ZONE + ".", out
    checkzone(tmp_path, HOST_ZONE, out)
    res = inst.sesame("dkim-zone", "nokeys.example", expect=1)
    assert "no DKIM keys for nokeys.example" in res.stderr
    assert "not a domain" in inst.sesame("dkim-zone", "not a domain", expect=2).stderr
    inst.sesame("dkim-zone", "a.example", "b.example", expect=2)
    assert inst.sesame("dkim-zone", "--help").stdout.startswith("usage: dkim-zone")


def test_operator_key(instance, tmp_path):
    operator = unique_domain("operator")
    inst = instance(start=False)
    inst.add_config("[dkim]\nhost_zone = %s\noperator_domain = %s\noperator_selector = sel1\n"
                    % (HOST_ZONE, operator.upper()))
    inst.start()  # makes the operator's key
    inst.stop()
    # The host zone holds no record of it, only a pointer to --operator.
    out = inst.sesame("dkim-zone").stdout
    origin, recs, _ = records(out)
    assert origin == HOST_ZONE + "." and recs == [], out
    assert "dkim-zone --operator" in out
    assert "out-of-zone" not in checkzone(tmp_path, HOST_ZONE, out)
    # --operator: a file of the operator's own zone.
    out = inst.sesame("dkim-zone", "--operator").stdout
    origin, recs, lengths = records(out)
    assert origin == operator + ".", out
    owner = "sel1._domainkey.%s." % operator
    assert [o for o, _ in recs] == [owner], out
    text = recs[0][1]
    m = re.fullmatch(r"v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)", text)
    assert m, text
    assert len(base64.b64decode(m.group(1))) > 256  # RSA-2048: a record over 255 bytes
    assert max(lengths) <= 255 and len(lengths) > 1, lengths
    assert "sel1._domainkey\tIN\tTXT\t(" in out  # split over lines, in parentheses
    assert "out-of-zone" not in checkzone(tmp_path, operator, out)
    # Without an operator domain there is nothing to print.
    plain = instance(start=False)
    assert "no operator key" in plain.sesame("dkim-zone", "--operator", expect=1).stderr
