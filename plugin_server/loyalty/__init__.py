"""The points engine: pure rules and the services that apply them to the ledger."""
