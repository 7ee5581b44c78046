"""Entry point of bemidb.pyz: refuse the wrong Python or platform with a clear message, then run the CLI."""

import platform
import sys

BUILT_FOR = (3, 11)


def main() -> int:
    if sys.version_info[:2] < BUILT_FOR:  # noqa: UP036 - the message is the point
        sys.stderr.write(f"bemidb.pyz needs Python {BUILT_FOR[0]}.{BUILT_FOR[1]}+, this is "
                         f"{platform.python_version()} ({sys.executable})\n")
        return 2
    try:
        from bemidb.cli.main import main as cli_main
    except ImportError as exc:  # compiled wheels for another CPU, OS or Python ABI
        sys.stderr.write(f"bemidb.pyz was built for another platform or Python ({exc}); this machine is "
                         f"{platform.system()} {platform.machine()}, Python {platform.python_version()}. "
                         "Rebuild it here with ./build_zipapp.sh\n")
        return 2
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
