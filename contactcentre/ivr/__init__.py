"""What callers hear and key in, run over an AGI session (never a socket): the post-call survey."""
