"""Faust agents: thin adapters that decode records, call the core and send what it returns."""
