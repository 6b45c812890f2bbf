"""Command-line interface (``mirkit``). Nothing else imports this package."""
