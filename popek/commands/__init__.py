"""One module per `popek` sub-command; each defines register(subparsers) and sets `func`."""
