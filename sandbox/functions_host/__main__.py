"""`python -m sandbox.functions_host`: run the host from the command line."""

from sandbox.functions_host.runner import main

raise SystemExit(main())
