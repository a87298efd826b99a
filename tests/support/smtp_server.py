#!/usr/bin/env python3
"""A real SMTP server for lapse's notifier tests (PyPI's aiosmtpd).

    smtp_server.py --port P --out DIR [--user U --password PW] [--reject ADDRESS[=CODE]]...
                   [--fail-first N]
    smtp_server.py --hold

The first form listens on 127.0.0.1:P, plain SMTP (no TLS), and writes each
message it accepts to DIR/<n>.json, atomically (temp file, then rename), so a
reader never sees half a message. With --user and --password it requires
AUTH PLAIN or LOGIN with exactly those before it takes a message. Each
--reject address is refused at RCPT TO for good, with CODE: 550 (the default,
no such mailbox), 551 (user not local) or 553 (mailbox name not allowed), as
a real server refuses an unknown or mistyped address. With --fail-first N the
first N RCPT TO commands (over all connections) get a temporary 451, as a
server answers while its queue or a lookup is unavailable.

Each file holds the envelope, the raw RFC 5322 text, and the fields decoded by
Python's email package (subject with RFC 2047 words decoded; text and HTML
bodies with their transfer encodings undone), so the Rust side compares
strings instead of parsing MIME.

The second form reserves a free port without listening on it and prints the
port: SO_REUSEPORT lets a server started later listen on that same port,
while lapse's connections to it are refused in between, and no other program
can take it.

Both forms exit on SIGTERM or when their standard input closes, so a test
that dies never leaves one behind.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import socket
import sys
import time
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    print("aiosmtpd is not installed: run `pip install aiosmtpd`", file=sys.stderr)
    sys.exit(3)


def bound_socket(port, reuse_addr):
    """A socket on 127.0.0.1:port that only another SO_REUSEPORT socket of
    this user can share. The holder must not set SO_REUSEADDR: Linux lets
    any SO_REUSEADDR socket share a port whose holders all set it and none
    listens, which is exactly the holder."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse_addr:  # the server: rebind while the last one's connections linger
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def decoded(raw):
    """Subject, text and HTML as a mail reader would show them."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        fields = {
            "subject": str(msg.get("subject", "")),
            "headers": [[name, str(value)] for name, value in msg.items()],
        }
        for key, subtype in (("text", "plain"), ("html", "html")):
            part = msg.get_body((subtype,))
            # CRLF is the wire's line ending, not the text's.
            fields[key] = None if part is None else part.get_content().replace("\r\n", "\n")
        fields["content_types"] = [part.get_content_type() for part in msg.walk()]
        return fields
    except Exception as e:  # the Rust side reports it with the raw text
        return {"parse_error": f"{type(e).__name__}: {e}"}


REFUSALS = {
    550: "550 5.1.1 No such user here",
    551: "551 5.1.6 User not local",
    553: "553 5.1.3 Mailbox name not allowed",
}


def refusals(specs):
    """ADDRESS or ADDRESS=CODE, each CODE one of REFUSALS."""
    out = {}
    for spec in specs:
        address, _, code = spec.partition("=")
        code = int(code or 550)
        if code not in REFUSALS:
            raise SystemExit(f"--reject {spec}: the code must be one of {sorted(REFUSALS)}")
        out[address] = REFUSALS[code]
    return out


class Mailbox:
    def __init__(self, out, reject, fail_first):
        self.out = out
        self.reject = refusals(reject)
        self.fail_first = fail_first
        names = [n[:-5] for n in os.listdir(out) if n.endswith(".json")]
        self.count = max((int(n) for n in names if n.isdigit()), default=0)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.fail_first > 0:
            self.fail_first -= 1
            return "451 4.3.0 Temporary failure, try again later"
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        user = session.auth_data.login.decode() if session.authenticated else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": raw.decode("utf-8", "replace"),
            "auth_user": user,
            "received_at": time.time(),
        }
        record.update(decoded(raw))
        self.count += 1
        path = os.path.join(self.out, f"{self.count}.json")
        tmp = os.path.join(self.out, f".{self.count}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, path)
        return "250 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


async def until_stopped():
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Standard input closing means the test process is gone.
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(4096) or stop.set())
    await stop.wait()


async def serve(args):
    os.makedirs(args.out, exist_ok=True)
    mailbox = Mailbox(args.out, args.reject, args.fail_first)
    options = {"hostname": "lapse-test-smtp"}
    if args.user is not None:
        options.update(
            authenticator=authenticator(args.user, args.password),
            auth_required=True,
            auth_require_tls=False,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(mailbox, **options), sock=listening_socket(args.port)
    )
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    await until_stopped()
    server.close()


def listening_socket(port):
    sock = bound_socket(port, reuse_addr=True)
    sock.listen(64)
    sock.setblocking(False)
    return sock


async def hold():
    sock = bound_socket(0, reuse_addr=False)
    print(sock.getsockname()[1], flush=True)
    await until_stopped()
    sock.close()


def main():
    # AUTH without TLS is the point here: lapse's plain-SMTP auth path.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    parser = argparse.ArgumentParser()
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--port", type=int)
    parser.add_argument("--out")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--reject", action="append", default=[], metavar="ADDRESS[=CODE]")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.hold:
        asyncio.run(hold())
    elif args.port is None or args.out is None or (args.user is None) != (args.password is None):
        parser.error("--port and --out are required; --user and --password go together")
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
