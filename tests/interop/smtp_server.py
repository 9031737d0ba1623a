"""A real SMTP server for the liaison-notify tests (aiosmtpd), bound to 127.0.0.1 only.

    venv.sh smtp_server.py --maildir DIR [--port N] [--cert CERT.pem --key KEY.pem]
                      [--no-starttls | --implicit-tls] [--user USER --password PASSWORD]

Modes:
  default        STARTTLS required (require_starttls=True) with the given certificate and key;
                 AUTH PLAIN/LOGIN required, offered only after STARTTLS, checked against --user and
                 --password.
  --implicit-tls TLS from the first byte (SMTPS, what port 465 serves) with the given certificate
                 and key; AUTH PLAIN/LOGIN required.
  --no-starttls  no TLS at all; AUTH is still required and offered in plaintext, as a trap: a client
                 that must use STARTTLS should send neither credentials nor a message here.

Every accepted message is written as DIR/<n>.eml (the bytes received after DATA) with DIR/<n>.json
beside it (envelope sender and recipients). Every AUTH attempt appends one line to DIR/auth.log:
"<mechanism> <login> ok|refused tls=<yes|no>" (never the password).

Prints "READY <port>" once listening (--port 0, the default, lets the system choose). Exits when its
standard input is closed, so that it never outlives the test that started it.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def is_tls(server, session):
    """True on a STARTTLS-upgraded connection, or one that was TLS from the start."""
    transport = getattr(server, "transport", None)
    implicit = transport is not None and transport.get_extra_info("ssl_object") is not None
    return session.ssl is not None or implicit


class Recorder:
    def __init__(self, maildir):
        self.maildir = maildir
        self.count = 0
        self.lock = threading.Lock()

    def _write(self, name, data):
        path = os.path.join(self.maildir, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": is_tls(server, session),
        }
        # The envelope first, then the message: a test that sees the .eml also finds the .json.
        self._write(f"{n}.json", json.dumps(meta).encode())
        self._write(f"{n}.eml", content)
        return "250 Message accepted for delivery"


def make_authenticator(maildir, user, password):
    log = os.path.join(maildir, "auth.log")

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        login = auth_data.login.decode("utf-8", "replace") if isinstance(auth_data, LoginPassword) else "?"
        tls = "yes" if is_tls(server, session) else "no"
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{mechanism} {login} {'ok' if ok else 'refused'} tls={tls}\n")
        return AuthResult(success=ok, handled=False)

    return authenticator


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--maildir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--no-starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--user", default="liaison")
    p.add_argument("--password", default="correct horse")
    args = p.parse_args()
    os.makedirs(args.maildir, exist_ok=True)

    handler = Recorder(args.maildir)
    authenticator = make_authenticator(args.maildir, args.user, args.password)
    if args.no_starttls and args.implicit_tls:
        p.error("--no-starttls and --implicit-tls exclude each other")
    context = None
    if not args.no_starttls:
        if not (args.cert and args.key):
            p.error("--cert and --key are required unless --no-starttls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    if args.no_starttls or args.implicit_tls:
        # No STARTTLS: in plaintext as a trap, or because the whole connection is TLS already
        # (aiosmtpd's auth_require_tls only knows STARTTLS).
        def factory():
            return SMTP(
                handler,
                hostname="localhost",
                auth_required=True,
                auth_require_tls=False,
                authenticator=authenticator,
            )
    else:
        def factory():
            return SMTP(
                handler,
                hostname="localhost",
                tls_context=context,
                require_starttls=True,
                auth_required=True,
                auth_require_tls=True,
                authenticator=authenticator,
            )
    listen_ssl = context if args.implicit_tls else None

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(factory, host="127.0.0.1", port=args.port, ssl=listen_ssl))
    port = server.sockets[0].getsockname()[1]

    def wait_for_stdin_eof():
        try:
            sys.stdin.buffer.read()
        finally:
            loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
    print(f"READY {port}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


if __name__ == "__main__":
    main()
