"""The demo platform: a store that lives inside this server, for `loyalty demo` and tests.

Its webhooks carry orders in the canonical JSON form (``integrations.canonical``) and its
discount codes are created locally, so the whole pipeline runs with no outside service."""
