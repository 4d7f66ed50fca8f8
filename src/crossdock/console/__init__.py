"""The operations console: sign-in, dashboard, cases, records, connections, flows."""
