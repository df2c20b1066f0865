"""Shared plumbing of the command-line scripts: quiet TF logs and one-line errors for bad input."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_main(main, argv):
    """Run an absl ``main``; a ``ValueError`` from bad input exits 1 with one line naming the problem."""
    from absl import app

    def wrapped(args):
        from absl import logging

        logging.set_verbosity(logging.WARNING)  # TF's INFO lines (strategy, saver) drown the progress bar
        try:
            return main(args)
        except (ValueError, FileNotFoundError) as e:
            # Bad input (unknown names, missing files, mismatched shapes) is the
            # user's to fix: one clear line, no traceback (VIDEO_PREDICTION_DEBUG=1 shows it).
            if os.environ.get("VIDEO_PREDICTION_DEBUG"):
                raise
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)

    app.run(wrapped, argv)
