"""A DNS server for the C unit tests (test_dns_mx, test_dkim_check): serve(resolver) runs
dnslib over UDP and TCP on a free port of 127.0.0.1, prints the port as its first line and
runs until its stdin closes (tests/unit/unit.h, unit_server_start). A UDP answer over 512
bytes is truncated to its question with TC set, as a server without EDNS does (dnslib's
own truncation drops the question), so the resolver must ask again over TCP."""
import socket
import sys

from dnslib import DNSRecord
from dnslib.server import DNSHandler, DNSLogger, DNSServer


class TruncatingHandler(DNSHandler):
    def get_reply(self, data):
        reply = self.server.resolver.resolve(DNSRecord.parse(data), self)
        if self.protocol == "udp" and len(reply.pack()) > 512:
            reply.rr = []
            reply.header.tc = 1
        return reply.pack()


def serve(resolver):
    log = DNSLogger(logf=lambda s: None)
    for _ in range(20):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        try:
            servers = [DNSServer(resolver, port=port, address="127.0.0.1", tcp=tcp,
                                 handler=TruncatingHandler, logger=log) for tcp in (False, True)]
            break
        except OSError:  # the port was taken between the probe and the bind
            pass
    for server in servers:
        server.start_thread()
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    sys.stdin.read()
