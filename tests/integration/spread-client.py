#!/usr/bin/python3
# spread-client.py - for tests/integration/spread.sh: opens N keep-alive TLS connections to the
# webhook at once (all TCP connects first, as a client pool that starts cold does), completes one
# review on each, prints "open N" and keeps them open until its standard input closes.
import argparse
import socket
import ssl
import sys

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--ca", required=True)
p.add_argument("--body", required=True)
p.add_argument("-n", type=int, default=64)
args = p.parse_args()

body = open(args.body, "rb").read()
request = ("POST /mutate/pods HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
ctx = ssl.create_default_context(cafile=args.ca)
raw = [socket.create_connection(("127.0.0.1", args.port), timeout=30) for _ in range(args.n)]
conns = [ctx.wrap_socket(s, server_hostname="127.0.0.1", do_handshake_on_connect=False) for s in raw]
for c in conns:
    c.do_handshake()
    c.sendall(request)
answered = 0
for c in conns:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    if data.startswith(b"HTTP/1.1 200"):
        answered += 1
print("open %d" % answered, flush=True)
sys.stdin.read()
for c in conns:
    c.close()
