"""A real SMTP server for the mail tests: aiosmtpd, storing what it receives.

Each accepted message is written to ``<maildir>/<n>.eml`` (written to a temporary
name first, then renamed, so a reader never sees half a message). With
``--reject-all`` every recipient is refused with ``550 5.1.1`` (a permanent
failure), which is how the tests make a mail fail for good.

Usage: python smtp_sink.py --port 2525 --maildir /tmp/mails [--reject-all]
"""

import argparse
import asyncio
import itertools
import os

from aiosmtpd.controller import Controller


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
    args = parser.parse_args()
    os.makedirs(args.maildir, exist_ok=True)
    controller = Controller(Sink(args.maildir, args.reject_all), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"smtp sink listening on 127.0.0.1:{args.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
