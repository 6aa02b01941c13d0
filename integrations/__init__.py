"""Platform adapters: pure code that takes raw bodies, headers and secrets and returns dataclasses."""
