"""An SMTP server process for the fault suite: `python tests/support/sink_process.py FOLDER PORT`.

aiosmtpd (newsletter.sink.SmtpSink) on 127.0.0.1:PORT, writing each accepted message to FOLDER as an .eml file
before it answers 250, until the process is stopped. Started again on the same folder it goes on numbering.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from newsletter.sink import SmtpSink


def main() -> None:
    folder, port = Path(sys.argv[1]), int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with SmtpSink(folder, port=port):
        print("ready", flush=True)
        while True:
            signal.pause()


if __name__ == "__main__":
    main()
