# Test support for e2e/tests/contrib_notify.rs: a real SMTP server (aiosmtpd,
# Debian package python3-aiosmtpd) on 127.0.0.1:PORT that saves every
# message it accepts as DIR/N.txt, decoded for the test to read:
#
#   envelope-from: ADDR
#   envelope-to: ADDR            (one line per recipient)
#   Header: value                (every header, unfolded, RFC 2047 words decoded)
#   <empty line>
#   the text/plain body, its transfer encoding undone, lines ending in \n
#
# A recipient whose address starts with "refuse" is refused (550), so that
# the tests can see a server say no. Runs until killed.
#
# Usage: /usr/bin/python3 smtp_receiver.py PORT DIR

import email
import email.policy
import os
import sys
import threading

from aiosmtpd.controller import Controller


class Saver:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refuse"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        lines = ["envelope-from: %s" % envelope.mail_from]
        lines += ["envelope-to: %s" % r for r in envelope.rcpt_tos]
        # Unfolded and stripped, as a mail reader shows them (a long
        # subject is folded right after "Subject:").
        lines += ["%s: %s" % (k, str(v).strip()) for k, v in msg.items()]
        body = msg.get_body(preferencelist=("plain",))
        # As a mail reader shows it: lines end in \n, not SMTP's \r\n.
        text = body.get_content().replace("\r\n", "\n") if body is not None else ""
        with self.lock:
            self.count += 1
            n = self.count
        tmp = os.path.join(self.folder, "%d.tmp" % n)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n\n" + text)
        os.rename(tmp, os.path.join(self.folder, "%d.txt" % n))
        return "250 Message accepted for delivery"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Saver(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("smtp_receiver: listening on 127.0.0.1:%d" % port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
