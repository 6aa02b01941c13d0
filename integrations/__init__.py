"""Platform adapters: pure code that takes raw bodies, headers and secrets, returns dataclasses."""
