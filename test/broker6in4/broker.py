#!/usr/bin/python3
"""A minimal 6in4 tunnel broker (RFC 4213, as HE.net's) for xdprouter's lab.

The kernel here has no sit module, so the broker's end of the tunnel is
this relay, built from plain Linux: a raw IPv4 socket of protocol 41 and a
tun device. It is independent of xdprouter on purpose (it imports nothing
from the project) and checks every outer header it receives against what
the issue asks of xdprouter's encapsulation, so that the lab catches the
data plane writing a wrong one.

  router --(6in4)--> raw socket (proto 41) --> check, strip --> tun --> far
  far --> kernel routes the routed prefix into tun --> raw socket sends
      IPv6 inside IPv4 (the kernel writes the outer header) --> router

With --no-df it sends without DF (IP_PMTUDISC_DONT), as a broker may:
the kernel then fragments the outer IPv4 packet wherever the route to the
router has a smaller MTU than the packet, and the router must reassemble
before it decapsulates.

Usage:
  broker.py relay --tun IF --router ADDR --stats FILE [--ttl N] [--no-df]
"""
import argparse
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys

IPPROTO_IPV6 = 41
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT = 0


def csum_ok(hdr):
    s = sum(struct.unpack("!10H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


class Relay:
    def __init__(self, args):
        self.args = args
        self.router = socket.inet_aton(args.router)
        self.stats = {"decapsulated": 0, "encapsulated": 0, "bad_header": 0, "bad_ttl": 0,
                      "no_df": 0, "bad_tos": 0, "bad_length": 0, "bad_source": 0,
                      "hop_limits": []}
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPV6)
        self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        if args.no_df:
            self.raw.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
        self.tun = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(self.tun, TUNSETIFF, struct.pack("16sH", args.tun.encode(), IFF_TUN | IFF_NO_PI))

    def from_router(self, pkt):
        s = self.stats
        if len(pkt) < 60 or pkt[0] != 0x45 or not csum_ok(pkt[:20]) or pkt[9] != IPPROTO_IPV6:
            s["bad_header"] += 1
            return
        if pkt[12:16] != self.router:
            s["bad_source"] += 1
            return
        tot, ident, frag = struct.unpack("!HHH", pkt[2:8])
        inner = pkt[20:]
        tclass = ((inner[0] & 0x0F) << 4) | (inner[1] >> 4)
        # DF set, no fragment. The ID is 0 from xdprouter's own writers;
        # the kernel's GSO numbers the segments of a super-packet the slow
        # path encapsulated, as for Linux's sit: RFC 6864 lets an atomic
        # datagram's ID be anything.
        if frag != 0x4000:
            s["no_df"] += 1
        if pkt[8] != self.args.ttl:
            s["bad_ttl"] += 1
        if pkt[1] != tclass:
            s["bad_tos"] += 1
        if inner[0] >> 4 != 6 or tot != len(pkt) or 40 + struct.unpack("!H", inner[4:6])[0] != len(inner):
            s["bad_length"] += 1
            return
        if len(s["hop_limits"]) < 16 and inner[7] not in s["hop_limits"]:
            s["hop_limits"].append(inner[7])
        s["decapsulated"] += 1
        os.write(self.tun, inner)

    def to_router(self, inner):
        if len(inner) < 40 or inner[0] >> 4 != 6:
            return
        self.raw.sendto(inner, (self.args.router, 0))
        self.stats["encapsulated"] += 1

    def dump(self, *_):
        tmp = self.args.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.stats, f)
        os.rename(tmp, self.args.stats)

    def run(self):
        signal.signal(signal.SIGUSR1, self.dump)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print("ready", flush=True)
        while True:
            try:
                r, _, _ = select.select([self.raw, self.tun], [], [])
            except InterruptedError:
                continue
            if self.raw in r:
                self.from_router(self.raw.recv(65535))
            if self.tun in r:
                self.to_router(os.read(self.tun, 65535))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("relay")
    r.add_argument("--tun", required=True)
    r.add_argument("--router", required=True)
    r.add_argument("--stats", required=True)
    r.add_argument("--ttl", type=int, default=64)
    r.add_argument("--no-df", action="store_true", help="send without DF: the kernel fragments")
    Relay(p.parse_args()).run()


if __name__ == "__main__":
    main()
