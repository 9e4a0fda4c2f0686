#!/usr/bin/python3
# attack-client.py - misbehaving clients for tests/integration/attack.sh, each holding what it can
# of the webhook for --hold seconds and then printing one line about how the server treated it:
#   stall-bodies  N TLS uploads of --size bytes each sent but for the last byte, then silence
#   slow-hello    N plain TCP connections trickling a TLS ClientHello one byte every --interval s
#   slow-head     N TLS connections (handshake done) trickling a request head the same way
#   slow-http     N plain HTTP connections trickling "GET /healthz ..." the same way
# The line: "closed=C open=O refused=R first_close=T" (T: seconds to the first close, -1 if none).
import argparse
import socket
import ssl
import sys
import threading
import time


def connect(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    if args.source:
        s.bind((args.source, 0))
    s.connect(("127.0.0.1", args.port))
    return s


def tls(args, raw):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.check_hostname = False
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def closed_now(sock):
    """True when the server has closed (or reset) the connection."""
    try:
        sock.settimeout(0.001)
        data = sock.recv(4096)
        return data == b""
    except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
        return False
    except (OSError, ssl.SSLError):
        return True
    finally:
        try:
            sock.settimeout(5)
        except OSError:
            pass


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.closed = 0
        self.refused = 0
        self.first = -1.0
        self.start = time.time()

    def close(self):
        with self.lock:
            self.closed += 1
            if self.first < 0:
                self.first = time.time() - self.start

    def refuse(self):
        with self.lock:
            self.refused += 1


def stall_one(args, tally, i):
    try:
        sock = tls(args, connect(args))
        head = ("POST /mutate/pods HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % args.size).encode()
        sock.sendall(head + b" " * (args.size - 1))
    except (OSError, ssl.SSLError):
        tally.refuse()
        return
    while time.time() - tally.start < args.hold:
        if closed_now(sock):
            tally.close()
            return
        time.sleep(0.1)
    sock.close()


def stall_bodies(args, tally):
    threads = [threading.Thread(target=stall_one, args=(args, tally, i)) for i in range(args.count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return args.count - tally.closed - tally.refused


def trickle(args, tally):
    """Opens the connections, then sends each its next byte every --interval seconds."""
    if args.mode == "slow-http":
        payload = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 4096
    elif args.mode == "slow-head":
        payload = b"POST /mutate/pods HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 4096
    else:
        # A TLS record header announcing a 512-byte handshake message, then its bytes.
        payload = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 600
    socks = []
    for _ in range(args.count):
        try:
            s = connect(args)
            if args.mode == "slow-head":
                s = tls(args, s)
            socks.append([s, 0, True])
        except (OSError, ssl.SSLError):
            tally.refuse()
    while time.time() - tally.start < args.hold:
        for entry in socks:
            s, sent, alive = entry
            if not alive:
                continue
            if closed_now(s):
                entry[2] = False
                tally.close()
                continue
            try:
                s.settimeout(1)
                s.send(payload[sent:sent + 1])
                entry[1] = (sent + 1) % len(payload)
            except (OSError, ssl.SSLError):
                entry[2] = False
                tally.close()
        end = time.time() + args.interval
        while time.time() < end and time.time() - tally.start < args.hold:
            time.sleep(0.05)
            for entry in socks:
                if entry[2] and closed_now(entry[0]):
                    entry[2] = False
                    tally.close()
    for entry in socks:  # the set-up may have taken the whole hold
        if entry[2] and closed_now(entry[0]):
            entry[2] = False
            tally.close()
    return sum(1 for e in socks if e[2])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["stall-bodies", "slow-hello", "slow-head", "slow-http"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca")
    p.add_argument("--source", help="local address to connect from, e.g. 127.0.0.2")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--size", type=int, default=3 * 1024 * 1024)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--hold", type=float, default=5.0)
    args = p.parse_args()
    tally = Tally()
    if args.mode == "stall-bodies":
        still_open = stall_bodies(args, tally)
    else:
        still_open = trickle(args, tally)
    print("closed=%d open=%d refused=%d first_close=%.1f" %
          (tally.closed, still_open, tally.refused, tally.first), flush=True)


if __name__ == "__main__":
    sys.exit(main())
