"""A real SMTP server for the mail tests: aiosmtpd, storing what it receives.

Each accepted message is written to ``<maildir>/<n>.eml`` (written to a temporary
name first, then renamed, so a reader never sees half a message). With
``--reject-all`` every recipient is refused with ``550 5.1.1`` (a permanent
failure), which is how the tests make a mail fail for good. With ``--tls-cert`` and
``--tls-key`` the server offers STARTTLS and refuses mail before it; with ``--user``
and ``--password`` it also requires AUTH (only over TLS).

Usage: python smtp_sink.py --port 2525 --maildir /tmp/mails [--reject-all]
       [--tls-cert cert.pem --tls-key key.pem] [--user U --password P]
"""

import argparse
import asyncio
import itertools
import os
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, maildir, reject_all):
        self.maildir = maildir
        self.reject_all = reject_all
        existing = [int(name[:-4]) for name in os.listdir(maildir) if name.endswith(".eml")]
        self.numbers = itertools.count(max(existing, default=0) + 1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_all:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.numbers)
        temporary = os.path.join(self.maildir, f".{number}.tmp")
        with open(temporary, "wb") as out:
            out.write(envelope.original_content or envelope.content)
        os.rename(temporary, os.path.join(self.maildir, f"{number}.eml"))
        return "250 Message accepted for delivery"


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--reject-all", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    os.makedirs(args.maildir, exist_ok=True)
    options = {}
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        options.update(tls_context=context, require_starttls=True)
    if args.user:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login.decode() == args.user
                  and auth_data.password.decode() == args.password)
            return AuthResult(success=ok)
        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
    controller = Controller(Sink(args.maildir, args.reject_all), hostname="127.0.0.1",
                            port=args.port, **options)
    controller.start()
    print(f"smtp sink listening on 127.0.0.1:{args.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
