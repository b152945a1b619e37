"""Three independent DKIM verifiers from Debian's packages, run as their own programs:
dkimpy's `dkimverify`, Mail::DKIM (Perl) and OpenDKIM's `opendkim-testmsg`.

All three look keys up through the system's resolver, which reads /etc/resolv.conf and
asks port 53. Each runs in a private mount namespace where /etc/resolv.conf names the test
DNS server's port-53 address (DnsServer.system_address()), so the machine's own resolver
configuration is never touched and the keys come from the test's zone, through the
customers' CNAMEs, exactly as a receiver on the Internet would find them.
"""
import subprocess
import tempfile

PERL_VERIFIER = r"""
use strict;
use Mail::DKIM::Verifier;
my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (my $line = <STDIN>) {
    $line =~ s/\015?\012$/\015\012/;
    $dkim->PRINT($line);
}
$dkim->CLOSE;
foreach my $sig ($dkim->signatures) {
    printf "%s %s %s %s\n", $sig->domain, $sig->selector, $sig->algorithm, $sig->result_detail;
}
"""


class Verifiers:
    def __init__(self, dns_server, workdir):
        self.address = dns_server.system_address()
        self.resolv = tempfile.NamedTemporaryFile("w", dir=workdir, suffix=".resolv.conf",
                                                  delete=False)
        self.resolv.write("nameserver %s\noptions timeout:2 attempts:2\n" % self.address)
        self.resolv.close()

    def _run(self, argv, data):
        wrapped = ["unshare", "-m", "--", "sh", "-c",
                   'mount --bind "$0" /etc/resolv.conf && exec "$@"', self.resolv.name] + argv
        return subprocess.run(wrapped, input=data, capture_output=True, timeout=60)

    def dkimpy(self, data):
        """dkimverify checks the first signature: (ok, output)."""
        r = self._run(["dkimverify"], data)
        out = (r.stdout + r.stderr).decode(errors="replace")
        return r.returncode == 0 and "signature ok" in out, out

    def dkimpy_all(self, data):
        """Every signature, through dkimpy's library (dkim.DKIM.verify(idx=...)), with the
        same system resolver: [(domain, selector, ok)]."""
        script = (
            "import sys, dkim\n"
            "data = sys.stdin.buffer.read()\n"
            "d = dkim.DKIM(data)\n"
            "sigs = [v for k, v in d.headers if k.lower() == b'dkim-signature']\n"
            "for i, s in enumerate(sigs):\n"
            "    tags = dkim.util.parse_tag_value(s)\n"
            "    ok = dkim.DKIM(data).verify(idx=i)\n"
            "    print(tags[b'd'].decode(), tags[b's'].decode(), 'pass' if ok else 'fail')\n")
        r = self._run(["/usr/bin/python3", "-c", script], data)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        return [tuple(line.split()) for line in r.stdout.decode().splitlines()]

    def mail_dkim(self, data):
        """Every signature: [(domain, selector, algorithm, result)]; result "pass" when it
        verifies."""
        r = self._run(["perl", "-e", PERL_VERIFIER], data)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        return [tuple(line.split(" ", 3)) for line in r.stdout.decode().splitlines()]

    def opendkim(self, data):
        """opendkim-testmsg: silent and status 0 when the message verifies."""
        r = self._run(["opendkim-testmsg"], data)
        out = (r.stdout + r.stderr).decode(errors="replace")
        return r.returncode == 0 and not out.strip(), out
