"""Air-gapped Debian 12 lab hosts (systemd-nspawn on an isolated bridge) for the collection."""

__version__ = "0.1.0"
