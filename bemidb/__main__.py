from bemidb.cli.launch import exit_now
from bemidb.cli.main import main

if __name__ == "__main__":
    exit_now(main())
