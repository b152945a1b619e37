"""A private Postfix instance configured as the SES guide's relay: relayhost, SASL
authentication with the SMTP credentials, TLS required (STARTTLS, or the TLS wrapper
for implicit-TLS ports). It has no listener of its own: mail enters with its sendmail
command and leaves through its SMTP client. Needs root (Postfix's daemons drop to the
postfix user) and the postfix and libsasl2-modules packages."""
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

POSTFIX = "/usr/sbin/postfix"
SENDMAIL = "/usr/sbin/sendmail"


def available():
    return os.path.exists(POSTFIX) and os.geteuid() == 0


class PostfixRelay:
    def __init__(self, host, port, username, password, wrapper=False):
        # Its own directory under /tmp, open to traversal: Postfix's daemons run as the
        # postfix user, and pytest's temporary directories are private to root.
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sesame-postfix-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.conf = self.dir / "etc"
        self.queue = self.dir / "queue"
        self.log_path = self.dir / "maillog"
        self.host, self.port = host, port
        self.username, self.password, self.wrapper = username, password, wrapper
        self.started = False

    def _main_cf(self):
        tls = ["smtp_tls_wrappermode = yes"] if self.wrapper else []
        return "\n".join([
            "compatibility_level = 3.6",
            "queue_directory = %s" % self.queue,
            "data_directory = %s" % (self.dir / "data"),
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "myhostname = relay.sesame.test",
            "mydomain = sesame.test",
            "myorigin = $myhostname",
            "mydestination =",
            "inet_interfaces = loopback-only",
            "inet_protocols = ipv4",
            "maillog_file = %s" % self.log_path,
            "maillog_file_prefixes = %s" % self.dir,
            # The guide's relay settings.
            "relayhost = [%s]:%d" % (self.host, self.port),
            "smtp_sasl_auth_enable = yes",
            "smtp_sasl_security_options = noanonymous",
            "smtp_sasl_password_maps = hash:%s" % (self.conf / "sasl_passwd"),
            "smtp_tls_security_level = encrypt",
            "smtp_tls_note_starttls_offer = yes",
            *tls,
            # A test wants the first attempt now, not after a backoff.
            "minimal_backoff_time = 1s",
            "maximal_backoff_time = 2s",
            "queue_run_delay = 1s",
            "",
        ])

    def _master_cf(self):
        """Debian's master.cf without any inet listener (no smtpd, nothing on port 25)
        and without chroot (the SMTP client loads the SASL plugins from /usr/lib)."""
        lines = []
        for line in pathlib.Path("/etc/postfix/master.cf").read_text().splitlines():
            fields = line.split()
            service = fields and not line.startswith((" ", "\t", "#")) and len(fields) >= 8
            if service and fields[1] == "inet":
                continue
            if service:
                fields[4] = "n"
                line = " ".join(fields)
            lines.append(line)
        return "\n".join(lines) + "\n"

    def start(self):
        self.conf.mkdir(parents=True)
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix")
        self.queue.mkdir()
        (self.conf / "main.cf").write_text(self._main_cf())
        (self.conf / "master.cf").write_text(self._master_cf())
        for extra in ("dynamicmaps.cf",):
            src = pathlib.Path("/etc/postfix") / extra
            if src.exists():
                shutil.copy(src, self.conf / extra)
        passwd = self.conf / "sasl_passwd"
        passwd.write_text("[%s]:%d %s:%s\n" % (self.host, self.port, self.username,
                                                self.password))
        os.chmod(passwd, 0o600)
        self._run("postmap", str(passwd))
        self._run(POSTFIX, "-c", str(self.conf), "check")
        self._run(POSTFIX, "-c", str(self.conf), "start")
        self.started = True

    def _run(self, *cmd, stdin=None):
        # Postfix reports to syslog, or to a terminal: script(1) gives it one, so that a
        # failure says why.
        if cmd[0] == POSTFIX:
            cmd = ("script", "-qec", " ".join(cmd), "/dev/null")
        res = subprocess.run(cmd, input=stdin, capture_output=True, timeout=60)
        assert res.returncode == 0, "%s -> %s: %s %s" % (
            " ".join(cmd), res.returncode, res.stdout.decode(errors="replace"),
            res.stderr.decode(errors="replace"))
        return res

    def sendmail(self, message, sender, *recipients):
        """Hands a message to Postfix as a local program would."""
        self._run(SENDMAIL, "-C", str(self.conf), "-f", sender, "--", *recipients,
                  stdin=message)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_sent(self, count, timeout=30):
        """Waits until Postfix has relayed `count` messages (status=sent); returns the
        queue ids' lines. Fails early with the log when a delivery is deferred."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            sent = [line for line in self.log().splitlines() if "status=sent" in line]
            if len(sent) >= count:
                return sent
            time.sleep(0.2)
        raise AssertionError("postfix relayed fewer than %d messages:\n%s" % (count, self.log()))

    def stop(self):
        if self.started:
            subprocess.run([POSTFIX, "-c", str(self.conf), "stop"], capture_output=True,
                           timeout=60)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)
