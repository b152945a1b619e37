"""A DNS server for bench/delivery.sh: the bench's recipient domain has one MX, mx.DOMAIN,
whose address is 127.0.0.1, so that Sesame's delivery engine reaches smtp-sink on
loopback (on the instance's delivery.mx_port). UDP and TCP on 127.0.0.1:PORT (dnslib).

  mx_dns.py PORT DOMAIN

DOMAIN        MX 10 mx.DOMAIN, A 127.0.0.1 (for an A fallback)
mx.DOMAIN     A 127.0.0.1
other types of those two names: no data (NOERROR, empty answer); any other name:
NXDOMAIN. Prints "ready" once both listeners are up, then serves until killed."""
import sys
import time

from dnslib import MX, QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class MxResolver(BaseResolver):
    def __init__(self, domain):
        self.domain = domain.rstrip(".").lower()
        self.mx = "mx." + self.domain

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = request.q.qtype
        if name not in (self.domain, self.mx):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if name == self.domain and qtype in (QTYPE.MX, QTYPE.ANY):
            reply.add_answer(RR(request.q.qname, QTYPE.MX, ttl=3600, rdata=MX(self.mx + ".", 10)))
        if qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=3600, rdata=A("127.0.0.1")))
        return reply


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mx_dns.py PORT DOMAIN")
    port, domain = int(sys.argv[1]), sys.argv[2]
    resolver = MxResolver(domain)
    logger = DNSLogger(log="-recv,-send,-request,-reply,-truncated,-data", prefix=False)  # errors only
    servers = [DNSServer(resolver, port=port, address="127.0.0.1", tcp=tcp, logger=logger)
               for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    print("ready", flush=True)
    while all(server.isAlive() for server in servers):
        time.sleep(1)


if __name__ == "__main__":
    main()
