"""`twosided app`: the interactive teaching page (Mesa's SolaraViz, served by Solara).

    twosided app                 # http://127.0.0.1:8765
    twosided app --port 9000     # another port (0: any free port)

The page is experiments/app_page.py; the model behind it is
experiments/app_model.py. The server listens on 127.0.0.1 only unless
``--host`` says otherwise, and works offline: Solara's front-end comes from
the ``solara-assets`` package installed with the project, and the CDN
address is pointed at a closed local port so nothing is ever fetched from
outside (a missing asset fails at once instead of waiting on the network).
Solara's usage telemetry is switched off.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

DEFAULT_PORT = 8765

# Set before solara is imported: its settings read the environment once.
OFFLINE_ENV = {
    "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "false",   # no usage pings
    "SOLARA_ASSETS_PROXY": "true",                 # serve front-end files from the installed solara-assets
    "SOLARA_ASSETS_CDN": "http://127.0.0.1:9/npm/",  # never reach a real CDN for a missing file
    "SOLARA_CHECK_HOOKS": "off",                   # Mesa's page trips Solara's hook linter at import
}


def port_number(text: str) -> int:
    """A TCP port for argparse: a whole number in [0, 65535] (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; allowed: a port in 0-65535") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range; allowed: a port in 0-65535 (0: any free port)")
    return port


def parse_args(argv: list[str]):
    """The app's options; argparse refuses a bad one with its usage line and exit code 2."""
    parser = argparse.ArgumentParser(prog="twosided app", description="Start the interactive marketplace page.")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--open", action="store_true", help="open a browser window")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def solara_argv(args) -> list[str]:
    """The `solara run` command line for these options."""
    return ["run", "experiments.app_page:Page", "--host", args.host, "--port", str(args.port), "--production",
            "--open" if args.open else "--no-open", "--log-level", args.log_level]


def main(argv: list[str] | None = None) -> int:
    """Serve the page until interrupted; returns the exit code."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    from solara.__main__ import cli

    # Solara warns on every first visit over plain http that it falls back to
    # SameSite=lax session cookies. Lax is right for a page that is opened
    # directly (not embedded in another site's iframe), so the warning only
    # alarms a teacher reading the terminal.
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https", category=UserWarning)

    print(f"twosided app: serving on http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    try:
        cli(solara_argv(args), standalone_mode=False)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
