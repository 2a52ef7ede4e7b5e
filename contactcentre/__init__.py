"""An open-source contact centre and CTI server that sits beside Asterisk."""

__version__ = "0.1.0"
