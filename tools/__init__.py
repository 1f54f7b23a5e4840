"""Tooling for developers: scripts run from the repository root, never imported by the product."""
