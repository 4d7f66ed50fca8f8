"""The running hub: registry of connections and flows, loader, the hub process, metrics."""
