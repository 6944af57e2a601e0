#!/usr/bin/python3
"""A minimal ipip6 AFTR / tunnel concentrator for xdprouter's lab tests.

It is independent of xdprouter on purpose (it imports nothing from the
project) and checks what it receives against RFC 2473 / RFC 6333 as the
issue states them, so that it can catch the data plane producing a wrong
outer header.

  router --(ipip6)--> WAN (AF_PACKET) --> decapsulate --> raw IPv4 socket
                                                     --> kernel --> internet
  internet --> kernel routes to the tun device --> encapsulate
                                               --> WAN (AF_PACKET) --> router

The reverse mapping (inner IPv4 destination -> B4 IPv6 address) is learned
from the forward direction, as a DS-Lite AFTR keys its state on the B4.
Scapy builds and parses the packets of `inject` (the crafted wrong-source
and wrong-local ipip6 the tests send); the relay itself handles raw bytes,
because a scapy dissection per packet would make a 10 MB transfer take
minutes.

Usage:
  aftr.py relay --wan IF --tun IF --aftr ADDR --stats FILE [--hop-limit N]
  aftr.py inject --wan IF --dst-mac MAC --src ADDR --dst ADDR --inner-src A --inner-dst B
                 [--size N] [--df] [--frag-size N [--reverse]] [--encap-limit N]
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
import threading

ETH_P_ALL = 0x0003
ETH_P_IPV6 = 0x86DD
IPPROTO_IPIP = 4
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def mac_of(ifname):
    with open(f"/sys/class/net/{ifname}/address") as f:
        return bytes.fromhex(f.read().strip().replace(":", ""))


class Relay:
    def __init__(self, args):
        self.args = args
        self.aftr = socket.inet_pton(socket.AF_INET6, args.aftr)
        self.wan_mac = mac_of(args.wan)
        self.router_mac = None
        self.b4_of = {}  # inner IPv4 address (bytes) -> B4 IPv6 address (bytes)
        self.lock = threading.Lock()
        self.stats = {
            "decapsulated": 0, "encapsulated": 0,
            "bad_ext_header": 0, "bad_hop_limit": 0, "bad_tclass": 0,
            "zero_flow_label": 0, "bad_length": 0, "no_b4": 0,
            "hop_limits": [], "mss_seen": [], "inner_sources": [],
        }
        self.pkt = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.pkt.bind((args.wan, 0))
        self.pkt.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        # Swallows ipip6 in the local kernel, which has no ipip6 handler
        # and would answer every packet with an ICMPv6 parameter problem.
        self.swallow = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPIP)
        self.swallow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.raw4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.tun = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(self.tun, TUNSETIFF, struct.pack("16sH", args.tun.encode(), IFF_TUN | IFF_NO_PI))

    def check_outer(self, ip6, inner):
        s = self.stats
        vtf = struct.unpack("!I", ip6[0:4])[0]
        tclass, label = (vtf >> 20) & 0xFF, vtf & 0xFFFFF
        if tclass != inner[1]:
            s["bad_tclass"] += 1
        if label == 0:
            s["zero_flow_label"] += 1
        if ip6[7] != self.args.hop_limit:
            s["bad_hop_limit"] += 1
        if ip6[7] not in s["hop_limits"]:
            s["hop_limits"].append(ip6[7])
        plen = struct.unpack("!H", ip6[4:6])[0]
        if plen != struct.unpack("!H", inner[2:4])[0]:
            s["bad_length"] += 1

    def note_mss(self, inner):
        ihl = (inner[0] & 0x0F) * 4
        if inner[9] != 6 or len(inner) < ihl + 20:
            return
        tcp = inner[ihl:]
        if not tcp[13] & 0x02:  # SYN
            return
        off, end = 20, min((tcp[12] >> 4) * 4, len(tcp))
        while off < end:
            kind = tcp[off]
            if kind == 0:
                break
            if kind == 1:
                off += 1
                continue
            if off + 1 >= end or tcp[off + 1] < 2:
                break
            if kind == 2 and tcp[off + 1] == 4:
                self.stats["mss_seen"].append(struct.unpack("!H", tcp[off + 2:off + 4])[0])
            off += tcp[off + 1]

    def from_wan(self):
        while True:
            frame, addr = self.pkt.recvfrom(65535)
            if addr[2] == socket.PACKET_OUTGOING or len(frame) < 14 + 40 + 20:
                continue
            if struct.unpack("!H", frame[12:14])[0] != ETH_P_IPV6:
                continue
            ip6 = frame[14:54]
            if ip6[24:40] != self.aftr:
                continue
            if ip6[6] != IPPROTO_IPIP:
                # An extension header (e.g. the encapsulation limit option
                # RFC 2473 adds by default) is what this AFTR rejects.
                if ip6[6] in (0, 43, 60):
                    self.stats["bad_ext_header"] += 1
                continue
            plen = struct.unpack("!H", ip6[4:6])[0]
            inner = frame[54:54 + plen]
            with self.lock:
                self.check_outer(ip6, inner)
                self.note_mss(inner)
                self.router_mac = frame[6:12]
                if inner[12:16] not in self.b4_of:
                    self.stats["inner_sources"].append(socket.inet_ntop(socket.AF_INET, inner[12:16]))
                self.b4_of[inner[12:16]] = ip6[8:24]
                self.stats["decapsulated"] += 1
            dst = socket.inet_ntop(socket.AF_INET, inner[16:20])
            try:
                self.raw4.sendto(inner, (dst, 0))
            except OSError as e:
                print(f"aftr: relay to {dst}: {e}", file=sys.stderr)

    def from_internet(self):
        while True:
            inner = os.read(self.tun, 65535)
            if len(inner) < 20 or inner[0] >> 4 != 4:
                continue
            with self.lock:
                b4, rmac = self.b4_of.get(inner[16:20]), self.router_mac
                self.note_mss(inner)
                if b4 is None or rmac is None:
                    self.stats["no_b4"] += 1
                    continue
                self.stats["encapsulated"] += 1
            vtf = (6 << 28) | (inner[1] << 20) | (hash(inner[12:20] + inner[9:10]) & 0xFFFFF or 1)
            ip6 = struct.pack("!IHBB", vtf, len(inner), IPPROTO_IPIP, 64) + self.aftr + b4
            self.pkt.send(rmac + self.wan_mac + struct.pack("!H", ETH_P_IPV6) + ip6 + inner)

    def dump(self):
        with self.lock:
            data = json.dumps(self.stats)
        tmp = self.args.stats + ".tmp"
        with open(tmp, "w") as f:
            f.write(data)
        os.rename(tmp, self.args.stats)

    def run(self):
        for fn in (self.from_wan, self.from_internet):
            threading.Thread(target=fn, daemon=True).start()
        signal.signal(signal.SIGUSR1, lambda *_: self.dump())
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print("ready", flush=True)
        while not stop.wait(0.2):
            pass
        self.dump()


def pattern(n):
    """The payload of a probe of n bytes: the tests recompute it."""
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def inject(args):
    # Scapy only here: a one-off crafted packet, no hot loop.
    from scapy.all import Ether, IPv6, IP, UDP, Raw, sendp, get_if_hwaddr
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, PadN, fragment6
    ip6 = IPv6(src=args.src, dst=args.dst, hlim=64)
    if args.frag_size:
        # An AFTR that fragments the outer packet (RFC 6333 5.3: the inner
        # packet does not fit the path behind the tunnel header).
        ip6 = ip6 / IPv6ExtHdrFragment()
    if args.encap_limit is not None:
        # What Linux ip6tnl sends by default (RFC 2473 4.1.1): a tunnel
        # encapsulation limit option (type 4) padded with PadN.
        from scapy.layers.inet6 import HBHOptUnknown
        ip6 = ip6 / IPv6ExtHdrDestOpt(nh=IPPROTO_IPIP, options=[
            HBHOptUnknown(otype=4, optlen=1, optdata=bytes([args.encap_limit])), PadN(optdata=b"\x00")])
    elif args.frag_size:
        ip6[IPv6ExtHdrFragment].nh = IPPROTO_IPIP
    else:
        ip6.nh = IPPROTO_IPIP
    payload = pattern(args.size) if args.size is not None else b"xdprouter wrong-endpoint probe"
    inner = IP(src=args.inner_src, dst=args.inner_dst, ttl=64, flags="DF" if args.df else 0) / \
        UDP(sport=40000, dport=args.port) / Raw(payload)
    pkts = [ip6 / inner]
    if args.frag_size:
        pkts = fragment6(pkts[0], args.frag_size)
        if args.reverse:
            pkts.reverse()
    eth = Ether(dst=args.dst_mac, src=get_if_hwaddr(args.wan))
    sendp([eth / p for p in pkts] * args.count, iface=args.wan, verbose=False)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("relay")
    r.add_argument("--wan", required=True)
    r.add_argument("--tun", required=True)
    r.add_argument("--aftr", required=True)
    r.add_argument("--stats", required=True)
    r.add_argument("--hop-limit", type=int, default=64)
    i = sub.add_parser("inject")
    i.add_argument("--wan", required=True)
    i.add_argument("--dst-mac", required=True)
    i.add_argument("--src", required=True)
    i.add_argument("--dst", required=True)
    i.add_argument("--inner-src", required=True)
    i.add_argument("--inner-dst", required=True)
    i.add_argument("--port", type=int, default=9999)
    i.add_argument("--count", type=int, default=3)
    i.add_argument("--encap-limit", type=int, default=None,
                   help="add the destination options header Linux ip6tnl sends")
    i.add_argument("--size", type=int, default=None, help="UDP payload of this many pattern bytes")
    i.add_argument("--df", action="store_true", help="set DF on the inner packet")
    i.add_argument("--frag-size", type=int, default=0,
                   help="fragment the outer packet into fragments of at most this many bytes")
    i.add_argument("--reverse", action="store_true", help="send the fragments last first")
    args = p.parse_args()
    if args.cmd == "relay":
        Relay(args).run()
    else:
        inject(args)


if __name__ == "__main__":
    main()
