"""One module per `maskwatch` subcommand, each with `register(subparsers)`."""
