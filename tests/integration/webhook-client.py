#!/usr/bin/python3
# webhook-client.py - raw HTTP/1.1 clients for tests/integration/webhook.sh: a keep-alive client
# that must keep one TLS connection across a certificate rotation, a client that stops halfway
# through its body, a client that trickles its body, and one that connects and stays silent.
import argparse
import os
import socket
import ssl
import sys
import time


def tls_connect(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname=args.name)


def request_head(length, extra=""):
    return ("POST /mutate/pods HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n%s\r\n" % (length, extra)).encode()


def read_response(sock):
    """Reads one response; returns (status, headers dict, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed before the response headers")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed inside the body")
        body += chunk
    return status, headers, body[:length]


def wait_file(path, limit=30):
    deadline = time.time() + limit
    while not os.path.exists(path):
        if time.time() > deadline:
            raise TimeoutError("waited too long for " + path)
        time.sleep(0.05)


def say(msg):
    print(msg, flush=True)


def keepalive(args):
    body = open(args.body, "rb").read()
    sock = tls_connect(args)
    for i in range(args.count):
        if i == 1:
            say("waiting")
            wait_file(args.go)
        sock.sendall(request_head(len(body)) + body)
        status, headers, _ = read_response(sock)
        serial = sock.getpeercert().get("serialNumber", "")
        say("response %d status=%d serial=%s connection=%s" %
            (i + 1, status, serial, headers.get("connection", "")))
    sock.close()


def halfway(args):
    body = open(args.body, "rb").read()
    sock = tls_connect(args)
    half = len(body) // 2
    sock.sendall(request_head(len(body)) + body[:half])
    say("sent half")
    wait_file(args.go)
    sock.sendall(body[half:])
    status, headers, resp = read_response(sock)
    say("response status=%d bytes=%d connection=%s" % (status, len(resp),
                                                      headers.get("connection", "")))


def trickle(args):
    sock = tls_connect(args)
    sock.sendall(request_head(100000))
    start = time.time()
    try:
        while time.time() - start < args.limit:
            sock.sendall(b" ")
            time.sleep(0.25)
            sock.settimeout(0.01)
            try:
                if sock.recv(1) == b"":
                    break
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            finally:
                sock.settimeout(30)
    except (OSError, ssl.SSLError):
        pass
    say("closed after %.1f" % (time.time() - start))


def silent(args):
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=args.limit)
    start = time.time()
    say("connected")
    try:
        raw.recv(1)
    except socket.timeout:
        say("still open after %.1f" % (time.time() - start))
        return
    except OSError:
        pass
    say("closed after %.1f" % (time.time() - start))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["keepalive", "halfway", "trickle", "silent"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca")
    p.add_argument("--name")
    p.add_argument("--body")
    p.add_argument("--go")
    p.add_argument("--count", type=int, default=2)
    p.add_argument("--limit", type=float, default=20)
    args = p.parse_args()
    try:
        {"keepalive": keepalive, "halfway": halfway, "trickle": trickle, "silent": silent}[
            args.mode](args)
    except Exception as e:  # the test reads the line
        say("error %s: %s" % (type(e).__name__, e))
        sys.exit(1)


if __name__ == "__main__":
    main()
